//! The readi wire protocol: generated messages and services for agent, controller and report.

pub mod codec;
pub mod json;
pub mod rules;
pub mod signing;

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

/// Fixed bucket upper bounds (inclusive) of each histogram metric; the last bucket is unbounded.
/// Agents bucket with them and may merge adjacent buckets; the controller maps merged buckets back.
pub fn histogram_bounds(metric: report::v1::Metric) -> Option<&'static [i64]> {
    use report::v1::Metric;
    Some(match metric {
        Metric::SecondsToAcknowledge => &[60, 300, 900, 1800, 3600, 14_400, 86_400],
        Metric::MessagesPerSession => &[1, 2, 5, 10, 20, 50, 100],
        Metric::SessionSeconds => &[60, 300, 900, 1800, 3600, 7200],
        Metric::EditRatioPermille => &[50, 100, 200, 300, 500, 750, 1000],
        Metric::OutcomeChange => &[-10, -5, -3, -1, 0, 2, 4],
        Metric::LlmLatencyMs => &[100, 250, 500, 1000, 2000, 5000, 10_000],
        Metric::AgentLatencyUs => &[250, 500, 1000, 2000, 5000, 10_000, 50_000],
        _ => return None,
    })
}
