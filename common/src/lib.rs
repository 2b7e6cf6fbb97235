//! Pieces the readi agent and controller share: secret sources, logging, shutdown and config errors.

pub mod cli;
pub mod clock;
pub mod config;
pub mod date;
pub mod embedded;
pub mod http;
pub mod identity;
pub mod secret;
pub mod shutdown;
pub mod telemetry;
pub mod token;
