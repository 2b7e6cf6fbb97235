//! readi agent: redacts PHI, runs READI checks and reports aggregate readiness, inside the clinic.

pub mod batch;
pub mod config;
pub mod phi;
pub mod redact;
pub mod server;
pub mod services;

pub use config::Config;
pub use server::{Error, run};
