//! The agent's gRPC services: the doors that convert protobuf and call the pipeline (Gateway), and
//! the compliance evidence (Compliance).

pub mod compliance;
pub mod convert;
pub mod gateway;
