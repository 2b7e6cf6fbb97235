//! The agent's gRPC services. RPCs whose capability has not landed answer UNIMPLEMENTED, naming it.

pub mod compliance;
pub mod gateway;

/// The status for an RPC whose capability is not built yet.
pub(crate) fn not_yet(rpc: &str, capability: &str) -> tonic::Status {
    tonic::Status::unimplemented(format!(
        "{rpc} is not available in this agent version: {capability} has not been built yet"
    ))
}
