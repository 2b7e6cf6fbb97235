//! Agent configuration: TOML with unknown keys refused, validated once, every problem naming its key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use readi_common::config::{LogConfig, Problems, check_addr, check_data_dir, parse_toml};
use readi_common::secret::SecretSource;
use serde::Deserialize;

use crate::phi::{KnownTerm, PhiType};
use crate::redact::{Policy, Style};

/// The commented example config that `readi-agent init` writes. It holds the embedded defaults.
pub const EXAMPLE: &str = include_str!("../../deploy/config/agent.toml");

/// The agent's configuration. `Config::default()` is the safe embedded default: loopback only, data
/// under `./readi-data`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the gRPC API listens.
    pub server: ServerConfig,
    /// Where data is kept.
    pub storage: StorageConfig,
    /// Logging.
    pub log: LogConfig,
    /// Request size limits.
    pub limits: LimitsConfig,
    /// The controller reports go to; absent means no reporting.
    pub controller: Option<ControllerLink>,
    /// Where the key-encryption key comes from.
    pub keys: KeysConfig,
    /// How PHI is replaced and how long session maps live.
    pub redaction: RedactionConfig,
    /// Where escalations go and how often unacknowledged ones are re-sent.
    pub escalation: EscalationConfig,
    /// How long each class of sealed data is kept before its keys are destroyed.
    pub retention: RetentionConfig,
    /// Caller authentication.
    pub auth: AuthConfig,
}

/// Caller authentication by API token.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Require a token on every call even before any token exists. Tokens are always required once
    /// one has been created (`readi-agent tokens add`).
    pub required: bool,
}

/// Retention by crypto-shredding: every data class is sealed under a key that changes every
/// `epoch_days`; a key is destroyed once everything sealed under it is older than the class's limit.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days between data keys of a class.
    pub epoch_days: u64,
    /// Days session maps are kept (at least `redaction.vault_ttl_secs`).
    pub vault_days: u64,
    /// Days escalation records are kept.
    pub escalations_days: u64,
    /// Days adverse-event records are kept.
    pub adverse_events_days: u64,
    /// Days audit records are kept (removed from the start of the chain behind a signed marker).
    pub audit_days: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            epoch_days: 1,
            vault_days: 30,
            // Six years: HIPAA's documentation retention (45 CFR 164.316(b)(2)).
            escalations_days: 2190,
            adverse_events_days: 2190,
            audit_days: 2190,
        }
    }
}

impl RetentionConfig {
    /// (data class, days kept) for every class under retention.
    pub fn classes(&self) -> [(&'static str, u64); 3] {
        [
            ("vault", self.vault_days),
            ("escalations", self.escalations_days),
            ("adverse_events", self.adverse_events_days),
        ]
    }
}

/// Escalation delivery.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EscalationConfig {
    /// Seconds before an unacknowledged escalation is sent again to watchers and webhooks.
    pub resend_secs: u64,
    /// Webhooks of the clinic's on-call tool.
    pub webhooks: Vec<WebhookConfig>,
}

impl Default for EscalationConfig {
    fn default() -> Self {
        EscalationConfig {
            resend_secs: 300,
            webhooks: Vec::new(),
        }
    }
}

/// One webhook receiving escalations as JSON (ids, categories, rules and spans; never text).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `https://...` (or `http://` on loopback and test networks).
    pub url: String,
    /// Sent as `Authorization: Bearer <token>`, from a secret source.
    #[serde(default)]
    pub token: Option<SecretSource>,
    /// Seconds one delivery attempt may take.
    #[serde(default = "default_webhook_timeout")]
    pub timeout_secs: u64,
    /// Attempts before a delivery is recorded as failed (backoff doubles from one second).
    #[serde(default = "default_webhook_attempts")]
    pub max_attempts: u32,
}

fn default_webhook_timeout() -> u64 {
    5
}

fn default_webhook_attempts() -> u32 {
    6
}

/// Key material.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    /// The key-encryption key (64 hex characters). Absent: generated once into `<data_dir>/kek`.
    pub kek: Option<SecretSource>,
}

/// Redaction policy.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RedactionConfig {
    /// The style for every type not listed in `styles`: `tag`, `surrogate` or `mask`.
    pub style: Style,
    /// Per-type styles, keyed by PHI type (`DATE = "mask"`).
    pub styles: BTreeMap<String, Style>,
    /// Seconds a session's tag map stays in the vault after its last Redact.
    pub vault_ttl_secs: u64,
    /// Terms never redacted even when detected (the clinic's own program names), case-insensitive.
    pub allow: Vec<String>,
    /// Terms always redacted, by PHI type (`LOCATION = ["Smallville Clinic"]`).
    pub deny: BTreeMap<String, Vec<String>>,
    /// 3-digit ZIP areas with 20,000 people or fewer: masked ZIPs there become `000`.
    pub restricted_zip3: Vec<String>,
}

/// The 3-digit ZIP areas HHS lists as too small to keep (45 CFR 164.514(b)(2)(i)(B), 2000 Census).
pub const RESTRICTED_ZIP3: &[&str] = &[
    "036", "059", "063", "102", "203", "556", "692", "790", "821", "823", "830", "831", "878",
    "879", "884", "890", "893",
];

impl Default for RedactionConfig {
    fn default() -> Self {
        RedactionConfig {
            style: Style::Tag,
            styles: BTreeMap::new(),
            vault_ttl_secs: 24 * 3600,
            allow: Vec::new(),
            deny: BTreeMap::new(),
            restricted_zip3: RESTRICTED_ZIP3.iter().map(|z| (*z).to_owned()).collect(),
        }
    }
}

impl RedactionConfig {
    /// The policy this config describes (valid after `Config::validate`).
    pub fn policy(&self) -> Policy {
        Policy {
            style: self.style,
            styles: self
                .styles
                .iter()
                .filter_map(|(k, v)| Some((PhiType::parse(k)?, *v)))
                .collect(),
            allow: self.allow.iter().map(|a| a.to_lowercase()).collect(),
            deny: self
                .deny
                .iter()
                .filter_map(|(k, terms)| Some((PhiType::parse(k)?, terms)))
                .flat_map(|(kind, terms)| {
                    terms.iter().map(move |t| KnownTerm {
                        value: t.clone(),
                        kind,
                        exact: false,
                    })
                })
                .collect(),
            restricted_zip3: self.restricted_zip3.clone(),
        }
    }
}

/// gRPC serving.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// `host:port` for the gRPC API and health service.
    pub listen: String,
    /// Seconds in-flight requests get to finish after SIGTERM.
    pub shutdown_grace_secs: u64,
    /// TLS on the listener; without it the listener must be on loopback.
    pub tls: Option<TlsConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:50051".to_owned(),
            shutdown_grace_secs: 10,
            tls: None,
        }
    }
}

/// TLS for the gRPC listener (rustls).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key, from a secret source.
    pub key: SecretSource,
    /// PEM CA bundle: when set, callers must present a client certificate it signed (mTLS).
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

/// Local storage.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Directory of the embedded database; created (mode 0700) on first start.
    pub data_dir: PathBuf,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            data_dir: PathBuf::from("./readi-data"),
        }
    }
}

/// Size limits on requests.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest text accepted in one Redact or Assess call, in bytes.
    pub max_text_bytes: usize,
    /// Largest gRPC message accepted, in bytes.
    pub max_message_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_text_bytes: 256 * 1024,
            max_message_bytes: 4 * 1024 * 1024,
        }
    }
}

/// The controller this agent reports to.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ControllerLink {
    /// The controller's gRPC URL (`https://controller.example.org:7443`).
    pub url: String,
    /// The one-time enrollment token, from a secret source.
    pub enrollment_token: Option<SecretSource>,
}

impl Config {
    /// Parses and validates config text.
    pub fn from_toml(text: &str) -> Result<Config, Problems> {
        let config: Config = parse_toml(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, Problems> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            let mut p = Problems::default();
            p.push("<file>", format!("cannot read {}: {e}", path.display()));
            p
        })?;
        Config::from_toml(&text)
    }

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
        if let Some(c) = &self.controller
            && !(c.url.starts_with("https://") || c.url.starts_with("http://"))
        {
            p.push(
                "controller.url",
                format!(
                    "{:?} must start with https:// (or http:// on loopback)",
                    c.url
                ),
            );
        }
        p.into_result()
    }

    /// The grace period after a shutdown signal.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.server.shutdown_grace_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_and_equals_defaults() {
        let c = Config::from_toml(EXAMPLE).expect("shipped example must validate");
        assert_eq!(c, Config::default());
    }

    #[test]
    fn unknown_key_is_refused() {
        let err = Config::from_toml("[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n").unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
    }

    #[test]
    fn every_bad_key_is_named() {
        let err = Config::from_toml(
            "[server]\nlisten = \"nowhere\"\n[limits]\nmax_text_bytes = 0\n[log]\nlevel = \"=;=\"\n",
        )
        .unwrap_err();
        for key in ["server.listen", "limits.max_text_bytes", "log.level"] {
            assert!(err.names(key), "{key} missing from: {err}");
        }
    }

    #[test]
    fn bad_webhooks_are_named_by_index() {
        let err = Config::from_toml(
            "[escalation]\nresend_secs = 0\n[[escalation.webhooks]]\nurl = \"http://ok.example/h\"\n[[escalation.webhooks]]\nurl = \"ftp://x\"\ntimeout_secs = 0\n",
        )
        .unwrap_err();
        for key in [
            "escalation.resend_secs",
            "escalation.webhooks[1].url",
            "escalation.webhooks[1].timeout_secs",
        ] {
            assert!(err.names(key), "{key} missing from: {err}");
        }
    }
}
