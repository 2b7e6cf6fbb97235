//! API tokens: per-application bearer tokens scoped to a role (`app`, `compliance`, `admin`), stored
//! as SHA-256 digests only. Once any token exists (or `auth.required` is set), every call must carry
//! one; a bad token is UNAUTHENTICATED, a token of the wrong role or application PERMISSION_DENIED,
//! and both are audited.

use readi_common::identity::hex;
use readi_common::token::{digest, same};
use std::sync::Arc;

use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use tonic::{Request, Status};

use crate::audit::Audit;

const TREE: &str = "tokens";
const PREFIX: &str = "rdi_";

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A clinic application: gateway calls for its own application id.
    App,
    /// A compliance officer: the Compliance service, escalations.
    Compliance,
    /// Everything.
    Admin,
}

impl Role {
    /// Parses `app`, `compliance` or `admin`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "app" => Some(Role::App),
            "compliance" => Some(Role::Compliance),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// The name used in configs, output and audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::App => "app",
            Role::Compliance => "compliance",
            Role::Admin => "admin",
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Record {
    role: Role,
    app_id: String,
    created_unix: u64,
    digest: String,
}

/// The authenticated caller, put in each request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's public id.
    pub token_id: String,
    /// Its role.
    pub role: Role,
    /// The application it is scoped to (for `app` tokens).
    pub app_id: String,
}

/// A token as listed (never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// Public id.
    pub id: String,
    /// Role.
    pub role: Role,
    /// Application, for `app` tokens.
    pub app_id: String,
    /// When it was created.
    pub created_unix: u64,
}

/// Why a token operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The store failed.
    #[error("token store: {0}")]
    Store(#[from] sled::Error),
    /// Randomness failed.
    #[error("no randomness available")]
    Random,
    /// No token with that id.
    #[error("no token {0}")]
    NotFound(String),
}

/// The token store.
#[derive(Debug, Clone)]
pub struct Tokens {
    tree: sled::Tree,
    required: bool,
}

impl Tokens {
    /// Opens the token store; `required` makes tokens mandatory even before one exists.
    pub fn open(db: &sled::Db, required: bool) -> Result<Tokens, TokenError> {
        Ok(Tokens {
            tree: db.open_tree(TREE)?,
            required,
        })
    }

    /// Creates a token and returns its full text, shown once.
    pub fn add(&self, role: Role, app_id: &str) -> Result<(TokenInfo, String), TokenError> {
        let rng = SystemRandom::new();
        let mut id = [0u8; 6];
        let mut secret = [0u8; 32];
        rng.fill(&mut id).map_err(|_| TokenError::Random)?;
        rng.fill(&mut secret).map_err(|_| TokenError::Random)?;
        let (id, secret) = (hex(&id), hex(&secret));
        let rec = Record {
            role,
            app_id: app_id.to_owned(),
            created_unix: readi_common::clock::unix_secs(),
            digest: digest(&secret),
        };
        self.tree.insert(
            id.as_bytes(),
            serde_json::to_vec(&rec).expect("token record serializes"),
        )?;
        self.tree.flush()?;
        let info = TokenInfo {
            id: id.clone(),
            role,
            app_id: rec.app_id,
            created_unix: rec.created_unix,
        };
        Ok((info, format!("{PREFIX}{id}_{secret}")))
    }

    /// Deletes a token.
    pub fn revoke(&self, id: &str) -> Result<(), TokenError> {
        self.tree
            .remove(id.as_bytes())?
            .ok_or_else(|| TokenError::NotFound(id.to_owned()))?;
        self.tree.flush()?;
        Ok(())
    }

    /// Every token, without secrets.
    pub fn list(&self) -> Result<Vec<TokenInfo>, TokenError> {
        let mut out = Vec::new();
        for item in self.tree.iter() {
            let (k, v) = item?;
            if let Ok(rec) = serde_json::from_slice::<Record>(&v) {
                out.push(TokenInfo {
                    id: String::from_utf8_lossy(&k).into_owned(),
                    role: rec.role,
                    app_id: rec.app_id,
                    created_unix: rec.created_unix,
                });
            }
        }
        Ok(out)
    }

    /// Whether calls must carry a token.
    pub fn enforced(&self) -> bool {
        self.required || !self.tree.is_empty()
    }

    /// The caller a bearer token belongs to, if it is valid.
    pub fn check(&self, token: &str) -> Option<Caller> {
        let (id, secret) = token.strip_prefix(PREFIX)?.split_once('_')?;
        let rec: Record = serde_json::from_slice(&self.tree.get(id.as_bytes()).ok()??).ok()?;
        same(&digest(secret), &rec.digest).then(|| Caller {
            token_id: id.to_owned(),
            role: rec.role,
            app_id: rec.app_id,
        })
    }
}

/// Authenticates every call of a service: a valid bearer token's caller goes into the request's
/// extensions; a missing or bad one is refused (and audited) when tokens are enforced.
pub fn interceptor(
    tokens: Tokens,
    audit: Arc<Audit>,
    limiter: crate::ratelimit::RateLimiter,
) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
    // Each token's use is audited once an hour, not on every call.
    let seen: Arc<std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>> =
        Arc::default();
    move |mut req: Request<()>| {
        if !tokens.enforced() {
            let peer = req.remote_addr().map(|a| a.ip().to_string());
            limit(&limiter, &format!("peer:{}", peer.unwrap_or_default()))?;
            return Ok(req);
        }
        let presented = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        match presented.and_then(|t| tokens.check(t)) {
            Some(caller) => {
                let due = {
                    let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                    let now = std::time::Instant::now();
                    let due = seen
                        .get(&caller.token_id)
                        .is_none_or(|t| now.duration_since(*t).as_secs() >= 3600);
                    if due {
                        seen.insert(caller.token_id.clone(), now);
                    }
                    due
                };
                if due
                    && let Err(e) =
                        audit.record_by("token_use", &caller.token_id, &caller.app_id, "in use")
                {
                    tracing::error!(error = %e, "Audit write failed");
                }
                limit(&limiter, &caller.token_id)?;
                req.extensions_mut().insert(caller);
                Ok(req)
            }
            None => {
                let what = if presented.is_some() {
                    "invalid token"
                } else {
                    "no token"
                };
                if let Err(e) = audit.record("auth_refused", "", what) {
                    tracing::error!(error = %e, "Audit write failed");
                }
                Err(Status::unauthenticated(
                    "a valid API token is required: send `authorization: Bearer <token>` (readi-agent tokens add)",
                ))
            }
        }
    }
}

/// Refuses a call over its caller's rate, telling the client when to retry.
fn limit(limiter: &crate::ratelimit::RateLimiter, key: &str) -> Result<(), Status> {
    limiter.check(key).map_err(|l| {
        let mut status = Status::resource_exhausted(limiter.message(l));
        let ms = l.retry_after.as_millis().max(1).to_string();
        if let Ok(v) = ms.parse() {
            status.metadata_mut().insert("grpc-retry-pushback-ms", v);
        }
        status
    })
}

/// A refusal by role or application scope; the message names the token and what was needed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

/// Checks the caller's role (and, for `app` tokens, its application) for one operation; a refusal
/// is audited. No caller means tokens are not enforced on this agent (none exist, on loopback), which
/// the safeguards report says. Every door authorizes through this one rule.
pub fn permit(
    caller: Option<&Caller>,
    rpc: &str,
    allowed: &[Role],
    app_id: Option<&str>,
    audit: &Audit,
) -> Result<(), Denied> {
    let Some(caller) = caller else {
        return Ok(());
    };
    let role_ok = caller.role == Role::Admin || allowed.contains(&caller.role);
    let app_ok = caller.role != Role::App || app_id.is_none_or(|a| a == caller.app_id);
    if role_ok && app_ok {
        return Ok(());
    }
    let why = if role_ok {
        format!("token {} is scoped to another application", caller.token_id)
    } else {
        format!(
            "token {} has role {}; {rpc} needs {}",
            caller.token_id,
            caller.role.as_str(),
            allowed
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(" or ")
        )
    };
    if let Err(e) = audit.record_by("auth_denied", &caller.token_id, app_id.unwrap_or(""), &why) {
        tracing::error!(error = %e, "Audit write failed");
    }
    Err(Denied(why))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_stored_hashed_checked_and_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let t = Tokens::open(&db, false).unwrap();
        assert!(!t.enforced());
        let (info, token) = t.add(Role::App, "scribe").unwrap();
        assert!(t.enforced());
        let caller = t.check(&token).unwrap();
        assert_eq!((caller.role, caller.app_id.as_str()), (Role::App, "scribe"));
        let secret = token.rsplit('_').next().unwrap();
        let raw: Vec<u8> = t.tree.get(info.id.as_bytes()).unwrap().unwrap().to_vec();
        assert!(
            !String::from_utf8(raw).unwrap().contains(secret),
            "secret stored"
        );
        let mut wrong = token.clone();
        wrong.pop();
        wrong.push('x');
        assert!(t.check(&wrong).is_none());
        assert!(t.check("rdi_nope_nope").is_none());
        t.revoke(&info.id).unwrap();
        assert!(t.check(&token).is_none());
        assert!(matches!(t.revoke(&info.id), Err(TokenError::NotFound(_))));
    }
}
