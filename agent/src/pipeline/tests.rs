//! The pipeline's failure paths, on a real store.

use std::sync::Arc;

use readi_common::shutdown::{Fatal, Trigger};

use super::redact::RedactIn;
use super::*;
use crate::keys::Keys;

#[tokio::test]
async fn a_vault_failure_fails_closed_without_echoing_text() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path().join("db")).unwrap();
    let keys = Arc::new(Keys::load(None, dir.path(), &db).unwrap());
    let vault =
        Arc::new(Vault::open(&db, Arc::clone(&keys), std::time::Duration::from_secs(600)).unwrap());
    let audit = Arc::new(Audit::open(&db, &keys, 64).unwrap());
    let sinks = Sinks {
        escalations: Arc::new(Escalations::open(&db, Arc::clone(&keys), None).unwrap()),
        adverse: Arc::new(AdverseEvents::open(&db, Arc::clone(&keys)).unwrap()),
        shutdown: Trigger::spawn(std::future::pending()),
        fatal: Fatal::default(),
        metrics: None,
        outcomes: None,
        feedback: Arc::new(Feedback::open(&db, Arc::clone(&keys)).unwrap()),
    };
    let pipeline = Pipeline::new(
        vault,
        audit,
        RedactionConfig::default(),
        &LimitsConfig {
            max_text_bytes: 1 << 20,
            ..Default::default()
        },
        sinks,
    );
    let req = |text: &str| RedactIn {
        text: text.to_owned(),
        app: "app".into(),
        session: "s".into(),
        style: None,
    };
    pipeline
        .redact(None, req("Zebulon Quackenbush called."))
        .await
        .unwrap();
    // Damage every sealed session record: the next call must fail, and say nothing of the text.
    let tree = db.open_tree("vault").unwrap();
    for k in tree.iter().keys() {
        tree.insert(k.unwrap(), b"\x01garbage-garbage-garbage-garbage".to_vec())
            .unwrap();
    }
    let err = pipeline
        .redact(None, req("Zebulon Quackenbush called again."))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Internal);
    let message = err.to_string();
    assert!(message.contains("nothing was returned"), "{message}");
    assert!(!message.contains("Quackenbush"));
}
