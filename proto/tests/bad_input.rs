//! Bad input, one test per class: every case gives a specific error, never a
//! panic, and the error says where it happened.

use bytes::{BufMut, Bytes, BytesMut};
use strata_proto::codec::header::{Request, RequestHeader};
use strata_proto::messages::{MetadataRequest, ProduceRequest};
use strata_proto::{ApiKey, DecodeErrorKind, FrameDecoder, FrameError, Message, RequestBody};

fn frame_of(key: i16, version: i16, body: &[u8]) -> Bytes {
    let mut w = BytesMut::new();
    w.put_i16(key);
    w.put_i16(version);
    w.put_i32(7); // correlation id
    w.put_i16(3);
    w.put_slice(b"cli");
    if let Some(k) = ApiKey::from_i16(key) {
        if k.request_flexible_from().is_some_and(|f| version >= f) {
            w.put_u8(0); // empty header tagged fields
        }
    }
    w.put_slice(body);
    w.freeze()
}

fn valid_produce(version: i16) -> Bytes {
    let mut req = ProduceRequest { acks: -1, timeout_ms: 1000, ..Default::default() };
    req.topic_data.push(Default::default());
    req.topic_data[0].name = "t".into();
    req.topic_data[0].partition_data.push(Default::default());
    req.topic_data[0].partition_data[0].records = Some(Bytes::from_static(&[1, 2, 3, 4]));
    let mut w = BytesMut::new();
    req.encode(&mut w, version).unwrap();
    w.freeze()
}

#[test]
fn every_truncation_of_a_valid_request_is_an_error_naming_the_message() {
    for v in [3i16, 9] {
        let body = valid_produce(v);
        let full = frame_of(0, v, &body);
        assert!(Request::decode(full.clone()).is_ok());
        let header_len = full.len() - body.len();
        for cut in 0..full.len() {
            let err = Request::decode(full.slice(..cut)).expect_err("a truncated frame must not decode");
            assert!(
                matches!(err.error.kind, DecodeErrorKind::Truncated { .. } | DecodeErrorKind::CountTooLarge { .. }),
                "cut at {cut}: {:?}",
                err.error
            );
            if cut >= header_len {
                let shown = err.error.to_string();
                assert!(shown.contains("ProduceRequest") && shown.contains(&format!("v{v}")), "{shown}");
                assert_eq!(err.header.as_ref().map(|h| h.correlation_id), Some(7));
            }
        }
    }
}

#[test]
fn negative_lengths_are_errors() {
    // Metadata v1: topics array of one, whose name has length -5.
    let mut body = BytesMut::new();
    body.put_i32(1);
    body.put_i16(-5);
    let err = MetadataRequest::decode(&mut body.freeze(), 1).unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::NegativeLength(-5));
    assert_eq!(err.path(), "topics.name");
    // A null (-1) name where v1 does not allow it.
    let mut body = BytesMut::new();
    body.put_i32(1);
    body.put_i16(-1);
    let err = MetadataRequest::decode(&mut body.freeze(), 1).unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::UnexpectedNull);
    // A negative array count other than -1.
    let mut body = BytesMut::new();
    body.put_i32(-2);
    let err = MetadataRequest::decode(&mut body.freeze(), 1).unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::NegativeLength(-2));
}

#[test]
fn huge_lengths_and_counts_larger_than_the_frame_are_refused_before_allocating() {
    // Produce v3 with a topic array claiming 2^31-1 entries.
    let mut body = BytesMut::new();
    body.put_i16(-1); // transactional id
    body.put_i16(1); // acks
    body.put_i32(100); // timeout
    body.put_i32(i32::MAX); // topic count
    body.put_slice(&[0; 16]);
    let err = ProduceRequest::decode(&mut body.freeze(), 3).unwrap_err();
    assert!(matches!(err.kind, DecodeErrorKind::CountTooLarge { count, .. } if count == i32::MAX as u64));
    assert_eq!(err.path(), "topic_data");

    // Produce v3 with a records blob claiming 1 GiB.
    let mut body = BytesMut::new();
    body.put_i16(-1);
    body.put_i16(1);
    body.put_i32(100);
    body.put_i32(1);
    body.put_i16(1);
    body.put_u8(b't');
    body.put_i32(1);
    body.put_i32(0); // partition
    body.put_i32(1 << 30);
    body.put_slice(&[0; 8]);
    let err = ProduceRequest::decode(&mut body.freeze(), 3).unwrap_err();
    assert!(matches!(err.kind, DecodeErrorKind::Truncated { needed, .. } if needed == 1 << 30));
    assert_eq!(err.path(), "topic_data.partition_data.records");

    // Compact (flexible) counts: a varint count of 2^28 with 3 bytes behind it.
    let mut body = BytesMut::new();
    body.put_u8(0); // null transactional id (compact)
    body.put_i16(1);
    body.put_i32(100);
    body.put_slice(&[0x80, 0x80, 0x80, 0x80, 0x01, 0, 0, 0]);
    let err = ProduceRequest::decode(&mut body.freeze(), 9).unwrap_err();
    assert!(matches!(err.kind, DecodeErrorKind::CountTooLarge { .. }), "{err}");
}

#[test]
fn oversized_frames_are_refused_from_their_prefix() {
    let frames = FrameDecoder::new(1024);
    let mut buf = BytesMut::new();
    buf.put_i32(1025);
    assert_eq!(frames.decode(&mut buf), Err(FrameError::TooLarge { size: 1025, max: 1024 }));
    let mut buf = BytesMut::new();
    buf.put_i32(-1);
    assert_eq!(frames.decode(&mut buf), Err(FrameError::NegativeSize(-1)));
}

#[test]
fn unknown_api_keys_keep_the_header_so_the_broker_can_answer() {
    let err = Request::decode(frame_of(9999, 0, &[])).unwrap_err();
    assert_eq!(err.error.kind, DecodeErrorKind::UnknownApiKey(9999));
    let header = err.header.expect("header was readable");
    assert_eq!(
        header,
        RequestHeader { api_key: 9999, api_version: 0, correlation_id: 7, client_id: Some("cli".into()) }
    );
}

#[test]
fn unsupported_versions_are_errors_with_the_header() {
    for (key, version) in [(ApiKey::Produce, 14i16), (ApiKey::Fetch, 3), (ApiKey::Metadata, -1)] {
        let err = Request::decode(frame_of(key as i16, version, &[0; 64])).unwrap_err();
        assert_eq!(
            err.error.kind,
            DecodeErrorKind::UnsupportedVersion { api_key: key as i16, version },
            "{key:?} v{version}"
        );
        assert_eq!(err.header.map(|h| h.api_version), Some(version));
    }
    assert!(RequestBody::decode(ApiKey::Produce, &mut Bytes::new(), 99).is_err());
}

#[test]
fn a_newer_api_versions_request_still_yields_its_header() {
    // Clients probe with their newest ApiVersions version; the broker must read
    // the correlation id to answer with UNSUPPORTED_VERSION in a v0 response.
    let mut w = BytesMut::new();
    w.put_i16(ApiKey::ApiVersions as i16);
    w.put_i16(127);
    w.put_i32(42);
    w.put_i16(-1);
    w.put_u8(0);
    let err = Request::decode(w.freeze()).unwrap_err();
    assert_eq!(err.header.map(|h| h.correlation_id), Some(42));
}

#[test]
fn invalid_utf8_in_a_string_is_an_error() {
    let mut body = BytesMut::new();
    body.put_i32(1);
    body.put_i16(2);
    body.put_slice(&[0xc3, 0x28]);
    let err = MetadataRequest::decode(&mut body.freeze(), 1).unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::InvalidUtf8);
}

#[test]
fn malformed_tagged_fields_are_errors() {
    // Metadata v9 (flexible): empty topics, three flags, then a tagged section
    // whose one field claims 100 bytes.
    let mut body = BytesMut::new();
    body.put_u8(1); // compact array of 0
    body.put_u8(1); // allow auto topic creation
    body.put_u8(0); // include cluster authorized operations (v8-10)
    body.put_u8(0); // include topic authorized operations
    body.put_slice(&[1, 5, 100, 0, 0]); // one tag (5), size 100, 2 bytes
    let err = MetadataRequest::decode(&mut body.freeze(), 9).unwrap_err();
    assert!(matches!(err.kind, DecodeErrorKind::Truncated { .. }));
    assert!(err.path().contains("_tagged_fields"), "{}", err.path());
    // The same with a well-formed unknown tag is skipped.
    let mut body = BytesMut::new();
    body.put_slice(&[1, 1, 0, 0, 1, 5, 2, 0xaa, 0xbb]);
    let req = MetadataRequest::decode(&mut body.freeze(), 9).unwrap();
    assert_eq!(req.topics, Some(vec![]));
}
