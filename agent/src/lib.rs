//! readi agent: redacts PHI, runs READI checks and reports aggregate readiness, inside the clinic.

pub mod config;
pub mod server;
pub mod services;

pub use config::Config;
pub use server::{Error, run};
