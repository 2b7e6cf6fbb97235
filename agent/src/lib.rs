//! readi agent: redacts PHI, runs READI checks and reports aggregate readiness, inside the clinic.
//!
//! Modules only the agent itself uses (the gRPC services, serving, webhooks, rate limits, self
//! metrics, TLS, noise, surrogates) are private, so `unreachable_pub` names any stray `pub` in
//! them; the rest are public for the binary, the demo, the tests, the benches and the fuzz targets.

pub mod adverse;
pub mod audit;
pub mod batch;
pub mod config;
pub mod egress;
pub mod escalation;
pub mod feedback;
pub mod keyring;
pub mod keys;
pub mod mark;
pub mod metrics;
mod noise;
pub mod outcomes;
pub mod phi;
pub mod pipeline;
pub mod privacy;
pub mod proxy;
mod ratelimit;
pub mod redact;
pub mod reporting;
pub mod safeguards;
pub mod safety;
pub mod scrub;
pub mod seal;
pub mod sealed_log;
mod selfmetrics;
mod server;
mod services;
mod surrogate;
mod tls;
pub mod tokens;
pub mod vault;
mod webhook;

pub use config::Config;
pub use server::{Error, run};
