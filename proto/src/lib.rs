//! The readi wire protocol: generated messages and services for agent, controller and report.

pub mod codec;
pub mod json;

/// Agent-side API: the gateway used by clinic applications and the compliance API.
pub mod agent {
    /// Version 1.
    #[allow(missing_docs, unreachable_pub, missing_debug_implementations, clippy::all)]
    #[rustfmt::skip]
    pub mod v1 {
        tonic::include_proto!("readi.agent.v1");
    }
}

/// Controller API: enrollment, reports, scorecards.
pub mod controller {
    /// Version 1.
    #[allow(missing_docs, unreachable_pub, missing_debug_implementations, clippy::all)]
    #[rustfmt::skip]
    pub mod v1 {
        tonic::include_proto!("readi.controller.v1");
    }
}

/// The report that leaves a clinic.
pub mod report {
    /// Version 1.
    #[allow(missing_docs, unreachable_pub, missing_debug_implementations, clippy::all)]
    #[rustfmt::skip]
    pub mod v1 {
        tonic::include_proto!("readi.report.v1");
    }
}

/// The encoded `FileDescriptorSet` of every readi .proto file, for reflection and schema tests.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/readi_descriptor.bin"));
