//! One-time enrollment tokens. An operator issues one with `readi-controller enroll-token`; it is a
//! control record (`records`) holding only the token's SHA-256 and the applications it grants, so it
//! works while the controllers run, on any of them. Redeeming it retires the record, so it works once.

use readi_common::token::{digest, random_hex, same};

use serde::{Deserialize, Serialize};

use crate::records::{RecordError, Records};

/// Token prefix, so a leaked token is recognisable in a scan.
const PREFIX: &str = "rde_";

/// Why a token was not accepted. Messages never echo the token.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    /// Not a token of this format.
    #[error("the enrollment token is malformed (expected rde_<id>_<secret>)")]
    Malformed,
    /// Unknown, already used, or wrong secret: indistinguishable on purpose.
    #[error("the enrollment token is not valid: unknown, already used or revoked")]
    Invalid,
    /// Past its expiry.
    #[error("the enrollment token expired; ask the operator for a new one")]
    Expired,
    /// The token records could not be used.
    #[error("enrollment tokens: {0}")]
    Records(#[from] RecordError),
}

/// What a token grants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// SHA-256 of the secret, hex.
    digest: String,
    /// Applications the enrolled agent may report on.
    pub apps: Vec<String>,
    /// Unix seconds after which the token is refused.
    pub expires_at: i64,
}

/// Issues a token for `apps`, valid for `ttl_secs`, and returns it (shown once, stored only hashed).
pub fn issue(
    records: &dyn Records,
    apps: &[String],
    ttl_secs: i64,
    now: i64,
) -> Result<String, EnrollError> {
    let (id, secret) = (random_hex(6), random_hex(24));
    let grant = Grant {
        digest: digest(&secret),
        apps: apps.to_vec(),
        expires_at: now + ttl_secs,
    };
    let body = serde_json::to_vec_pretty(&grant).expect("grant serialises");
    if !records.create("enrollment", &id, &body)? {
        // 48 random bits collided with a live token: refuse rather than overwrite it.
        return Err(EnrollError::Records(RecordError::Backend(
            "a token with this id exists; issue again".into(),
        )));
    }
    Ok(format!("{PREFIX}{id}_{secret}"))
}

/// Redeems a token once: checks it, then retires it so no second agent can use it.
pub fn redeem(records: &dyn Records, token: &str, now: i64) -> Result<Grant, EnrollError> {
    let (id, secret) = token
        .strip_prefix(PREFIX)
        .and_then(|t| t.split_once('_'))
        .ok_or(EnrollError::Malformed)?;
    if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(EnrollError::Malformed);
    }
    let Some(body) = records.get("enrollment", id)? else {
        return Err(EnrollError::Invalid);
    };
    let grant: Grant = serde_json::from_slice(&body).map_err(|_| EnrollError::Invalid)?;
    if !same(&digest(secret), &grant.digest) {
        return Err(EnrollError::Invalid);
    }
    if now > grant.expires_at {
        return Err(EnrollError::Expired);
    }
    // Of two concurrent redeemers (on any replica), one takes it.
    if records.take("enrollment", id)? {
        Ok(grant)
    } else {
        Err(EnrollError::Invalid)
    }
}

/// An enrolled agent as the control records know it: written at enrollment so the CLI can list
/// and check agents while the controller holds its report store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrolled {
    /// Applications it may report on.
    pub apps: Vec<String>,
    /// When it enrolled, unix seconds.
    pub enrolled_at: i64,
}

/// Records that `agent_id` enrolled.
pub fn record_enrolled(
    records: &dyn Records,
    agent_id: &str,
    enrolled: &Enrolled,
) -> Result<(), EnrollError> {
    let body = serde_json::to_vec_pretty(enrolled).expect("enrollment serialises");
    Ok(records.put("agents", agent_id, &body)?)
}

/// Every agent the control records know, by id.
pub fn enrolled(records: &dyn Records) -> Result<Vec<(String, Enrolled)>, EnrollError> {
    Ok(records
        .list("agents")?
        .into_iter()
        .filter_map(|(id, body)| Some((id, serde_json::from_slice(&body).ok()?)))
        .collect())
}

/// Every revoked agent id.
pub fn revoked(records: &dyn Records) -> Result<Vec<String>, EnrollError> {
    Ok(records
        .list("revoked")?
        .into_iter()
        .map(|(id, _)| id)
        .collect())
}

/// Marks an agent revoked, so the running controllers refuse it at once.
pub fn revoke(records: &dyn Records, agent_id: &str) -> Result<(), EnrollError> {
    Ok(records.put("revoked", agent_id, b"")?)
}

/// Whether an agent has been revoked.
pub fn is_revoked(records: &dyn Records, agent_id: &str) -> Result<bool, EnrollError> {
    Ok(records.get("revoked", agent_id)?.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::FileRecords;

    #[test]
    fn a_token_works_once_and_only_with_its_secret() {
        let d = tempfile::tempdir().unwrap();
        let r = FileRecords::new(d.path());
        let apps = vec!["notes".to_owned()];
        let token = issue(&r, &apps, 3600, 100).unwrap();
        let wrong = format!("{}x", &token[..token.len() - 1]);
        assert!(matches!(redeem(&r, &wrong, 100), Err(EnrollError::Invalid)));
        assert!(matches!(
            redeem(&r, "nonsense", 100),
            Err(EnrollError::Malformed)
        ));
        assert!(matches!(
            redeem(&r, "rde_../../etc_x", 100),
            Err(EnrollError::Malformed)
        ));
        assert_eq!(redeem(&r, &token, 200).unwrap().apps, apps);
        assert!(matches!(redeem(&r, &token, 200), Err(EnrollError::Invalid)));
        // Only the digest is on disk.
        let secret = token.rsplit('_').next().unwrap();
        for f in std::fs::read_dir(d.path().join("enrollment")).unwrap() {
            let body = std::fs::read_to_string(f.unwrap().path()).unwrap();
            assert!(!body.contains(secret));
        }
    }

    #[test]
    fn an_expired_token_is_refused_and_kept() {
        let d = tempfile::tempdir().unwrap();
        let r = FileRecords::new(d.path());
        let token = issue(&r, &["a".into()], 10, 100).unwrap();
        assert!(matches!(redeem(&r, &token, 111), Err(EnrollError::Expired)));
    }

    #[test]
    fn revocation_is_seen_by_id() {
        let d = tempfile::tempdir().unwrap();
        let r = FileRecords::new(d.path());
        assert!(!is_revoked(&r, "agt-1").unwrap());
        revoke(&r, "agt-1").unwrap();
        assert!(is_revoked(&r, "agt-1").unwrap());
    }
}
