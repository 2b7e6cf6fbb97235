//! The agent's gRPC services.

pub mod compliance;
pub mod gateway;
