//! Golden vectors: request frames captured from real clients (kcat/librdkafka
//! 2.0.2, confluent-kafka, kafka-python; see tests/golden/README.md). Each must
//! decode, and re-encode to exactly the bytes the client sent.

use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use strata_proto::codec::header::{request_header_version, Request, RequestHeader};
use strata_proto::records::{batches, TailMode};
use strata_proto::{ApiKey, RequestBody};

fn golden_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut out = Vec::new();
    let Ok(clients) = std::fs::read_dir(&root) else { return out };
    for client in clients.flatten() {
        if !client.path().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(client.path()).into_iter().flatten().flatten() {
            if f.path().extension().is_some_and(|e| e == "bin") {
                out.push(f.path());
            }
        }
    }
    out.sort();
    out
}

/// Bytes a client sends after the body, which Kafka ignores (and so do we).
fn trailing_bytes(raw: &Bytes) -> usize {
    let mut r = raw.clone();
    let key = ApiKey::from_i16(i16::from_be_bytes([raw[0], raw[1]])).unwrap();
    let version = i16::from_be_bytes([raw[2], raw[3]]);
    RequestHeader::decode(&mut r, request_header_version(key, version)).unwrap();
    RequestBody::decode(key, &mut r, version).unwrap();
    r.len()
}

#[test]
fn every_captured_request_decodes_and_re_encodes_byte_identically() {
    let files = golden_files();
    assert!(files.len() >= 30, "expected the captured golden vectors, found {}", files.len());
    for path in &files {
        let raw = Bytes::from(std::fs::read(path).unwrap());
        let request = Request::decode(raw.clone()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut w = BytesMut::new();
        request.encode_frame(&mut w).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // librdkafka 2.16 writes a null compact topic array in Metadata as a
        // 4-byte placeholder whose first byte is the null marker (librdkafka
        // #5049): Kafka's parser reads the next bytes as the following fields
        // and ignores the 3 left at the end. We decode it the same way.
        let trailing = trailing_bytes(&raw);
        let expected_trailing = if path.ends_with("confluent_kafka/metadata_v12_all_topics.bin") { 3 } else { 0 };
        assert_eq!(trailing, expected_trailing, "{}: trailing bytes", path.display());
        assert_eq!(&w[4..], &raw[..raw.len() - trailing], "{}: re-encoding differs", path.display());
    }
}

#[test]
fn the_captures_cover_the_apis_and_clients_the_issue_names() {
    let files = golden_files();
    for client in ["kcat", "confluent_kafka", "kafka_python"] {
        for api in [ApiKey::ApiVersions, ApiKey::Metadata, ApiKey::Produce, ApiKey::Fetch, ApiKey::JoinGroup, ApiKey::SyncGroup] {
            let found = files.iter().any(|p| {
                p.parent().and_then(|d| d.file_name()).is_some_and(|d| d == client) && {
                    let raw = Bytes::from(std::fs::read(p).unwrap());
                    Request::decode(raw).is_ok_and(|r| r.body.api_key() == api)
                }
            });
            assert!(found, "no {api:?} request captured from {client}");
        }
    }
}

#[test]
fn captured_produce_payloads_are_valid_record_batches() {
    let mut batches_seen = 0;
    for path in golden_files() {
        let raw = Bytes::from(std::fs::read(&path).unwrap());
        let Ok(Request { body: RequestBody::Produce(p), header }) = Request::decode(raw) else { continue };
        for topic in &p.topic_data {
            for part in &topic.partition_data {
                let Some(records) = part.records.clone() else { continue };
                if header.api_version < 3 {
                    continue; // legacy message sets are checked by the records tests
                }
                for batch in batches(records, TailMode::Strict) {
                    let batch = batch.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    batch.verify_crc().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    let records = batch.records(1 << 20).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    let mut n = 0;
                    for record in records {
                        record.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                        n += 1;
                    }
                    assert_eq!(n as i32, batch.header().record_count, "{}", path.display());
                    batches_seen += 1;
                }
            }
        }
    }
    assert!(batches_seen >= 10, "expected produce batches in the captures, saw {batches_seen}");
}
