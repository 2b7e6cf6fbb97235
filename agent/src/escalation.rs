//! Escalations: risk a human must see. Each is sealed in the store, published to the clinic's
//! on-call watchers and webhooks, re-sent until someone acknowledges it, and acknowledged once.

use readi_common::clock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use prost::Message;
use readi_proto::agent::v1 as pb;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::keys::Keys;
use crate::mark::{Advance, Covered, Mark, MarkError};
use crate::seal::SealError;
use crate::webhook::Dispatcher;

const TREE: &str = "escalations";

/// Why an escalation operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EscalationError {
    /// No escalation has that id.
    #[error("no escalation with that id")]
    NotFound,
    /// It was acknowledged before.
    #[error("the escalation was already acknowledged at unix time {0}")]
    AlreadyAcknowledged(i64),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] sled::Error),
    /// A sealed record did not open (wrong key or damaged).
    #[error("sealed escalation did not open: {0}")]
    Seal(#[from] SealError),
    /// A record opened but does not decode.
    #[error("escalation record is damaged")]
    Corrupt,
    /// The high-water mark could not be advanced: the write is not acknowledged.
    #[error(transparent)]
    Mark(#[from] MarkError),
}

/// How many escalations raised at or before ordinal `upto` the tree holds (those from before marks
/// and those shredded under retention count; ones that do not open do not), and the highest
/// ordinal seen.
fn held(tree: &sled::Tree, keys: &Keys, upto: u64) -> Result<(u64, u64), sled::Error> {
    let (mut held, mut highest) = (0, 0);
    for item in tree.iter() {
        let (k, v) = item?;
        let ordinal = match keys.sealer.open(TREE, &k, &v) {
            Ok(plain) => match serde_json::from_slice::<Record>(&plain) {
                Ok(r) => r.ordinal,
                Err(_) => continue,
            },
            Err(SealError::Shredded) => 0,
            Err(_) => continue,
        };
        highest = highest.max(ordinal);
        if ordinal <= upto {
            held += 1;
        }
    }
    Ok((held, highest))
}

/// What of the escalations the mark covers the store no longer holds, named by id (random, not
/// PHI); `None` when it holds all of it.
pub(crate) fn holds(
    db: &sled::Db,
    keys: &Keys,
    c: &Covered,
) -> Result<Option<String>, sled::Error> {
    let tree = db.open_tree(TREE)?;
    let (held, _) = held(&tree, keys, c.escalations)?;
    if held < c.escalations {
        return Ok(Some(format!(
            "{} acknowledged escalations were recorded but the store holds {held}",
            c.escalations
        )));
    }
    let opens = |id: &str| -> Result<Option<Record>, sled::Error> {
        let Some(sealed) = tree.get(id.as_bytes())? else {
            return Ok(None);
        };
        Ok(match keys.sealer.open(TREE, id.as_bytes(), &sealed) {
            Ok(plain) => serde_json::from_slice(&plain).ok(),
            Err(_) => None,
        })
    };
    if !c.escalation_last.is_empty() && opens(&c.escalation_last)?.is_none() {
        return Ok(Some(format!(
            "escalation {} (the newest acknowledged) is missing or damaged",
            c.escalation_last
        )));
    }
    if !c.ack_last.is_empty() {
        let acked = opens(&c.ack_last)?
            .and_then(|r| Escalations::decode(&r).ok())
            .is_some_and(|e| e.acknowledged_at.is_some());
        if !acked {
            return Ok(Some(format!(
                "the acknowledgement of escalation {} is missing",
                c.ack_last
            )));
        }
    }
    Ok(None)
}

#[derive(Serialize, Deserialize)]
struct Record {
    /// The escalation, protobuf-encoded.
    escalation: Vec<u8>,
    clinician_id: Option<String>,
    disposition: i32,
    last_sent_ms: u64,
    /// Ordinal of the raise (dense, from 1; 0 before marks), so the high-water mark can check that
    /// every escalation raised up to its count is still held.
    #[serde(default)]
    ordinal: u64,
}

fn timestamp(ms: u64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: (ms / 1000) as i64,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    }
}

/// A random id for an escalation: 16 bytes from the system generator, hex.
pub fn new_id(prefix: &str) -> String {
    let mut b = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .expect("the system random generator works");
    let mut s = String::with_capacity(prefix.len() + 32);
    s.push_str(prefix);
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// The escalation store and its publishers.
#[derive(Debug)]
pub struct Escalations {
    tree: sled::Tree,
    keys: Arc<Keys>,
    tx: broadcast::Sender<pb::Escalation>,
    hooks: Option<Dispatcher>,
    // Acknowledgement is read-modify-write; one at a time keeps "acknowledged once" true.
    ack: Mutex<()>,
    /// Covers each raise and acknowledgement before it is returned, when attached.
    mark: OnceLock<Arc<Mark>>,
    raised: AtomicU64,
    acked: AtomicU64,
    /// Held while an ordinal is taken and its escalation inserted, so every lower ordinal is in
    /// the tree before a flush that covers this one.
    raising: Mutex<()>,
}

impl Escalations {
    /// Opens the escalation tree; `hooks` delivers to the configured webhooks.
    pub fn open(
        db: &sled::Db,
        keys: Arc<Keys>,
        hooks: Option<Dispatcher>,
    ) -> Result<Escalations, EscalationError> {
        Ok(Escalations {
            tree: db.open_tree(TREE)?,
            keys,
            tx: broadcast::channel(1024).0,
            hooks,
            ack: Mutex::new(()),
            mark: OnceLock::new(),
            raised: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            raising: Mutex::new(()),
        })
    }

    /// From now on each raise and acknowledgement is covered by `mark` before it returns. Call it
    /// after the store was found to cover the mark (`Mark::behind`).
    pub fn attach(&self, mark: Arc<Mark>) {
        let c = mark.covered();
        // Past any ordinal in the store: it may be ahead of the mark by unacknowledged raises.
        let highest = held(&self.tree, &self.keys, 0).map_or(0, |(_, h)| h);
        self.raised
            .store(highest.max(c.escalations), Ordering::SeqCst);
        self.acked.store(c.acks, Ordering::SeqCst);
        let _ = self.mark.set(mark);
    }

    /// A receiver of every escalation published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<pb::Escalation> {
        self.tx.subscribe()
    }

    fn put(&self, id: &str, rec: &Record) -> Result<(), EscalationError> {
        let plain = serde_json::to_vec(rec).map_err(|_| EscalationError::Corrupt)?;
        let sealed = self.keys.sealer.seal(TREE, id.as_bytes(), &plain)?;
        self.tree.insert(id.as_bytes(), sealed)?;
        Ok(())
    }

    fn get(&self, id: &str) -> Result<Record, EscalationError> {
        let sealed = self
            .tree
            .get(id.as_bytes())?
            .ok_or(EscalationError::NotFound)?;
        let plain = self.keys.sealer.open(TREE, id.as_bytes(), &sealed)?;
        serde_json::from_slice(&plain).map_err(|_| EscalationError::Corrupt)
    }

    fn decode(rec: &Record) -> Result<pb::Escalation, EscalationError> {
        pb::Escalation::decode(rec.escalation.as_slice()).map_err(|_| EscalationError::Corrupt)
    }

    /// Records a new escalation (id and time assigned here), makes it durable, then publishes it.
    pub fn raise(&self, mut e: pb::Escalation) -> Result<pb::Escalation, EscalationError> {
        let now = clock::unix_ms();
        e.id = new_id("esc-");
        e.raised_at = Some(timestamp(now));
        e.acknowledged_at = None;
        let raising = self.raising.lock().unwrap_or_else(|p| p.into_inner());
        let n = self.raised.load(Ordering::SeqCst) + 1;
        let rec = Record {
            escalation: e.encode_to_vec(),
            clinician_id: None,
            disposition: 0,
            last_sent_ms: now,
            ordinal: n,
        };
        self.put(&e.id, &rec)?;
        self.raised.store(n, Ordering::SeqCst);
        drop(raising);
        self.tree.flush()?;
        if let Some(mark) = self.mark.get() {
            mark.advance(Advance::Raised {
                n,
                id: e.id.clone(),
            })?;
        }
        self.publish(&e, false);
        Ok(e)
    }

    fn publish(&self, e: &pb::Escalation, resent: bool) {
        // No watcher connected is normal; the escalation stays pending and is re-sent.
        let _ = self.tx.send(e.clone());
        if let Some(h) = &self.hooks {
            h.deliver(e, resent);
        }
    }

    /// The application an escalation belongs to.
    pub fn app_of(&self, id: &str) -> Result<String, EscalationError> {
        Ok(Self::decode(&self.get(id)?)?.app_id)
    }

    /// Records who acknowledged an escalation and what they did; once only.
    pub fn acknowledge(
        &self,
        id: &str,
        clinician_id: &str,
        disposition: pb::Disposition,
    ) -> Result<(pb::Escalation, u64), EscalationError> {
        let _guard = self.ack.lock().unwrap_or_else(|p| p.into_inner());
        let mut rec = self.get(id)?;
        let mut e = Self::decode(&rec)?;
        if let Some(at) = e.acknowledged_at {
            return Err(EscalationError::AlreadyAcknowledged(at.seconds));
        }
        let now = clock::unix_ms();
        e.acknowledged_at = Some(timestamp(now));
        let raised = e.raised_at.map_or(0, |t| t.seconds.max(0) as u64 * 1000);
        rec.escalation = e.encode_to_vec();
        rec.clinician_id = Some(clinician_id.to_owned());
        rec.disposition = disposition as i32;
        self.put(id, &rec)?;
        let n = self.acked.fetch_add(1, Ordering::SeqCst) + 1;
        self.tree.flush()?;
        if let Some(mark) = self.mark.get() {
            mark.advance(Advance::Acked {
                n,
                id: id.to_owned(),
            })?;
        }
        Ok((e, now.saturating_sub(raised) / 1000))
    }

    /// Every escalation not yet acknowledged, oldest first.
    pub fn pending(&self) -> Result<Vec<pb::Escalation>, EscalationError> {
        let mut out = Vec::new();
        for plain in self
            .keys
            .sealer
            .open_all::<EscalationError>(TREE, &self.tree)
        {
            let plain = plain?;
            let rec: Record =
                serde_json::from_slice(&plain).map_err(|_| EscalationError::Corrupt)?;
            let e = Self::decode(&rec)?;
            if e.acknowledged_at.is_none() {
                out.push(e);
            }
        }
        out.sort_by_key(|e| e.raised_at.map(|t| (t.seconds, t.nanos)));
        Ok(out)
    }

    /// Publishes again every pending escalation last sent `after` ago or longer; returns how many.
    pub fn resend_due(&self, after: Duration) -> Result<usize, EscalationError> {
        let now = clock::unix_ms();
        let mut n = 0;
        for e in self.pending()? {
            let _guard = self.ack.lock().unwrap_or_else(|p| p.into_inner());
            let mut rec = self.get(&e.id)?;
            if Self::decode(&rec)?.acknowledged_at.is_some()
                || now.saturating_sub(rec.last_sent_ms) < after.as_millis() as u64
            {
                continue;
            }
            rec.last_sent_ms = now;
            self.put(&e.id, &rec)?;
            self.publish(&e, true);
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> (tempfile::TempDir, Escalations) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let keys = Arc::new(Keys::load(None, dir.path(), &db).unwrap());
        let e = Escalations::open(&db, keys, None).unwrap();
        (dir, e)
    }

    fn sample() -> pb::Escalation {
        pb::Escalation {
            app_id: "app".into(),
            session_id: "session-canary-1234".into(),
            exchange_id: "x1".into(),
            severity: pb::Severity::Plan as i32,
            source: pb::EventSource::Detected as i32,
            ..Default::default()
        }
    }

    #[test]
    fn raised_is_pending_and_published_until_acknowledged_once() {
        let (_d, store) = open();
        let mut rx = store.subscribe();
        let e = store.raise(sample()).unwrap();
        assert!(e.id.starts_with("esc-") && e.raised_at.is_some());
        assert_eq!(rx.try_recv().unwrap().id, e.id);
        assert_eq!(store.pending().unwrap().len(), 1);
        store
            .acknowledge(&e.id, "dr-1", pb::Disposition::Actioned)
            .unwrap();
        assert!(store.pending().unwrap().is_empty());
        assert!(matches!(
            store.acknowledge(&e.id, "dr-2", pb::Disposition::Actioned),
            Err(EscalationError::AlreadyAcknowledged(_))
        ));
        assert!(matches!(
            store.acknowledge("esc-nope", "dr-1", pb::Disposition::Actioned),
            Err(EscalationError::NotFound)
        ));
    }

    #[test]
    fn unacknowledged_escalations_are_resent() {
        let (_d, store) = open();
        let e = store.raise(sample()).unwrap();
        let mut rx = store.subscribe();
        assert_eq!(store.resend_due(Duration::from_secs(3600)).unwrap(), 0);
        assert_eq!(store.resend_due(Duration::ZERO).unwrap(), 1);
        assert_eq!(rx.try_recv().unwrap().id, e.id);
    }

    #[test]
    fn records_are_sealed() {
        let (_d, store) = open();
        let e = store.raise(sample()).unwrap();
        let raw = store.tree.get(e.id.as_bytes()).unwrap().unwrap();
        assert!(
            !raw.windows(19).any(|w| w == b"session-canary-1234"),
            "session id in clear"
        );
    }
}
