//! Vendors, their applications, and access tokens, as control records (`records`): written by the
//! CLI and read by the running controllers, so operators register vendors and applications without
//! stopping them. Tokens are stored only as SHA-256 digests.

use readi_common::token::{digest, random_hex, same};
use std::path::Path;
use std::sync::Arc;

use crate::records::{FileRecords, RecordError, Records};

use serde::{Deserialize, Serialize};

/// Token prefix, recognisable in a leak scan.
const PREFIX: &str = "rdc_";

/// Why the registry could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The records could not be read or written.
    #[error("registry: {0}")]
    Records(#[from] RecordError),
    /// A value is not acceptable.
    #[error("{0}")]
    Invalid(String),
}

/// A vendor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vendor {
    /// Its id.
    pub id: String,
    /// Its display name.
    pub name: String,
}

/// A registered application.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    /// Its id, as agents report it.
    pub id: String,
    /// The vendor that owns it.
    pub vendor_id: String,
    /// Its display name.
    pub name: String,
}

/// Who a token speaks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Principal {
    /// Sees every application.
    Operator,
    /// Sees its own applications.
    Vendor(String),
}

#[derive(Debug, Serialize, Deserialize)]
struct TokenRecord {
    digest: String,
    principal: Principal,
}

/// Registered ids: the wire's rule, shared with the agent.
pub use readi_proto::rules::is_registered_id as is_id;

fn check_id(what: &str, id: &str) -> Result<(), RegistryError> {
    if is_id(id) {
        Ok(())
    } else {
        Err(RegistryError::Invalid(format!(
            "{what} {id:?}: ids are 1-64 characters of a-z, 0-9, '-', '_', '.'"
        )))
    }
}

fn check_name(name: &str) -> Result<(), RegistryError> {
    if name.trim().is_empty() || name.chars().count() > 120 || name.chars().any(char::is_control) {
        return Err(RegistryError::Invalid(
            "names are 1-120 printable characters".to_owned(),
        ));
    }
    Ok(())
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(value).expect("registry values serialise")
}

/// An issued access token as listed: its id and whom it speaks for, never its secret or digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    /// The id (the part after `rdc_`, before the second `_`).
    pub id: String,
    /// Whom it speaks for.
    pub principal: Principal,
}

/// The registry.
#[derive(Clone, Debug)]
pub struct Registry {
    records: Arc<dyn Records>,
}

impl Registry {
    /// The registry kept in `records`.
    pub fn new(records: Arc<dyn Records>) -> Registry {
        Registry { records }
    }

    /// The registry in files under `data_dir` (nothing is created until something is written).
    pub fn in_dir(data_dir: &Path) -> Registry {
        Registry::new(Arc::new(FileRecords::new(data_dir)))
    }

    fn write<T: Serialize>(&self, kind: &str, id: &str, value: &T) -> Result<(), RegistryError> {
        Ok(self.records.put(kind, id, &to_json(value))?)
    }

    fn read<T: for<'de> Deserialize<'de>>(
        &self,
        kind: &str,
        id: &str,
    ) -> Result<Option<T>, RegistryError> {
        if !is_id(id) {
            return Ok(None);
        }
        Ok(self
            .records
            .get(kind, id)?
            .and_then(|body| serde_json::from_slice(&body).ok()))
    }

    fn all<T: for<'de> Deserialize<'de>>(&self, kind: &str) -> Result<Vec<T>, RegistryError> {
        Ok(self
            .records
            .list(kind)?
            .into_iter()
            .filter_map(|(_, body)| serde_json::from_slice(&body).ok())
            .collect())
    }

    /// Registers a new vendor; refuses an id already registered (renaming is `rename_vendor`).
    pub fn add_vendor(&self, id: &str, name: &str) -> Result<Vendor, RegistryError> {
        check_id("vendor", id)?;
        check_name(name)?;
        let v = Vendor {
            id: id.to_owned(),
            name: name.to_owned(),
        };
        if !self.records.create("vendors", id, &to_json(&v))? {
            return Err(RegistryError::Invalid(format!(
                "vendor {id:?} is already registered (vendor add --update renames it)"
            )));
        }
        Ok(v)
    }

    /// Renames a registered vendor.
    pub fn rename_vendor(&self, id: &str, name: &str) -> Result<Vendor, RegistryError> {
        check_name(name)?;
        if self.vendor(id)?.is_none() {
            return Err(RegistryError::Invalid(format!(
                "vendor {id:?} is not registered (vendor add without --update registers it)"
            )));
        }
        let v = Vendor {
            id: id.to_owned(),
            name: name.to_owned(),
        };
        self.write("vendors", id, &v)?;
        Ok(v)
    }

    /// Registers a new application to an existing vendor; refuses an id already registered
    /// (renaming is `rename_app`).
    pub fn add_app(&self, id: &str, vendor_id: &str, name: &str) -> Result<App, RegistryError> {
        check_id("application", id)?;
        check_name(name)?;
        self.check_vendor(vendor_id)?;
        let a = App {
            id: id.to_owned(),
            vendor_id: vendor_id.to_owned(),
            name: name.to_owned(),
        };
        if !self.records.create("apps", id, &to_json(&a))? {
            return Err(RegistryError::Invalid(format!(
                "application {id:?} is already registered (app add --update renames it)"
            )));
        }
        Ok(a)
    }

    /// Renames a registered application; it stays with its vendor.
    pub fn rename_app(&self, id: &str, vendor_id: &str, name: &str) -> Result<App, RegistryError> {
        check_name(name)?;
        let Some(existing) = self.app(id)? else {
            return Err(RegistryError::Invalid(format!(
                "application {id:?} is not registered (app add without --update registers it)"
            )));
        };
        if existing.vendor_id != vendor_id {
            return Err(RegistryError::Invalid(format!(
                "application {id:?} belongs to another vendor"
            )));
        }
        let a = App {
            name: name.to_owned(),
            ..existing
        };
        self.write("apps", id, &a)?;
        Ok(a)
    }

    fn check_vendor(&self, vendor_id: &str) -> Result<(), RegistryError> {
        if self.vendor(vendor_id)?.is_none() {
            return Err(RegistryError::Invalid(format!(
                "vendor {vendor_id:?} is not registered (readi-controller vendor add)"
            )));
        }
        Ok(())
    }

    /// A vendor by id.
    pub fn vendor(&self, id: &str) -> Result<Option<Vendor>, RegistryError> {
        self.read("vendors", id)
    }

    /// An application by id.
    pub fn app(&self, id: &str) -> Result<Option<App>, RegistryError> {
        self.read("apps", id)
    }

    /// Every application, by id.
    pub fn apps(&self) -> Result<Vec<App>, RegistryError> {
        self.all("apps")
    }

    /// Every vendor, by id.
    pub fn vendors(&self) -> Result<Vec<Vendor>, RegistryError> {
        self.all("vendors")
    }

    /// Issues a token for `principal` and returns it (shown once, stored as a digest).
    pub fn add_token(&self, principal: Principal) -> Result<String, RegistryError> {
        if let Principal::Vendor(v) = &principal
            && self.vendor(v)?.is_none()
        {
            return Err(RegistryError::Invalid(format!(
                "vendor {v:?} is not registered"
            )));
        }
        let (id, secret) = (random_hex(6), random_hex(24));
        self.write(
            "tokens",
            &id,
            &TokenRecord {
                digest: digest(&secret),
                principal,
            },
        )?;
        Ok(format!("{PREFIX}{id}_{secret}"))
    }

    /// Every issued token, by id.
    pub fn tokens(&self) -> Result<Vec<TokenInfo>, RegistryError> {
        Ok(self
            .records
            .list("tokens")?
            .into_iter()
            .filter_map(|(id, body)| {
                let rec: TokenRecord = serde_json::from_slice(&body).ok()?;
                Some(TokenInfo {
                    id,
                    principal: rec.principal,
                })
            })
            .collect())
    }

    /// Revokes a token by id.
    pub fn revoke_token(&self, id: &str) -> Result<bool, RegistryError> {
        if !is_id(id) {
            return Ok(false);
        }
        Ok(self.records.remove("tokens", id)?)
    }

    /// Who a bearer token speaks for: None when it is not valid.
    pub fn check(&self, token: &str) -> Result<Option<Principal>, RegistryError> {
        Ok(self.check_with_id(token)?.map(|(_, who)| who))
    }

    /// A valid bearer token's id and whom it speaks for; None when it is not valid.
    pub fn check_with_id(&self, token: &str) -> Result<Option<(String, Principal)>, RegistryError> {
        let Some((id, secret)) = token.strip_prefix(PREFIX).and_then(|t| t.split_once('_')) else {
            return Ok(None);
        };
        let Some(rec) = self.read::<TokenRecord>("tokens", id)? else {
            return Ok(None);
        };
        Ok(same(&digest(secret), &rec.digest).then(|| (id.to_owned(), rec.principal)))
    }

    /// Whom the token with this id speaks for, while it is not revoked.
    pub fn token_principal(&self, id: &str) -> Result<Option<Principal>, RegistryError> {
        Ok(self
            .read::<TokenRecord>("tokens", id)?
            .map(|rec| rec.principal))
    }

    /// Whether `who` may see the application.
    pub fn may_see(&self, who: &Principal, app: &App) -> bool {
        match who {
            Principal::Operator => true,
            Principal::Vendor(v) => *v == app.vendor_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendors_see_their_own_applications_only() {
        let d = tempfile::tempdir().unwrap();
        let r = Registry::in_dir(d.path());
        r.add_vendor("acme", "Acme Health").unwrap();
        r.add_vendor("other", "Other Co").unwrap();
        let notes = r.add_app("notes-app", "acme", "Notes").unwrap();
        let chat = r.add_app("chat-app", "other", "Chat").unwrap();
        assert!(r.add_app("x", "nobody", "X").is_err());
        assert!(r.add_app("notes-app", "other", "Stolen").is_err());
        let t = r.add_token(Principal::Vendor("acme".into())).unwrap();
        let who = r.check(&t).unwrap().unwrap();
        assert!(r.may_see(&who, &notes) && !r.may_see(&who, &chat));
        let op = r
            .check(&r.add_token(Principal::Operator).unwrap())
            .unwrap()
            .unwrap();
        assert!(r.may_see(&op, &chat));
        assert_eq!(r.check(&format!("{t}x")).unwrap(), None);
        assert_eq!(r.check("rdc_../../x_y").unwrap(), None);
        let id = t.trim_start_matches(PREFIX).split('_').next().unwrap();
        assert!(r.revoke_token(id).unwrap());
        assert_eq!(r.check(&t).unwrap(), None);
        assert_eq!(r.apps().unwrap().len(), 2);
    }

    #[test]
    fn bad_ids_and_names_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let r = Registry::in_dir(d.path());
        assert!(r.add_vendor("Acme Health", "x").is_err());
        assert!(r.add_vendor("acme", "").is_err());
        assert!(r.add_vendor("acme", "line\nbreak").is_err());
    }

    #[test]
    fn adding_never_overwrites_and_renaming_needs_the_record() {
        let d = tempfile::tempdir().unwrap();
        let r = Registry::in_dir(d.path());
        r.add_vendor("acme", "Acme Health").unwrap();
        let again = r.add_vendor("acme", "Renamed").unwrap_err().to_string();
        assert!(
            again.contains("already registered") && again.contains("--update"),
            "{again}"
        );
        assert_eq!(r.vendor("acme").unwrap().unwrap().name, "Acme Health");
        assert!(r.rename_vendor("nobody", "X").is_err());
        assert_eq!(r.rename_vendor("acme", "Acme").unwrap().name, "Acme");

        r.add_vendor("other", "Other").unwrap();
        r.add_app("notes", "acme", "Notes").unwrap();
        assert!(r.add_app("notes", "acme", "Notes 2").is_err());
        assert!(r.rename_app("notes", "other", "Mine").is_err());
        assert!(r.rename_app("chat", "acme", "Chat").is_err());
        assert_eq!(
            r.rename_app("notes", "acme", "Notes 2").unwrap().name,
            "Notes 2"
        );
        assert_eq!(r.app("notes").unwrap().unwrap().vendor_id, "acme");

        let t = r.add_token(Principal::Vendor("acme".into())).unwrap();
        let listed = r.tokens().unwrap();
        assert_eq!(listed.len(), 1);
        assert!(t.contains(&listed[0].id));
        assert_eq!(listed[0].principal, Principal::Vendor("acme".into()));
    }
}
