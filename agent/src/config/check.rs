//! Checking a parsed config: every rule over every key, all problems reported at once, each naming
//! its key.

use super::*;

impl Config {
    /// Checks every value, reporting all problems at once. Creates nothing.
    pub fn validate(&self) -> Result<(), Problems> {
        let mut p = Problems::default();
        if let Some(addr) = check_addr(&mut p, "server.listen", &self.server.listen)
            && self.server.tls.is_none()
            && !addr.ip().is_loopback()
        {
            p.push(
                "server.listen",
                format!(
                    "{addr} is not loopback: a listener other hosts can reach needs server.tls \
                     (plaintext is allowed on loopback only)"
                ),
            );
        }
        if let Some(tls) = &self.server.tls {
            for (key, path) in [
                ("server.tls.cert", Some(&tls.cert)),
                ("server.tls.client_ca", tls.client_ca.as_ref()),
            ] {
                if let Some(path) = path
                    && !path.is_file()
                {
                    p.push(key, format!("{} is not a readable file", path.display()));
                }
            }
        }
        if self.server.shutdown_grace_secs > 300 {
            p.push("server.shutdown_grace_secs", "must be at most 300");
        }
        check_data_dir(&mut p, "storage.data_dir", &self.storage.data_dir);
        if !(8..=65_536).contains(&self.storage.cache_mib) {
            p.push("storage.cache_mib", "must be from 8 to 65536");
        }
        self.log.check(&mut p);
        if self.limits.max_text_bytes == 0 {
            p.push("limits.max_text_bytes", "must be greater than 0");
        }
        if self.limits.max_message_bytes < self.limits.max_text_bytes {
            p.push(
                "limits.max_message_bytes",
                "must be at least limits.max_text_bytes",
            );
        }
        if self.limits.requests_per_second > 0 && self.limits.request_burst == 0 {
            p.push(
                "limits.request_burst",
                "must be at least 1 when limits.requests_per_second is set",
            );
        }
        if self.limits.max_streams == 0 {
            p.push("limits.max_streams", "must be greater than 0");
        }
        if self.limits.max_stream_bytes < self.limits.max_text_bytes as u64 {
            p.push(
                "limits.max_stream_bytes",
                "must be at least limits.max_text_bytes",
            );
        }
        for kind in self.redaction.deny.keys() {
            if PhiType::parse(kind).is_none() {
                p.push(
                    format!("redaction.deny.{kind}"),
                    "not a PHI type (NAME, LOCATION, DATE, ...)",
                );
            }
        }
        for (i, z) in self.redaction.restricted_zip3.iter().enumerate() {
            if z.len() != 3 || !z.bytes().all(|b| b.is_ascii_digit()) {
                p.push(
                    format!("redaction.restricted_zip3[{i}]"),
                    format!("{z:?} is not a 3-digit ZIP prefix"),
                );
            }
        }
        for kind in self.redaction.styles.keys() {
            if PhiType::parse(kind).is_none() {
                p.push(
                    format!("redaction.styles.{kind}"),
                    "not a PHI type (NAME, LOCATION, DATE, AGE, PHONE, FAX, EMAIL, SSN, MRN, HEALTH_PLAN_ID, ACCOUNT, LICENSE, VEHICLE_ID, DEVICE_ID, URL, IP, BIOMETRIC, OTHER_ID)",
                );
            }
        }
        if !(60..=30 * 24 * 3600).contains(&self.redaction.vault_ttl_secs) {
            p.push(
                "redaction.vault_ttl_secs",
                "must be between 60 and 2592000 (30 days)",
            );
        }
        let r = &self.retention;
        if !(1..=365).contains(&r.epoch_days) {
            p.push("retention.epoch_days", "must be between 1 and 365");
        }
        for (class, days) in r.classes() {
            if days < r.epoch_days.max(1) || days > 36_500 {
                p.push(
                    format!("retention.{class}_days"),
                    "must be at least retention.epoch_days and at most 36500",
                );
            }
        }
        if !(1..=36_500).contains(&r.audit_days) {
            p.push("retention.audit_days", "must be between 1 and 36500");
        }
        if r.vault_days.saturating_mul(86_400) < self.redaction.vault_ttl_secs {
            p.push(
                "retention.vault_days",
                "must cover redaction.vault_ttl_secs, or live session maps would be shredded",
            );
        }
        if !(1..=86_400).contains(&self.escalation.resend_secs) {
            p.push(
                "escalation.resend_secs",
                "must be between 1 and 86400 (a day)",
            );
        }
        for (i, w) in self.escalation.webhooks.iter().enumerate() {
            let key = format!("escalation.webhooks[{i}]");
            match w.url.parse::<hyper::Uri>() {
                Ok(u)
                    if matches!(u.scheme_str(), Some("http" | "https"))
                        && u.host().is_some_and(|h| !h.is_empty()) => {}
                _ => p.push(
                    format!("{key}.url"),
                    format!("{:?} is not an http:// or https:// URL with a host", w.url),
                ),
            }
            if !(1..=60).contains(&w.timeout_secs) {
                p.push(format!("{key}.timeout_secs"), "must be between 1 and 60");
            }
            if !(1..=20).contains(&w.max_attempts) {
                p.push(format!("{key}.max_attempts"), "must be between 1 and 20");
            }
        }
        if let Some(c) = &self.controller {
            check_controller(&mut p, c);
        }
        self.reporting.check(&mut p, self.controller.is_some());
        check_proxy(&mut p, &self.proxy);
        if !self.metrics.listen.is_empty()
            && let Some(addr) = check_addr(&mut p, "metrics.listen", &self.metrics.listen)
            && !addr.ip().is_loopback()
        {
            p.push("metrics.listen", format!("{addr} is not loopback"));
        }
        self.check_secrets(&mut p);
        p.into_result()
    }

    /// Secret files that `run` would refuse (missing, or readable by group or others).
    fn check_secrets(&self, p: &mut Problems) {
        if let Some(k) = &self.keys.kek {
            k.check(p, "keys.kek");
        }
        if let Some(tls) = &self.server.tls {
            tls.key.check(p, "server.tls.key");
        }
        if let Some(k) = &self.proxy.upstream_key {
            k.check(p, "proxy.upstream_key");
        }
        if let Some(t) = self
            .controller
            .as_ref()
            .and_then(|c| c.enrollment_token.as_ref())
        {
            t.check(p, "controller.enrollment_token");
        }
        for (i, w) in self.escalation.webhooks.iter().enumerate() {
            if let Some(t) = &w.token {
                t.check(p, &format!("escalation.webhooks[{i}].token"));
            }
        }
    }
}

fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn url_host(rest: &str) -> &str {
    let authority = rest.split('/').next().unwrap_or("");
    match authority.rsplit_once(':') {
        Some((h, port)) if port.parse::<u16>().is_ok() => h,
        _ => authority,
    }
}

fn check_proxy(p: &mut Problems, c: &ProxyConfig) {
    if c.listen.is_empty() {
        return;
    }
    if let Some(addr) = check_addr(p, "proxy.listen", &c.listen)
        && !addr.ip().is_loopback()
    {
        p.push(
            "proxy.listen",
            format!(
                "{addr} is not loopback: the proxy speaks plain HTTP; put a TLS proxy in front"
            ),
        );
    }
    if let Some(rest) = c.upstream_url.strip_prefix("http://") {
        if !is_loopback_host(url_host(rest)) {
            p.push(
                "proxy.upstream_url",
                "plaintext http:// is allowed to a loopback upstream only; use https://",
            );
        }
    } else if !c.upstream_url.starts_with("https://") || url_host(&c.upstream_url[8..]).is_empty() {
        p.push("proxy.upstream_url", "must be an https:// URL with a host");
    }
    if c.timeout_secs == 0 || c.timeout_secs > 600 {
        p.push("proxy.timeout_secs", "must be from 1 to 600");
    }
    for (key, h) in [
        ("proxy.app_header", &c.app_header),
        ("proxy.session_header", &c.session_header),
    ] {
        if h.is_empty() || !h.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') {
            p.push(key, "must be a lower-case header name");
        }
    }
}

fn check_controller(p: &mut Problems, c: &ControllerLink) {
    let host = |rest: &str| {
        let authority = rest.split('/').next().unwrap_or("");
        let host = match authority.rsplit_once(':') {
            Some((h, port)) if port.parse::<u16>().is_ok() => h,
            _ => authority,
        };
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned()
    };
    if let Some(rest) = c.url.strip_prefix("https://") {
        if host(rest).is_empty() {
            p.push("controller.url", "names no host");
        }
        match &c.ca {
            None => p.push(
                "controller.ca",
                "an https:// controller needs the PEM file of the CA that signed its certificate",
            ),
            Some(ca) if !ca.is_file() => {
                p.push("controller.ca", format!("{} is not a file", ca.display()))
            }
            Some(_) => {}
        }
    } else if let Some(rest) = c.url.strip_prefix("http://") {
        let h = host(rest);
        let loopback = h == "localhost"
            || h.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            p.push(
                "controller.url",
                format!(
                    "{:?}: plaintext http:// is allowed to a loopback controller only",
                    c.url
                ),
            );
        }
    } else {
        p.push(
            "controller.url",
            format!(
                "{:?} must start with https:// (or http:// on loopback)",
                c.url
            ),
        );
    }
    if c.retry_min_ms == 0 || c.retry_min_ms > 60_000 {
        p.push("controller.retry_min_ms", "must be from 1 to 60000");
    }
    if c.retry_max_secs == 0 || c.retry_max_secs > 3600 {
        p.push("controller.retry_max_secs", "must be from 1 to 3600");
    }
}
