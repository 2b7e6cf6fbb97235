//! The agent's gRPC services: the doors that convert protobuf and call the pipeline (Gateway), and
//! the compliance evidence (Compliance).

pub(crate) mod compliance;
pub(crate) mod convert;
pub(crate) mod gateway;
