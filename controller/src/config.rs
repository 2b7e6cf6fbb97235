//! Controller configuration: TOML with unknown keys refused, validated once, every problem naming its key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use readi_common::config::{LogConfig, Problems, check_addr, check_data_dir, parse_toml};
use serde::{Deserialize, Serialize};

/// The commented example config that `readi-controller init` writes. It holds the embedded defaults.
pub const EXAMPLE: &str = include_str!("../../deploy/config/controller.toml");

/// The controller's configuration; `Config::default()` is the embedded default.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the gRPC API listens.
    pub server: ServerConfig,
    /// Where data is kept.
    pub storage: StorageConfig,
    /// Logging.
    pub log: LogConfig,
    /// When figures may be released to vendors.
    pub release: ReleaseConfig,
    /// The thresholds behind scorecard statuses.
    pub thresholds: crate::scorecard::Thresholds,
    /// The vendor dashboard.
    pub dashboard: DashboardConfig,
    /// Metrics about the controller itself.
    pub metrics: MetricsConfig,
}

/// Prometheus metrics about the controller and a health document.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// `host:port` for `/metrics` and `/healthz`; empty (the default) turns them off. Any address:
    /// they carry counts about the controller only (a pod address, for probes and scraping).
    pub listen: String,
}

/// The vendor dashboard (HTTP).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DashboardConfig {
    /// `host:port` for the dashboard; empty turns it off. Loopback unless `behind_tls_proxy`.
    pub listen: String,
    /// Vendors reach the listener only through a TLS-terminating proxy or ingress, so it may listen
    /// on a non-loopback address (a pod's). Session cookies are `Secure` either way.
    pub behind_tls_proxy: bool,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            listen: "127.0.0.1:50062".to_owned(),
            behind_tls_proxy: false,
        }
    }
}

/// gRPC serving.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// `host:port` for the gRPC API and health service.
    pub listen: String,
    /// Seconds in-flight requests get to finish after SIGTERM.
    pub shutdown_grace_secs: u64,
    /// Largest gRPC message accepted, in bytes.
    pub max_message_bytes: usize,
    /// TLS from the controller's own CA (under the data directory); agents then use mTLS. Required
    /// on any listener other than loopback.
    pub tls: Option<TlsConfig>,
}

/// TLS serving.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Host names and IP addresses the server certificate is issued for.
    pub names: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:50061".to_owned(),
            shutdown_grace_secs: 10,
            max_message_bytes: 4 * 1024 * 1024,
            tls: None,
        }
    }
}

/// Local storage.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Directory of the embedded database; created (mode 0700) on first start.
    pub data_dir: PathBuf,
    /// The embedded database's page cache, in MiB: what bounds the store's memory.
    pub cache_mib: u64,
    /// Where agents, reports and counters live: `sled` (embedded, one controller) or `postgres`
    /// (several controller replicas over one database).
    pub backend: Backend,
    /// The PostgreSQL URL for `backend = "postgres"`, from a secret source since it may carry a
    /// password (`{ env = "..." }`, `{ file = "..." }` or `{ credential = "..." }`).
    pub postgres_url: Option<readi_common::secret::SecretSource>,
    /// CA certificates (PEM) that sign the database server's certificate; without it the system's
    /// roots. TLS itself follows the URL's `sslmode`.
    pub postgres_ca: Option<PathBuf>,
    /// Database connections this controller opens at most; calls beyond wait for one. Keep
    /// replicas x this below the server's `max_connections`.
    pub postgres_connections: usize,
}

/// The report store's backend.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The embedded sled database under `data_dir`.
    #[default]
    Sled,
    /// A PostgreSQL database (`postgres_url`).
    Postgres,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            data_dir: PathBuf::from("./readi-controller-data"),
            cache_mib: readi_common::embedded::DEFAULT_CACHE_MIB,
            backend: Backend::Sled,
            postgres_url: None,
            postgres_ca: None,
            postgres_connections: crate::pgstore::DEFAULT_CONNECTIONS,
        }
    }
}

/// Release rules for vendor-facing figures.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ReleaseConfig {
    /// An application's figures are shown only when at least this many clinics contributed.
    pub min_clinics: u32,
}

impl Default for ReleaseConfig {
    fn default() -> Self {
        ReleaseConfig { min_clinics: 5 }
    }
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
                    "{addr} is not loopback: a listener agents reach over the network needs \
                     [server.tls] (plaintext is allowed on loopback only)"
                ),
            );
        }
        if let Some(tls) = &self.server.tls
            && (tls.names.is_empty() || tls.names.iter().any(|n| n.is_empty() || n.len() > 253))
        {
            p.push(
                "server.tls.names",
                "list the host names or addresses agents use to reach the controller",
            );
        }
        if self.server.shutdown_grace_secs > 300 {
            p.push("server.shutdown_grace_secs", "must be at most 300");
        }
        if self.server.max_message_bytes < 1024 {
            p.push("server.max_message_bytes", "must be at least 1024");
        }
        check_data_dir(&mut p, "storage.data_dir", &self.storage.data_dir);
        if !(8..=65_536).contains(&self.storage.cache_mib) {
            p.push("storage.cache_mib", "must be from 8 to 65536");
        }
        if !(1..=512).contains(&self.storage.postgres_connections) {
            p.push("storage.postgres_connections", "must be from 1 to 512");
        }
        if self.storage.backend == Backend::Postgres && self.storage.postgres_url.is_none() {
            p.push(
                "storage.postgres_url",
                "required when storage.backend = \"postgres\"",
            );
        }
        if !self.dashboard.listen.is_empty()
            && let Some(addr) = check_addr(&mut p, "dashboard.listen", &self.dashboard.listen)
            && !addr.ip().is_loopback()
            && !self.dashboard.behind_tls_proxy
        {
            p.push(
                "dashboard.listen",
                format!(
                    "{addr} is not loopback: serve the dashboard to vendors through a TLS proxy \
                     (and say so with dashboard.behind_tls_proxy = true)"
                ),
            );
        }
        if !self.metrics.listen.is_empty() {
            check_addr(&mut p, "metrics.listen", &self.metrics.listen);
        }
        let t = &self.thresholds;
        for (key, v) in [
            ("thresholds.max_flag_rate_gap", t.max_flag_rate_gap),
            ("thresholds.max_over_use_share", t.max_over_use_share),
            ("thresholds.max_error_rate", t.max_error_rate),
        ] {
            if !(0.0..=1.0).contains(&v) {
                p.push(key, "must be a share from 0 to 1");
            }
        }
        if !(2..=52).contains(&t.trend_weeks) {
            p.push("thresholds.trend_weeks", "must be from 2 to 52");
        }
        if t.drift_min_weeks < 2 || t.drift_min_weeks >= t.trend_weeks {
            p.push(
                "thresholds.drift_min_weeks",
                "must be at least 2 and fewer than thresholds.trend_weeks",
            );
        }
        if !(t.drift_sigmas.is_finite() && t.drift_sigmas > 0.0) {
            p.push("thresholds.drift_sigmas", "must be a positive number");
        }
        self.log.check(&mut p);
        if self.release.min_clinics < 2 {
            p.push(
                "release.min_clinics",
                "must be at least 2: one clinic's figures would identify that clinic",
            );
        }
        if let Some(url) = &self.storage.postgres_url {
            url.check(&mut p, "storage.postgres_url");
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
    fn the_postgres_backend_needs_its_url() {
        let err = Config::from_toml("[storage]\nbackend = \"postgres\"\n").unwrap_err();
        assert!(err.names("storage.postgres_url"), "{err}");
        let c = Config::from_toml(
            "[storage]\nbackend = \"postgres\"\npostgres_url = { env = \"DB_URL\" }\ncache_mib = 64\n",
        )
        .unwrap();
        assert_eq!(c.storage.backend, Backend::Postgres);
        let err = Config::from_toml("[storage]\nbackend = \"mysql\"\ncache_mib = 1\n").unwrap_err();
        assert!(err.to_string().contains("`sled` or `postgres`"), "{err}");
        let err = Config::from_toml("[storage]\ncache_mib = 1\n").unwrap_err();
        assert!(err.names("storage.cache_mib"), "{err}");
        let err = Config::from_toml("[storage]\npostgres_connections = 0\n").unwrap_err();
        assert!(err.names("storage.postgres_connections"), "{err}");
    }

    #[test]
    fn every_bad_key_is_named() {
        let err = Config::from_toml("[server]\nlisten = \"::1\"\n[release]\nmin_clinics = 1\n")
            .unwrap_err();
        assert!(err.names("server.listen"), "{err}");
        assert!(err.names("release.min_clinics"), "{err}");
        let err = Config::from_toml(
            "[thresholds]\nmax_error_rate = 2.0\ntrend_weeks = 3\ndrift_min_weeks = 3\n\
             drift_sigmas = -1.0\n",
        )
        .unwrap_err();
        for key in [
            "thresholds.max_error_rate",
            "thresholds.drift_min_weeks",
            "thresholds.drift_sigmas",
        ] {
            assert!(err.names(key), "{key}: {err}");
        }
        assert!(!err.names("thresholds.trend_weeks"), "{err}");
        let err = Config::from_toml("[relase]\nmin_clinics = 7\n").unwrap_err();
        assert!(err.to_string().contains("relase"), "{err}");
    }
}
