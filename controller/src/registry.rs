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
        let body = serde_json::to_vec_pretty(value).expect("registry values serialise");
        Ok(self.records.put(kind, id, &body)?)
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

    /// Adds (or renames) a vendor.
    pub fn add_vendor(&self, id: &str, name: &str) -> Result<Vendor, RegistryError> {
        check_id("vendor", id)?;
        check_name(name)?;
        let v = Vendor {
            id: id.to_owned(),
            name: name.to_owned(),
        };
        self.write("vendors", id, &v)?;
        Ok(v)
    }

    /// Registers an application to an existing vendor.
    pub fn add_app(&self, id: &str, vendor_id: &str, name: &str) -> Result<App, RegistryError> {
        check_id("application", id)?;
        check_name(name)?;
        if self.vendor(vendor_id)?.is_none() {
            return Err(RegistryError::Invalid(format!(
                "vendor {vendor_id:?} is not registered (readi-controller vendor add)"
            )));
        }
        if let Some(existing) = self.app(id)?
            && existing.vendor_id != vendor_id
        {
            return Err(RegistryError::Invalid(format!(
                "application {id:?} belongs to another vendor"
            )));
        }
        let a = App {
            id: id.to_owned(),
            vendor_id: vendor_id.to_owned(),
            name: name.to_owned(),
        };
        self.write("apps", id, &a)?;
        Ok(a)
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

    /// Revokes a token by id.
    pub fn revoke_token(&self, id: &str) -> Result<bool, RegistryError> {
        if !is_id(id) {
            return Ok(false);
        }
        Ok(self.records.remove("tokens", id)?)
    }

    /// Who a bearer token speaks for: None when it is not valid.
    pub fn check(&self, token: &str) -> Result<Option<Principal>, RegistryError> {
        let Some((id, secret)) = token.strip_prefix(PREFIX).and_then(|t| t.split_once('_')) else {
            return Ok(None);
        };
        let Some(rec) = self.read::<TokenRecord>("tokens", id)? else {
            return Ok(None);
        };
        Ok(same(&digest(secret), &rec.digest).then_some(rec.principal))
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
}
