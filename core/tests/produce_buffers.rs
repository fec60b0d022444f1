//! The produce path keeps record bytes in the buffers they arrived in: an
//! object is written from the batches' own memory (no copy), unless the
//! batches are a small part of their request, which would then be kept alive
//! whole by the object; those are copied out.

mod common;

use bytes::Bytes;
use common::{batch, Harness};
use strata_core::broker::BrokerConfig;
use strata_core::io::{Input, Output};
use strata_core::object::parts::ObjectParts;
use strata_proto::codec::header::RequestHeader;
use strata_proto::messages::produce_request::{PartitionProduceData, TopicProduceData};
use strata_proto::messages::ProduceRequest;
use strata_proto::RequestBody;

/// Produces `records` (a slice of the request's buffer) in a request of
/// `frame_bytes`, and returns the object written.
fn produce(h: &mut Harness, records: Bytes, frame_bytes: usize) -> ObjectParts {
    let body: RequestBody = ProduceRequest {
        acks: -1,
        timeout_ms: 1000,
        topic_data: vec![TopicProduceData {
            name: "t".into(),
            partition_data: vec![PartitionProduceData { index: 0, records: Some(records) }],
            ..Default::default()
        }],
        ..Default::default()
    }
    .into();
    let header = RequestHeader { api_key: body.api_key() as i16, api_version: 9, correlation_id: 1, client_id: None };
    let mut out = Vec::new();
    h.broker.handle(h.now, Input::Request { conn: 1, request: 0, header, body, size: frame_bytes }, &mut out);
    let written = out.iter().find_map(|o| match o {
        Output::WriteObject { bytes, .. } => Some(bytes.clone()),
        _ => None,
    });
    written.expect("flush_when_idle writes at once")
}

/// Whether any piece of `object` points into `buffer`.
fn shares(object: &ObjectParts, buffer: &Bytes) -> bool {
    let range = buffer.as_ptr() as usize..buffer.as_ptr() as usize + buffer.len();
    object.parts().iter().any(|p| range.contains(&(p.as_ptr() as usize)))
}

fn harness() -> Harness {
    let mut h = Harness::with_config(BrokerConfig { flush_when_idle: true, ..BrokerConfig::for_tests() });
    h.create_topic("t", 1);
    h
}

#[test]
fn a_batch_that_fills_its_request_is_written_from_the_request_buffer() {
    let mut h = harness();
    let values: Vec<String> = (0..50).map(|i| format!("value-{i}-{}", "x".repeat(100))).collect();
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    let records = batch(&values, None);
    // The request buffer: a small header, then the batch.
    let mut frame = vec![0u8; 64];
    frame.extend_from_slice(&records);
    let frame = Bytes::from(frame);
    let object = produce(&mut h, frame.slice(64..), frame.len());
    assert!(shares(&object, &frame), "the batch was copied on its way to the object");
    assert_eq!(object.slice(0..records.len() as u64).unwrap(), records);
}

#[test]
fn a_small_batch_in_a_large_request_is_copied_out_of_it() {
    let mut h = harness();
    let records = batch(&["a", "b"], None);
    // A request mostly made of something else (refused data, padding).
    let mut frame = vec![0u8; 1 << 20];
    frame[..records.len()].copy_from_slice(&records);
    let frame = Bytes::from(frame);
    let object = produce(&mut h, frame.slice(..records.len()), frame.len());
    assert!(!shares(&object, &frame), "the object would keep the whole 1 MiB request alive");
    assert_eq!(object.slice(0..records.len() as u64).unwrap(), records);
}

#[test]
fn a_tail_fetch_across_the_pieces_of_an_object_in_memory_gets_every_batch_at_its_offset() {
    // Three produces gathered into one object (flush_ms), each batch its own piece.
    let mut h = Harness::new();
    h.create_topic("t", 1);
    let sent: Vec<u64> = [&["a", "b"][..], &["c"], &["d", "e", "f"]]
        .iter()
        .map(|values| h.send(9, Harness::produce_request("t", 0, batch(values, None), -1).into()))
        .collect();
    h.advance(10);
    for r in sent {
        assert!(h.take(r).is_some(), "produce {r} answered");
    }
    assert_eq!(h.objects.len(), 1, "one object holds the three batches");
    let want: Vec<(i64, String)> = ["a", "b", "c", "d", "e", "f"].iter().enumerate().map(|(i, v)| (i as i64, v.to_string())).collect();
    assert_eq!(common::records_of(&h.fetch("t", 0, 0, 1 << 20)), want);
    // From the second batch on: its offsets, not the producer's zero-based ones.
    assert_eq!(common::records_of(&h.fetch("t", 0, 2, 1 << 20)), want[2..]);
}
