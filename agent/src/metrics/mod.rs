//! Metric windows: per-application counters and histograms for the six READI criteria, filled by the
//! gateway as exchanges pass and closed on a fixed clock into what `privacy` turns into a report.
//!
//! Nothing here holds text. Sessions are tracked under keyed hashes (HMAC-SHA-256 with a local secret)
//! of the application's session id; those hashes never leave the agent.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use readi_proto::agent::v1::AdverseEventKind;
use readi_proto::report::v1::Metric;
use serde::{Deserialize, Serialize};

/// Which labels a cell carries. A cell with no labels is its metric's total.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LabelKey {
    /// readi.agent.v1.Category number.
    pub category: u32,
    /// readi.agent.v1.Severity number.
    pub severity: u32,
    /// readi.agent.v1.PhiType number.
    pub phi_type: u32,
    /// Normalised BCP-47 language.
    pub language: String,
    /// Registered segment id.
    pub segment: String,
    /// readi.agent.v1.Measure number.
    pub measure: u32,
    /// readi.agent.v1.CareArm number.
    pub arm: u32,
    /// Error or adverse-event kind number.
    pub kind: u32,
}

impl LabelKey {
    /// The dimension the cell is broken down by; cells of one metric and dimension partition the
    /// metric's total, which is what suppression must protect against subtraction.
    pub fn dimension(&self) -> &'static str {
        match self {
            l if l.category != 0 => "category",
            l if l.severity != 0 => "severity",
            l if l.phi_type != 0 => "phi_type",
            l if !l.language.is_empty() => "language",
            l if !l.segment.is_empty() => "segment",
            l if l.measure != 0 || l.arm != 0 => "measure_arm",
            l if l.kind != 0 => "kind",
            _ => "total",
        }
    }
}

/// A cell's address: metric and labels.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CellKey {
    /// readi.report.v1.Metric number.
    pub metric: i32,
    /// The breakdown.
    pub labels: LabelKey,
}

/// A cell's true value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Value {
    /// A count.
    Count(u64),
    /// Counts per bucket of `bounds(metric)`, one more than the bounds.
    Histogram(Vec<u64>),
}

pub use readi_proto::histogram_bounds as bounds;

/// One application's cells in one window.
pub type AppCells = BTreeMap<CellKey, Value>;

/// A session being tracked, under its keyed hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Session {
    app: String,
    first: u64,
    last: u64,
    messages: u64,
}

/// The open window and the sessions in flight; what is persisted across restarts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowState {
    /// Window start, unix seconds, aligned to the window length.
    pub start: u64,
    /// Cells per application, as (key, value) pairs.
    apps: BTreeMap<String, Vec<(CellKey, Value)>>,
    /// Sessions in flight by hex keyed hash.
    sessions: BTreeMap<String, Session>,
}

/// A closed window: what a report is made from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClosedWindow {
    /// Start, unix seconds (inclusive).
    pub start: u64,
    /// End, unix seconds (exclusive).
    pub end: u64,
    /// Cells per application.
    pub apps: BTreeMap<String, AppCells>,
}

/// How sessions are judged for engagement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngagementRules {
    /// A session ends after this many seconds without a message.
    pub session_idle_secs: u64,
    /// Sessions starting at or after this local hour count as night-time use...
    pub night_start_hour: u32,
    /// ...until this local hour.
    pub night_end_hour: u32,
    /// The clinic's offset from UTC in minutes, for "night".
    pub utc_offset_minutes: i32,
    /// Sessions with fewer messages than this are under-use.
    pub under_use_messages: u64,
    /// Sessions with more messages than this are over-use.
    pub over_use_messages: u64,
}

struct Inner {
    start: u64,
    apps: BTreeMap<String, AppCells>,
    sessions: HashMap<String, Session>,
}

/// The metric windows of a running agent.
pub struct Metrics {
    window_secs: u64,
    apps: Vec<String>,
    segments: Vec<String>,
    rules: EngagementRules,
    session_key: ring::hmac::Key,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("window_secs", &self.window_secs)
            .field("apps", &self.apps)
            .finish_non_exhaustive()
    }
}

/// What one Assess call contributes.
#[derive(Clone, Debug, Default)]
pub struct AssessFacts {
    /// (category, severity) numbers of the findings.
    pub findings: Vec<(u32, u32)>,
    /// Categories flagged in the model's output.
    pub output_flags: Vec<u32>,
    /// The verdict was warn, escalate or block.
    pub flagged: bool,
    /// An escalation was raised.
    pub escalated: bool,
    /// Risk in, no safe reply out.
    pub missed: bool,
    /// The output was blocked.
    pub blocked: bool,
    /// The model's latency in ms, when the caller measured it.
    pub llm_latency_ms: Option<u64>,
    /// Tokens the model call used, when known.
    pub llm_tokens: Option<u64>,
}

/// Languages are reported as `readi_proto::rules` writes them (anything else becomes `und`), so
/// the field can never carry free text.
pub use readi_proto::rules::{is_language as is_normalised_language, normalise_language};

/// Distinct languages kept per application and window; more fold into `und`.
const MAX_LANGUAGES: usize = 32;

impl Metrics {
    /// Windows of `window_secs` for the registered `apps`, segments limited to `segments`, sessions
    /// keyed with `session_secret`; resumes `state` when one was persisted.
    pub fn new(
        window_secs: u64,
        apps: Vec<String>,
        segments: Vec<String>,
        rules: EngagementRules,
        session_secret: &[u8],
        state: Option<WindowState>,
        now: u64,
    ) -> Metrics {
        let window_secs = window_secs.max(1);
        let inner = match state {
            Some(s) => Inner {
                start: s.start,
                apps: s
                    .apps
                    .into_iter()
                    .map(|(app, cells)| (app, cells.into_iter().collect()))
                    .collect(),
                sessions: s.sessions.into_iter().collect(),
            },
            None => Inner {
                start: now - now % window_secs,
                apps: BTreeMap::new(),
                sessions: HashMap::new(),
            },
        };
        Metrics {
            window_secs,
            apps,
            segments,
            rules,
            session_key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, session_secret),
            inner: Mutex::new(inner),
        }
    }

    /// The window length in seconds.
    pub fn window_secs(&self) -> u64 {
        self.window_secs
    }

    /// Whether the application is registered for reporting.
    pub fn reports_on(&self, app: &str) -> bool {
        self.apps.iter().any(|a| a == app)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves counts, never PHI; keep counting.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn session_id(&self, app: &str, session: &str) -> String {
        let mut msg = Vec::with_capacity(app.len() + session.len() + 1);
        msg.extend_from_slice(app.as_bytes());
        msg.push(0);
        msg.extend_from_slice(session.as_bytes());
        let tag = ring::hmac::sign(&self.session_key, &msg);
        tag.as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Runs `f` on the application's cells, or does nothing for an unregistered application: its
    /// id could be anything, and only registered ids may leave the clinic.
    fn with_app(&self, app: &str, f: impl FnOnce(&mut AppCells, &mut Inner)) {
        if !self.reports_on(app) {
            return;
        }
        let mut inner = self.lock();
        let mut cells = inner.apps.remove(app).unwrap_or_default();
        f(&mut cells, &mut inner);
        inner.apps.insert(app.to_owned(), cells);
    }

    fn touch(&self, inner: &mut Inner, app: &str, session: &str, now: u64) {
        let id = self.session_id(app, session);
        let s = inner.sessions.entry(id).or_insert_with(|| Session {
            app: app.to_owned(),
            first: now,
            last: now,
            messages: 0,
        });
        s.messages += 1;
        s.last = s.last.max(now);
    }

    /// A Redact call: PHI spans by type (PhiType numbers) and the agent's latency.
    pub fn redact(&self, app: &str, session: &str, phi_types: &[u32], latency_us: u64, now: u64) {
        self.with_app(app, |cells, inner| {
            add(cells, Metric::Requests, LabelKey::default(), 1);
            for &t in phi_types {
                add(cells, Metric::PhiRedacted, LabelKey::default(), 1);
                let l = LabelKey {
                    phi_type: t,
                    ..Default::default()
                };
                add(cells, Metric::PhiRedacted, l, 1);
            }
            observe(
                cells,
                Metric::AgentLatencyUs,
                LabelKey::default(),
                latency_us as i64,
            );
            self.touch(inner, app, session, now);
        });
    }

    /// PHI found in text on its way out of the clinic after redaction (the proxy checks what it
    /// sends); a zero is recorded too, so a measured zero differs from no measurement.
    pub fn residual_phi(&self, app: &str, n: u64) {
        self.with_app(app, |cells, _| {
            add(cells, Metric::ResidualPhi, LabelKey::default(), n);
        });
    }

    /// A Reidentify call.
    pub fn reidentify(&self, app: &str, latency_us: u64) {
        self.with_app(app, |cells, _| {
            add(cells, Metric::Requests, LabelKey::default(), 1);
            add(cells, Metric::ReidentifyCalls, LabelKey::default(), 1);
            observe(
                cells,
                Metric::AgentLatencyUs,
                LabelKey::default(),
                latency_us as i64,
            );
        });
    }

    fn group_labels(&self, language: &str, segment: &str) -> Vec<LabelKey> {
        let mut out = vec![LabelKey::default()];
        let language = if language.is_empty() {
            "und".to_owned()
        } else {
            normalise_language(language)
        };
        out.push(LabelKey {
            language,
            ..Default::default()
        });
        if self.segments.iter().any(|s| s == segment) {
            out.push(LabelKey {
                segment: segment.to_owned(),
                ..Default::default()
            });
        }
        out
    }

    /// An Assess call and what it found.
    #[allow(clippy::too_many_arguments)]
    pub fn assess(
        &self,
        app: &str,
        session: &str,
        language: &str,
        segment: &str,
        facts: &AssessFacts,
        latency_us: u64,
        now: u64,
    ) {
        self.with_app(app, |cells, inner| {
            add(cells, Metric::Requests, LabelKey::default(), 1);
            let mut groups = self.group_labels(language, segment);
            fold_languages(cells, &mut groups);
            for g in &groups {
                add(cells, Metric::Exchanges, g.clone(), 1);
                if facts.flagged {
                    add(cells, Metric::FlaggedExchanges, g.clone(), 1);
                }
            }
            for &(category, severity) in &facts.findings {
                add(cells, Metric::SafetyFindings, LabelKey::default(), 1);
                let by_cat = LabelKey {
                    category,
                    ..Default::default()
                };
                add(cells, Metric::SafetyFindings, by_cat, 1);
                if severity != 0 {
                    let by_sev = LabelKey {
                        severity,
                        ..Default::default()
                    };
                    add(cells, Metric::SafetyFindings, by_sev, 1);
                }
            }
            for &category in &facts.output_flags {
                add(cells, Metric::OutputFlags, LabelKey::default(), 1);
                let l = LabelKey {
                    category,
                    ..Default::default()
                };
                add(cells, Metric::OutputFlags, l, 1);
            }
            let mut event = |kind: AdverseEventKind| {
                let kind = kind as u32;
                add(cells, Metric::AdverseEvents, LabelKey::default(), 1);
                let l = LabelKey {
                    kind,
                    ..Default::default()
                };
                add(cells, Metric::AdverseEvents, l, 1);
            };
            if facts.escalated {
                event(AdverseEventKind::Escalation);
            }
            if facts.missed {
                event(AdverseEventKind::MissedEscalation);
            }
            if facts.blocked {
                event(AdverseEventKind::HarmfulOutput);
            }
            if facts.escalated {
                add(cells, Metric::EscalationsRaised, LabelKey::default(), 1);
            }
            if facts.missed {
                add(cells, Metric::MissedEscalations, LabelKey::default(), 1);
            }
            if let Some(ms) = facts.llm_latency_ms {
                observe(cells, Metric::LlmLatencyMs, LabelKey::default(), ms as i64);
            }
            if let Some(t) = facts.llm_tokens {
                add(cells, Metric::Tokens, LabelKey::default(), t);
            }
            // Latency overall and by language and segment, so slower service for a group shows.
            for g in &groups {
                observe(cells, Metric::AgentLatencyUs, g.clone(), latency_us as i64);
            }
            self.touch(inner, app, session, now);
        });
    }

    /// A clinician's report, counted as an adverse event of its kind (4-7); one that raised an
    /// escalation counts as raised, so acknowledgement figures include it.
    pub fn feedback(&self, app: &str, kind: u32, escalated: bool) {
        self.with_app(app, |cells, _| {
            add(cells, Metric::AdverseEvents, LabelKey::default(), 1);
            let l = LabelKey {
                kind,
                ..Default::default()
            };
            add(cells, Metric::AdverseEvents, l, 1);
            if escalated {
                add(cells, Metric::EscalationsRaised, LabelKey::default(), 1);
            }
        });
    }

    /// A call that failed, by kind (a gRPC code number), counted by language when known.
    pub fn error(&self, app: &str, kind: u32, language: Option<&str>) {
        self.with_app(app, |cells, _| {
            add(cells, Metric::Errors, LabelKey::default(), 1);
            let l = LabelKey {
                kind,
                ..Default::default()
            };
            add(cells, Metric::Errors, l, 1);
            if let Some(language) = language {
                let mut groups = self.group_labels(language, "");
                fold_languages(cells, &mut groups);
                for g in groups {
                    add(cells, Metric::ErrorsByGroup, g, 1);
                }
            }
        });
    }

    /// An escalation acknowledged after `secs`.
    pub fn acknowledged(&self, app: &str, secs: u64) {
        self.with_app(app, |cells, _| {
            add(
                cells,
                Metric::EscalationsAcknowledged,
                LabelKey::default(),
                1,
            );
            observe(
                cells,
                Metric::SecondsToAcknowledge,
                LabelKey::default(),
                secs as i64,
            );
        });
    }

    /// A clinician's edit of an AI draft, as a ratio in per-mille.
    pub fn note_edit(&self, app: &str, permille: u64) {
        self.with_app(app, |cells, _| {
            observe(
                cells,
                Metric::EditRatioPermille,
                LabelKey::default(),
                permille as i64,
            );
        });
    }

    /// An outcome score change over an episode, by measure and arm.
    pub fn outcome_change(&self, app: &str, measure: u32, arm: u32, change: i64) {
        self.with_app(app, |cells, _| {
            let l = LabelKey {
                measure,
                arm,
                ..Default::default()
            };
            observe(cells, Metric::OutcomeChange, l, change);
        });
    }

    /// Ends sessions idle past the limit, counting them into the current window.
    fn end_idle_sessions(&self, inner: &mut Inner, now: u64, all: bool) {
        let idle = self.rules.session_idle_secs;
        let ended: Vec<String> = inner
            .sessions
            .iter()
            .filter(|(_, s)| all || now.saturating_sub(s.last) >= idle)
            .map(|(k, _)| k.clone())
            .collect();
        for key in ended {
            let Some(s) = inner.sessions.remove(&key) else {
                continue;
            };
            let cells = inner.apps.entry(s.app.clone()).or_default();
            let none = LabelKey::default;
            add(cells, Metric::Sessions, none(), 1);
            observe(cells, Metric::MessagesPerSession, none(), s.messages as i64);
            observe(
                cells,
                Metric::SessionSeconds,
                none(),
                (s.last - s.first) as i64,
            );
            if self.is_night(s.first) {
                add(cells, Metric::NightSessions, none(), 1);
            }
            if s.messages < self.rules.under_use_messages {
                add(cells, Metric::UnderUse, none(), 1);
            }
            if s.messages > self.rules.over_use_messages {
                add(cells, Metric::OverUse, none(), 1);
            }
        }
    }

    fn is_night(&self, unix: u64) -> bool {
        let local = unix as i64 + i64::from(self.rules.utc_offset_minutes) * 60;
        let hour = (local.rem_euclid(86_400) / 3600) as u32;
        let (from, to) = (self.rules.night_start_hour, self.rules.night_end_hour);
        if from <= to {
            (from..to).contains(&hour)
        } else {
            hour >= from || hour < to
        }
    }

    /// Closes the open window when its time is up (ending idle sessions into it first) and opens the
    /// one containing `now`. A clock that moved backwards keeps the open window open.
    pub fn close_if_due(&self, now: u64) -> Option<ClosedWindow> {
        let mut inner = self.lock();
        let end = inner.start + self.window_secs;
        if now < end {
            return None;
        }
        self.end_idle_sessions(&mut inner, now, false);
        let apps = std::mem::take(&mut inner.apps);
        let start = inner.start;
        inner.start = now - now % self.window_secs;
        Some(ClosedWindow { start, end, apps })
    }

    /// The state to persist: the open window and the sessions in flight.
    pub fn snapshot(&self) -> WindowState {
        let inner = self.lock();
        WindowState {
            start: inner.start,
            apps: inner
                .apps
                .iter()
                .map(|(app, cells)| {
                    (
                        app.clone(),
                        cells.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                    )
                })
                .collect(),
            sessions: inner
                .sessions
                .iter()
                .map(|(k, s)| (k.clone(), s.clone()))
                .collect(),
        }
    }

    /// The keyed hash an outcome episode and measure are stored under.
    pub fn episode_key(&self, app: &str, episode: &str, measure: u32) -> String {
        self.session_id(app, &format!("episode\u{0}{episode}\u{0}{measure}"))
    }

    /// Start of the open window, unix seconds.
    pub fn window_start(&self) -> u64 {
        self.lock().start
    }

    /// Number of sessions in flight.
    pub fn sessions_in_flight(&self) -> usize {
        self.lock().sessions.len()
    }
}

/// Keeps at most MAX_LANGUAGES distinct languages per window; later ones count as `und`.
fn fold_languages(cells: &AppCells, groups: &mut [LabelKey]) {
    for g in groups.iter_mut().filter(|g| !g.language.is_empty()) {
        let known = cells
            .keys()
            .filter(|k| k.metric == Metric::Exchanges as i32 && !k.labels.language.is_empty())
            .map(|k| k.labels.language.as_str())
            .collect::<std::collections::BTreeSet<_>>();
        if !known.contains(g.language.as_str()) && known.len() >= MAX_LANGUAGES {
            g.language = "und".to_owned();
        }
    }
}

fn add(cells: &mut AppCells, metric: Metric, labels: LabelKey, n: u64) {
    let key = CellKey {
        metric: metric as i32,
        labels,
    };
    match cells.entry(key).or_insert(Value::Count(0)) {
        Value::Count(c) => *c += n,
        Value::Histogram(_) => {}
    }
}

fn observe(cells: &mut AppCells, metric: Metric, labels: LabelKey, x: i64) {
    let Some(bounds) = bounds(metric) else {
        return;
    };
    let key = CellKey {
        metric: metric as i32,
        labels,
    };
    let slot = bounds.iter().position(|&b| x <= b).unwrap_or(bounds.len());
    match cells
        .entry(key)
        .or_insert_with(|| Value::Histogram(vec![0; bounds.len() + 1]))
    {
        Value::Histogram(h) => h[slot] += 1,
        Value::Count(_) => {}
    }
}

#[cfg(test)]
mod tests;
