//! Malformed messages on the wire get INVALID_ARGUMENT with a useful message, never INTERNAL.

use readi_tests::start_served;

/// RedactRequest as raw bytes: field 1 (`text`) may hold bytes that are not UTF-8.
#[derive(Clone, PartialEq, prost::Message)]
struct RawRedact {
    #[prost(bytes = "vec", tag = "1")]
    text: Vec<u8>,
    #[prost(string, tag = "2")]
    app_id: String,
    #[prost(string, tag = "3")]
    session_id: String,
}

#[tokio::test]
async fn invalid_utf8_is_invalid_argument() {
    let dir = tempfile::tempdir().unwrap();
    let (_agent, addr) = start_served("readi-agent", dir.path());
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path =
        tonic::codegen::http::uri::PathAndQuery::from_static("/readi.agent.v1.Gateway/Redact");
    let msg = RawRedact {
        text: b"Jane \xff\xfe Doe".to_vec(),
        app_id: "app".into(),
        session_id: "s".into(),
    };
    let codec: tonic_prost::ProstCodec<RawRedact, RawRedact> = tonic_prost::ProstCodec::default();
    let err = grpc
        .unary(tonic::Request::new(msg), path, codec)
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(
        err.message().to_lowercase().contains("utf-8") || err.message().contains("decode"),
        "{}",
        err.message()
    );
    assert!(!err.message().contains("Jane"));
}
