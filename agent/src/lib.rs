//! readi agent: redacts PHI, runs READI checks and reports aggregate readiness, inside the clinic.

pub mod adverse;
pub mod audit;
pub mod batch;
pub mod config;
pub mod egress;
pub mod escalation;
pub mod feedback;
pub mod keyring;
pub mod keys;
pub mod metrics;
pub mod noise;
pub mod outcomes;
pub mod phi;
pub mod pipeline;
pub mod privacy;
pub mod proxy;
pub mod ratelimit;
pub mod redact;
pub mod reporting;
pub mod safeguards;
pub mod safety;
pub mod seal;
pub mod sealed_log;
pub mod selfmetrics;
pub mod server;
pub mod services;
pub mod surrogate;
pub mod tls;
pub mod tokens;
pub mod vault;
pub mod webhook;

pub use config::Config;
pub use server::{Error, run};
