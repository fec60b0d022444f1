//! `encode_response_frame_deferred`: large records are left out of the buffer
//! and handed back with their positions; spliced back in, the frame is byte
//! for byte the one `encode_response_frame` writes, at every Fetch version.

use bytes::{Bytes, BytesMut};
use strata_proto::codec::header::{encode_response_frame, encode_response_frame_deferred};
use strata_proto::codec::wire::DEFER_MIN_RECORDS;
use strata_proto::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use strata_proto::messages::{FetchResponse, Message, ProduceResponse};
use strata_proto::ResponseBody;

fn splice(buf: &[u8], chunks: &[(usize, Bytes)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    for (pos, b) in chunks {
        out.extend_from_slice(&buf[at..*pos]);
        out.extend_from_slice(b);
        at = *pos;
    }
    out.extend_from_slice(&buf[at..]);
    out
}

fn fetch_response() -> ResponseBody {
    let big = |n: usize, fill: u8| Some(Bytes::from(vec![fill; n]));
    let partitions = vec![
        PartitionData { partition_index: 0, records: big(DEFER_MIN_RECORDS * 3, 1), ..Default::default() },
        PartitionData { partition_index: 1, records: big(100, 2), ..Default::default() },
        PartitionData { partition_index: 2, records: None, ..Default::default() },
        PartitionData { partition_index: 3, records: big(DEFER_MIN_RECORDS, 3), ..Default::default() },
    ];
    let topics = vec![FetchableTopicResponse { topic: "t".into(), partitions, ..Default::default() }];
    FetchResponse { responses: topics, ..Default::default() }.into()
}

#[test]
fn deferred_frames_splice_back_to_the_plain_encoding() {
    let body = fetch_response();
    let (lo, hi) = FetchResponse::VERSIONS;
    for v in lo..=hi {
        let mut plain = BytesMut::new();
        encode_response_frame(&mut plain, 7, v, &body).unwrap();
        // Something already in the buffer (an earlier response) shifts the positions.
        let mut buf = BytesMut::from(&b"earlier"[..]);
        let chunks = encode_response_frame_deferred(&mut buf, 7, v, &body).unwrap();
        assert_eq!(chunks.len(), 2, "v{v}: the two large records are deferred, the small one is copied");
        assert!(buf.len() < plain.len() - DEFER_MIN_RECORDS * 4 + 200, "v{v}");
        assert_eq!(&splice(&buf, &chunks)[7..], &plain[..], "v{v}");
    }
    // Nothing deferred outside the call: the plain encoder copies as before.
    let mut again = BytesMut::new();
    encode_response_frame(&mut again, 7, hi, &body).unwrap();
    assert!(again.len() > DEFER_MIN_RECORDS * 4);
}

#[test]
fn responses_without_records_are_unchanged() {
    let body: ResponseBody = ProduceResponse::default().into();
    let mut plain = BytesMut::new();
    encode_response_frame(&mut plain, 1, 9, &body).unwrap();
    let mut buf = BytesMut::new();
    assert!(encode_response_frame_deferred(&mut buf, 1, 9, &body).unwrap().is_empty());
    assert_eq!(buf, plain);
}

#[test]
fn deferred_produce_requests_splice_back_to_the_plain_encoding() {
    use strata_proto::codec::header::{Request, RequestHeader};
    use strata_proto::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use strata_proto::messages::{ApiKey, ProduceRequest};
    let partition_data = vec![
        PartitionProduceData { index: 0, records: Some(Bytes::from(vec![5; DEFER_MIN_RECORDS * 2])) },
        PartitionProduceData { index: 1, records: Some(Bytes::from(vec![6; 10])) },
    ];
    let topics = vec![TopicProduceData { name: "t".into(), partition_data, ..Default::default() }];
    let body: strata_proto::RequestBody = ProduceRequest { acks: -1, timeout_ms: 30_000, topic_data: topics, ..Default::default() }.into();
    let (lo, hi) = ProduceRequest::VERSIONS;
    for v in lo..=hi {
        let header = RequestHeader { api_key: ApiKey::Produce as i16, api_version: v, correlation_id: 9, client_id: Some("c".into()) };
        let request = Request { header, body: body.clone() };
        let mut plain = BytesMut::new();
        request.encode_frame(&mut plain).unwrap();
        let mut buf = BytesMut::new();
        let chunks = request.encode_frame_deferred(&mut buf).unwrap();
        assert_eq!(chunks.len(), 1, "v{v}: only the large records are left out");
        assert_eq!(splice(&buf, &chunks), &plain[..], "v{v}");
    }
}
