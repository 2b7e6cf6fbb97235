//! Agent configuration: TOML with unknown keys refused, validated once (`check`), every problem
//! naming its key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use readi_common::config::{LogConfig, Problems, check_addr, check_data_dir, parse_toml};
use readi_common::secret::SecretSource;
use serde::{Deserialize, Serialize};

use crate::phi::{KnownTerm, PhiType};
use crate::redact::{Policy, Style};

/// The commented example config that `readi-agent init` writes. It holds the embedded defaults.
pub const EXAMPLE: &str = include_str!("../../../deploy/config/agent.toml");

/// The agent's configuration. `Config::default()` is the safe embedded default: loopback only, data
/// under `./readi-data`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
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
    /// Metric windows and privacy before egress.
    pub reporting: ReportingConfig,
    /// The OpenAI-compatible HTTP proxy.
    pub proxy: ProxyConfig,
    /// Metrics about the agent itself, for the clinic's monitoring.
    pub metrics: MetricsConfig,
}

/// Prometheus metrics about the agent (never about patients) and a health document.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// `host:port` for `/metrics` and `/healthz`; empty (the default) turns them off. Loopback only.
    pub listen: String,
}

/// The OpenAI-compatible proxy (`POST /v1/chat/completions`, `GET /v1/models`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// `host:port` to serve on; empty (the default) turns the proxy off. Loopback only: it speaks
    /// plain HTTP.
    pub listen: String,
    /// The model provider's base URL (`https://api.openai.com`; `http://` on loopback only).
    pub upstream_url: String,
    /// The provider's API key, from a secret source.
    pub upstream_key: Option<SecretSource>,
    /// Seconds to wait for the provider (each request, and between streamed events).
    pub timeout_secs: u64,
    /// Header naming the application when API tokens are not in use.
    pub app_header: String,
    /// Header naming the session (tags and surrogates are consistent within it); one per request
    /// when absent.
    pub session_header: String,
    /// The application when neither a token nor the header names one.
    pub default_app: Option<String>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            listen: String::new(),
            upstream_url: "https://api.openai.com".to_owned(),
            upstream_key: None,
            timeout_secs: 60,
            app_header: "x-readi-app".to_owned(),
            session_header: "x-readi-session".to_owned(),
            default_app: None,
        }
    }
}

/// Caller authentication by API token.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Require a token on every call even before any token exists. Tokens are always required once
    /// one has been created (`readi-agent tokens add`).
    pub required: bool,
}

/// Retention by crypto-shredding: every data class is sealed under a key that changes every
/// `epoch_days`; a key is destroyed once everything sealed under it is older than the class's limit.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
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
    /// Days outcome baselines (first score of an episode) are kept.
    pub outcomes_days: u64,
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
            // Two years: longer than a course of treatment, so change over an episode is measurable.
            outcomes_days: 730,
            audit_days: 2190,
        }
    }
}

impl RetentionConfig {
    /// (data class, days kept) for every class under retention.
    pub fn classes(&self) -> [(&'static str, u64); 5] {
        [
            ("vault", self.vault_days),
            ("escalations", self.escalations_days),
            ("adverse_events", self.adverse_events_days),
            // Clinicians' reports are adverse-event records with their detail.
            (crate::feedback::TREE, self.adverse_events_days),
            ("outcomes", self.outcomes_days),
        ]
    }
}

/// Escalation delivery.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
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
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
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
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    /// The key-encryption key (64 hex characters). Absent: generated once into `<data_dir>/kek`.
    pub kek: Option<SecretSource>,
}

/// Redaction policy.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
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
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
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
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
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
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Directory of the embedded database; created (mode 0700) on first start.
    pub data_dir: PathBuf,
    /// The embedded database's page cache, in MiB: what bounds the store's memory.
    pub cache_mib: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            data_dir: PathBuf::from("./readi-data"),
            cache_mib: readi_common::embedded::DEFAULT_CACHE_MIB,
        }
    }
}

/// Size limits on requests.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest text accepted in one Redact or Assess call, in bytes.
    pub max_text_bytes: usize,
    /// Largest gRPC message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Requests per second from one caller (an API token, or a peer address where tokens are not
    /// enforced), gRPC and proxy together; 0 accepts any rate.
    pub requests_per_second: u32,
    /// Requests one caller may make at once above that rate.
    pub request_burst: u32,
    /// Long-lived streams (StreamRedact, WatchEscalations) open at once, over all callers.
    pub max_streams: usize,
    /// Text one StreamRedact stream may carry in all, in bytes.
    pub max_stream_bytes: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_text_bytes: 256 * 1024,
            max_message_bytes: 4 * 1024 * 1024,
            requests_per_second: 500,
            request_burst: 1000,
            max_streams: 256,
            max_stream_bytes: 64 * 1024 * 1024,
        }
    }
}

/// The controller this agent reports to.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ControllerLink {
    /// The controller's gRPC URL (`https://controller.example.org:7443`; `http://` on loopback only).
    pub url: String,
    /// The one-time enrollment token, from a secret source.
    pub enrollment_token: Option<SecretSource>,
    /// PEM file of the CA that signed the controller's certificate (for `https://`).
    pub ca: Option<PathBuf>,
    /// First retry delay after a failed upload, in milliseconds; doubles per failure.
    #[serde(default = "default_retry_min_ms")]
    pub retry_min_ms: u64,
    /// Longest delay between upload attempts, in seconds.
    #[serde(default = "default_retry_max_secs")]
    pub retry_max_secs: u64,
}

fn default_retry_min_ms() -> u64 {
    500
}

fn default_retry_max_secs() -> u64 {
    60
}

/// Metric windows and the privacy applied before anything leaves the clinic.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ReportingConfig {
    /// Seconds per metric window (3600 = hourly reports).
    pub window_secs: u64,
    /// Application ids reported on; traffic of other applications is never reported.
    pub apps: Vec<String>,
    /// Demographic segment ids applications may declare; others are not broken out.
    pub segments: Vec<String>,
    /// Cells with a true count from 1 to k-1 are suppressed.
    pub k: u32,
    /// Privacy loss of one cell's noise (discrete Laplace with scale 1/epsilon).
    pub epsilon_per_cell: f64,
    /// Epsilon each application may spend per UTC day; windows past it release nothing.
    pub daily_epsilon_budget: f64,
    /// A session ends after this many idle seconds.
    pub session_idle_secs: u64,
    /// Local hour night-time use starts.
    pub night_start_hour: u32,
    /// Local hour night-time use ends.
    pub night_end_hour: u32,
    /// The clinic's offset from UTC, in minutes.
    pub utc_offset_minutes: i32,
    /// Sessions with fewer messages count as under-use.
    pub under_use_messages: u64,
    /// Sessions with more messages count as over-use.
    pub over_use_messages: u64,
}

impl Default for ReportingConfig {
    fn default() -> Self {
        ReportingConfig {
            window_secs: 3600,
            apps: Vec::new(),
            segments: Vec::new(),
            k: 11,
            epsilon_per_cell: 0.5,
            daily_epsilon_budget: 500.0,
            session_idle_secs: 1800,
            night_start_hour: 22,
            night_end_hour: 6,
            utc_offset_minutes: 0,
            under_use_messages: 2,
            over_use_messages: 100,
        }
    }
}

impl ReportingConfig {
    /// The privacy parameters, in the integer units the mechanism uses.
    pub fn privacy(&self) -> crate::privacy::Params {
        crate::privacy::Params {
            k: self.k,
            micro_epsilon: (self.epsilon_per_cell * 1e6).round() as u64,
            daily_micro_budget: (self.daily_epsilon_budget * 1e6).round() as u64,
        }
    }

    /// The engagement rules.
    pub fn engagement(&self) -> crate::metrics::EngagementRules {
        crate::metrics::EngagementRules {
            session_idle_secs: self.session_idle_secs,
            night_start_hour: self.night_start_hour,
            night_end_hour: self.night_end_hour,
            utc_offset_minutes: self.utc_offset_minutes,
            under_use_messages: self.under_use_messages,
            over_use_messages: self.over_use_messages,
        }
    }

    fn check(&self, p: &mut Problems, reporting: bool) {
        if !(1..=86_400).contains(&self.window_secs) {
            p.push("reporting.window_secs", "must be from 1 to 86400");
        }
        if reporting && self.apps.is_empty() {
            p.push(
                "reporting.apps",
                "list the application ids to report on: an agent with a controller and no \
                 applications would send nothing",
            );
        }
        for (key, ids) in [
            ("reporting.apps", &self.apps),
            ("reporting.segments", &self.segments),
        ] {
            for id in ids {
                if !is_registered_id(id) {
                    p.push(
                        key,
                        format!(
                            "{id:?} must be 1-64 characters of a-z, 0-9, '-', '_' or '.' \
                             (ids leave the clinic; they cannot hold free text)"
                        ),
                    );
                }
            }
        }
        if self.k < 2 {
            p.push("reporting.k", "must be at least 2");
        }
        if !(self.epsilon_per_cell >= 0.01 && self.epsilon_per_cell <= 10.0) {
            p.push("reporting.epsilon_per_cell", "must be from 0.01 to 10");
        }
        if !(self.daily_epsilon_budget >= self.epsilon_per_cell
            && self.daily_epsilon_budget <= 100_000.0)
        {
            p.push(
                "reporting.daily_epsilon_budget",
                "must be at least reporting.epsilon_per_cell and at most 100000",
            );
        }
        if self.session_idle_secs == 0 {
            p.push("reporting.session_idle_secs", "must be at least 1");
        }
        for (key, h) in [
            ("reporting.night_start_hour", self.night_start_hour),
            ("reporting.night_end_hour", self.night_end_hour),
        ] {
            if h > 23 {
                p.push(key, "must be an hour from 0 to 23");
            }
        }
        if self.utc_offset_minutes.abs() > 14 * 60 {
            p.push("reporting.utc_offset_minutes", "must be within -840..840");
        }
    }
}

/// Registered ids (applications, segments): the wire's rule, shared with the controller.
pub use readi_proto::rules::is_registered_id;

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

    /// The grace period after a shutdown signal.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.server.shutdown_grace_secs)
    }
}

mod check;

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
    fn reporting_problems_are_named() {
        let err = Config::from_toml(
            "[controller]\nurl = \"http://controller.example.org:1\"\n\
             [reporting]\nk = 1\nsegments = [\"John Smith\"]\nepsilon_per_cell = 0\n",
        )
        .unwrap_err();
        for key in [
            "controller.url",
            "reporting.apps",
            "reporting.k",
            "reporting.segments",
            "reporting.epsilon_per_cell",
        ] {
            assert!(err.names(key), "{key} missing from: {err}");
        }
        let err = Config::from_toml(
            "[controller]\nurl = \"https://c.example.org\"\n[reporting]\napps = [\"notes\"]\n",
        )
        .unwrap_err();
        assert!(err.names("controller.ca"), "{err}");
        Config::from_toml(
            "[controller]\nurl = \"http://127.0.0.1:9\"\n[reporting]\napps = [\"notes\"]\n",
        )
        .expect("plaintext to a loopback controller is allowed");
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
        let err = Config::from_toml(
            "[limits]
requests_per_second = 10
request_burst = 0
max_streams = 0
max_stream_bytes = 10
",
        )
        .unwrap_err();
        for key in [
            "limits.request_burst",
            "limits.max_streams",
            "limits.max_stream_bytes",
        ] {
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
