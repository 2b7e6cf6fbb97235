//! readi controller: enrolls agents, ingests their aggregate reports and scores READI readiness.

pub mod aggregate;
pub mod config;
pub mod dashboard;
pub mod enrollment;
pub mod fhir;
pub mod ingest;
pub mod pgstore;
pub mod records;
pub mod registry;
pub mod render;
pub mod scorecard;
pub mod selfmetrics;
pub mod server;
pub mod service;
pub mod session;
pub mod store;
pub mod tls;
pub mod trend;

pub use config::Config;
pub use server::{Error, run};
