//! readi controller: enrolls agents, ingests their aggregate reports and scores READI readiness.

pub mod config;
pub mod server;
pub mod service;

pub use config::Config;
pub use server::{Error, run};
