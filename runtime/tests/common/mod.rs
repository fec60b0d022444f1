//! What the runtime's integration tests share: Kafka requests over TCP to an
//! in-process server.

#![allow(dead_code)]

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use strata_proto::codec::header::{decode_response_frame, Request};
use strata_proto::messages::fetch_request::{FetchPartition, FetchTopic};
use strata_proto::messages::metadata_request::MetadataRequestTopic;
use strata_proto::messages::produce_request::{PartitionProduceData, TopicProduceData};
use strata_proto::messages::{FetchRequest, MetadataRequest, ProduceRequest};
use strata_proto::records::{batches, BatchBuilder, Compression, TailMode};
use strata_proto::{RequestBody, RequestHeader, ResponseBody};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const TIMEOUT: Duration = Duration::from_secs(10);
pub const PRODUCE_V: i16 = 9;
pub const FETCH_V: i16 = 12;
pub const METADATA_V: i16 = 12;

pub fn request_frame(correlation_id: i32, version: i16, body: RequestBody) -> BytesMut {
    let header = RequestHeader {
        api_key: body.api_key() as i16,
        api_version: version,
        correlation_id,
        client_id: Some("strata-test".into()),
    };
    let mut buf = BytesMut::new();
    Request { header, body }.encode_frame(&mut buf).expect("encodes");
    buf
}

/// Reads one response frame; `None` if the connection closed.
pub async fn read_frame(stream: &mut TcpStream) -> Option<Bytes> {
    let mut prefix = [0u8; 4];
    match tokio::time::timeout(TIMEOUT, stream.read_exact(&mut prefix)).await.expect("no answer in time") {
        Ok(_) => {}
        Err(_) => return None,
    }
    let len = i32::from_be_bytes(prefix) as usize;
    let mut frame = vec![0u8; len];
    tokio::time::timeout(TIMEOUT, stream.read_exact(&mut frame)).await.expect("no answer in time").ok()?;
    Some(Bytes::from(frame))
}

pub async fn call(stream: &mut TcpStream, correlation_id: i32, version: i16, body: RequestBody) -> ResponseBody {
    let key = body.api_key();
    stream.write_all(&request_frame(correlation_id, version, body)).await.unwrap();
    let frame = read_frame(stream).await.expect("a response");
    let (header, body) = decode_response_frame(frame, key, version).expect("response decodes");
    assert_eq!(header.correlation_id, correlation_id);
    body
}

/// Creates `topic` through Metadata auto-creation; returns its partition count.
pub async fn create_topic(s: &mut TcpStream, topic: &str) -> usize {
    for attempt in 0..50 {
        let body = MetadataRequest {
            topics: Some(vec![MetadataRequestTopic { name: Some(topic.into()), ..Default::default() }]),
            allow_auto_topic_creation: true,
            ..Default::default()
        };
        let ResponseBody::Metadata(m) = call(s, 100 + attempt, METADATA_V, RequestBody::Metadata(body)).await else {
            panic!("not Metadata")
        };
        let t = &m.topics[0];
        if t.error_code == 0 && !t.partitions.is_empty() {
            return t.partitions.len();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("topic {topic} was not created");
}

pub fn batch(values: &[&str]) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None);
    for (i, v) in values.iter().enumerate() {
        b.push(1_700_000_000_000 + i as i64, Some(format!("k{i}").as_bytes()), Some(v.as_bytes()), &[]).unwrap();
    }
    b.build().unwrap()
}

/// Produces one batch to partition 0 with acks=-1; returns the base offset.
pub async fn produce(s: &mut TcpStream, correlation_id: i32, topic: &str, values: &[&str]) -> i64 {
    produce_to(s, correlation_id, topic, 0, values).await
}

/// Produces one batch to `partition` with acks=-1; returns the base offset.
pub async fn produce_to(s: &mut TcpStream, correlation_id: i32, topic: &str, partition: i32, values: &[&str]) -> i64 {
    let (error_code, base_offset) = produce_raw(s, correlation_id, topic, partition, values).await;
    assert_eq!(error_code, 0, "produce error {error_code} on {topic}-{partition}");
    base_offset
}

/// Produces one batch with acks=-1; returns the partition's (error code, base offset).
pub async fn produce_raw(s: &mut TcpStream, correlation_id: i32, topic: &str, partition: i32, values: &[&str]) -> (i16, i64) {
    let body = ProduceRequest {
        acks: -1,
        timeout_ms: 10_000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData { index: partition, records: Some(batch(values)) }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let ResponseBody::Produce(r) = call(s, correlation_id, PRODUCE_V, RequestBody::Produce(body)).await else {
        panic!("not Produce")
    };
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// Fetches partition 0 of `topic` from `offset`; returns (offset, value) of every record.
pub async fn fetch(s: &mut TcpStream, correlation_id: i32, topic: &str, offset: i64) -> (i64, Vec<(i64, String)>) {
    let (hw, records) = fetch_raw(s, correlation_id, topic, 0, offset).await;
    (hw, decode_records(records))
}

/// Fetches `partition` of `topic` from `offset`; returns the high watermark and the record bytes.
pub async fn fetch_raw(s: &mut TcpStream, correlation_id: i32, topic: &str, partition: i32, offset: i64) -> (i64, Bytes) {
    let body = FetchRequest {
        replica_id: -1,
        max_wait_ms: 100,
        min_bytes: 1,
        max_bytes: 50 << 20,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: topic.into(),
            partitions: vec![FetchPartition {
                partition,
                current_leader_epoch: -1,
                fetch_offset: offset,
                last_fetched_epoch: -1,
                log_start_offset: -1,
                partition_max_bytes: 10 << 20,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let ResponseBody::Fetch(r) = call(s, correlation_id, FETCH_V, RequestBody::Fetch(body)).await else {
        panic!("not Fetch")
    };
    assert_eq!(r.error_code, 0);
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.error_code, 0, "fetch error: {p:?}");
    (p.high_watermark, p.records.clone().unwrap_or_default())
}

/// (offset, value) of every record in fetched bytes.
pub fn decode_records(records: Bytes) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for b in batches(records, TailMode::AllowTruncated) {
        let b = b.unwrap();
        b.verify_crc().unwrap();
        let base = b.header().base_offset;
        for r in b.records(1 << 20).unwrap() {
            let r = r.unwrap();
            out.push((base + i64::from(r.offset_delta), String::from_utf8(r.value.unwrap().to_vec()).unwrap()));
        }
    }
    out
}
