//! The controller's report intake on any bytes: decoding never panics, accepts only what prost
//! itself would have written, and nothing unsigned verifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use readi_controller::ingest::decode_canonical;
use readi_proto::report::v1 as pb;

fuzz_target!(|data: &[u8]| {
    if let Ok(report) = decode_canonical(data) {
        assert_eq!(
            report.encode_to_vec(),
            data,
            "a non-canonical encoding was accepted"
        );
    }
    if let Ok(signed) = pb::SignedReport::decode(data) {
        let _ = decode_canonical(&signed.report);
    }
});
