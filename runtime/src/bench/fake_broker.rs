//! A tiny in-memory Kafka broker for testing the bench tool end to end:
//! ApiVersions, Metadata, CreateTopics, Produce, Fetch and ListOffsets, one
//! node, everything in memory. Faults can be switched on to check that the
//! tool catches them: a gap in the offsets, or produce answers whose base
//! offsets overlap.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use strata_proto::codec::header::{encode_response_frame, Request};
use strata_proto::messages::api_versions_response::ApiVersion;
use strata_proto::messages::create_topics_response::CreatableTopicResult;
use strata_proto::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use strata_proto::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use strata_proto::messages::metadata_response::{MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic};
use strata_proto::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use strata_proto::messages::{
    ApiVersionsResponse, CreateTopicsResponse, FetchResponse, ListOffsetsResponse, MetadataResponse, ProduceResponse,
};
use strata_proto::records::{batches, set_base_offset, TailMode};
use strata_proto::{ApiKey, FrameDecoder, RequestBody, ResponseBody, Uuid};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Faults to inject.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// When a partition's log end reaches this offset, skip 3 offsets (a gap).
    pub gap_at: Option<i64>,
    /// Answer the n-th produce (counting from 0) with a base offset one too low.
    pub overlap_at_produce: Option<u64>,
    /// Answer the first n produce requests NOT_LEADER_OR_FOLLOWER, writing nothing.
    pub not_leader_first: u64,
}

#[derive(Debug, Default)]
struct Partition {
    /// Idempotence: the next expected sequence per producer id.
    sequences: HashMap<i64, i32>,
    /// (base offset, batch bytes with the base offset written in).
    batches: Vec<(i64, i64, Bytes)>,
    next: i64,
}

#[derive(Debug)]
struct Topic {
    id: Uuid,
    partitions: Vec<Partition>,
}

#[derive(Debug, Default)]
struct State {
    topics: HashMap<String, Topic>,
    produces: u64,
    producer_ids: i64,
    faults: Faults,
    gap_done: bool,
}

/// A running fake broker.
pub struct FakeBroker {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeBroker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeBroker {
    /// Starts listening on 127.0.0.1 (any port).
    pub async fn start(faults: Faults) -> FakeBroker {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(State { faults, ..Default::default() }));
        let st = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(serve(sock, st.clone(), addr));
            }
        });
        FakeBroker { addr, state, task }
    }

    /// "127.0.0.1:port".
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// The log end offset of a partition.
    pub fn log_end(&self, topic: &str, partition: usize) -> i64 {
        let st = self.state.lock().unwrap();
        st.topics.get(topic).map_or(-1, |t| t.partitions[partition].next)
    }
}

async fn serve(mut sock: TcpStream, state: Arc<Mutex<State>>, addr: SocketAddr) {
    let _ = sock.set_nodelay(true);
    let frames = FrameDecoder::new(256 << 20);
    let mut buf = BytesMut::new();
    loop {
        while let Ok(Some(frame)) = frames.decode(&mut buf) {
            let Ok(req) = Request::decode(frame) else { return };
            let version = req.header.api_version;
            let corr = req.header.correlation_id;
            let fetch_wait = match &req.body {
                RequestBody::Fetch(f) => Some(Duration::from_millis(f.max_wait_ms.clamp(0, 50) as u64)),
                _ => None,
            };
            let mut answer = handle(&state, req.body, version, addr);
            if let (Some(wait), Some(ResponseBody::Fetch(f))) = (fetch_wait, &answer) {
                let empty = f.responses.iter().all(|t| t.partitions.iter().all(|p| p.records.as_ref().is_none_or(|r| r.is_empty())));
                if empty && !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
            }
            if let Some(body) = answer.take() {
                let mut out = BytesMut::new();
                encode_response_frame(&mut out, corr, version, &body).expect("encode response");
                if sock.write_all(&out).await.is_err() {
                    return;
                }
            }
        }
        match sock.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

fn handle(state: &Mutex<State>, body: RequestBody, version: i16, addr: SocketAddr) -> Option<ResponseBody> {
    let mut st = state.lock().unwrap();
    Some(match body {
        RequestBody::ApiVersions(_) => ResponseBody::ApiVersions(ApiVersionsResponse {
            api_keys: [
                ApiKey::Produce,
                ApiKey::Fetch,
                ApiKey::ListOffsets,
                ApiKey::Metadata,
                ApiKey::ApiVersions,
                ApiKey::CreateTopics,
                ApiKey::InitProducerId,
            ]
            .iter()
            .map(|k| ApiVersion { api_key: *k as i16, min_version: k.versions().0, max_version: k.versions().1 })
            .collect(),
            ..Default::default()
        }),
        RequestBody::Metadata(m) => {
            let names: Vec<String> = m.topics.unwrap_or_default().into_iter().filter_map(|t| t.name).collect();
            ResponseBody::Metadata(MetadataResponse {
                brokers: vec![MetadataResponseBroker {
                    node_id: 0,
                    host: addr.ip().to_string(),
                    port: i32::from(addr.port()),
                    rack: None,
                }],
                cluster_id: Some("fake".into()),
                controller_id: 0,
                topics: names
                    .into_iter()
                    .map(|name| match st.topics.get(&name) {
                        Some(t) => MetadataResponseTopic {
                            name: Some(name),
                            topic_id: t.id,
                            partitions: (0..t.partitions.len() as i32)
                                .map(|i| MetadataResponsePartition {
                                    partition_index: i,
                                    leader_id: 0,
                                    leader_epoch: 0,
                                    replica_nodes: vec![0],
                                    isr_nodes: vec![0],
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        },
                        None => MetadataResponseTopic { error_code: 3, name: Some(name), ..Default::default() },
                    })
                    .collect(),
                ..Default::default()
            })
        }
        RequestBody::CreateTopics(c) => {
            let mut results = Vec::new();
            for t in c.topics {
                if st.topics.contains_key(&t.name) {
                    results.push(CreatableTopicResult { name: t.name, error_code: 36, ..Default::default() });
                    continue;
                }
                let n = st.topics.len() as u64 + 1;
                let id = Uuid::from_u64_pair(0xfeed, n);
                let parts = (0..t.num_partitions.max(1)).map(|_| Partition::default()).collect();
                st.topics.insert(t.name.clone(), Topic { id, partitions: parts });
                results.push(CreatableTopicResult { name: t.name, topic_id: id, num_partitions: t.num_partitions, ..Default::default() });
            }
            ResponseBody::CreateTopics(CreateTopicsResponse { topics: results, ..Default::default() })
        }
        RequestBody::Produce(p) => {
            let nth = st.produces;
            st.produces += 1;
            let faults = st.faults;
            let mut responses = Vec::new();
            if nth < faults.not_leader_first {
                let responses = p
                    .topic_data
                    .into_iter()
                    .map(|td| TopicProduceResponse {
                        partition_responses: td
                            .partition_data
                            .iter()
                            .map(|pd| PartitionProduceResponse { index: pd.index, error_code: 6, base_offset: -1, ..Default::default() })
                            .collect(),
                        name: td.name,
                        topic_id: td.topic_id,
                    })
                    .collect();
                return Some(ResponseBody::Produce(ProduceResponse { responses, ..Default::default() }));
            }
            for td in p.topic_data {
                let name = if td.name.is_empty() {
                    st.topics.iter().find(|(_, t)| t.id == td.topic_id).map(|(n, _)| n.clone()).unwrap_or_default()
                } else {
                    td.name.clone()
                };
                let mut parts = Vec::new();
                for pd in td.partition_data {
                    let mut resp = PartitionProduceResponse { index: pd.index, ..Default::default() };
                    let gap_done = st.gap_done;
                    match st.topics.get_mut(&name).and_then(|t| t.partitions.get_mut(pd.index as usize)) {
                        None => resp.error_code = 3,
                        Some(part) => {
                            let mut first_base = -1;
                            let mut gap = false;
                            for b in batches(pd.records.unwrap_or_default(), TailMode::Strict) {
                                let Ok(b) = b else {
                                    resp.error_code = 87;
                                    break;
                                };
                                if b.verify_crc().is_err() {
                                    resp.error_code = 2;
                                    break;
                                }
                                if let Some(at) = faults.gap_at {
                                    if !gap_done && part.next >= at {
                                        part.next += 3;
                                        gap = true;
                                    }
                                }
                                let h = *b.header();
                                if h.producer_id >= 0 {
                                    let expected = part.sequences.entry(h.producer_id).or_insert(0);
                                    if h.base_sequence != *expected {
                                        resp.error_code = 45;
                                        break;
                                    }
                                    *expected += h.record_count;
                                }
                                let base = part.next;
                                let count = i64::from(b.header().last_offset_delta) + 1;
                                let mut bytes = BytesMut::from(&b.as_bytes()[..]);
                                set_base_offset(&mut bytes, base).unwrap();
                                part.batches.push((base, base + count - 1, bytes.freeze()));
                                part.next += count;
                                if first_base < 0 {
                                    first_base = base;
                                }
                            }
                            if gap {
                                st.gap_done = true;
                            }
                            resp.base_offset = first_base;
                            if faults.overlap_at_produce == Some(nth) && first_base > 0 {
                                resp.base_offset = first_base - 1;
                            }
                        }
                    }
                    parts.push(resp);
                }
                responses.push(TopicProduceResponse { name: td.name, topic_id: td.topic_id, partition_responses: parts });
            }
            if p.acks == 0 {
                return None;
            }
            ResponseBody::Produce(ProduceResponse { responses, ..Default::default() })
        }
        RequestBody::Fetch(f) => {
            let mut topics = Vec::new();
            for ft in f.topics {
                let name = if version >= 13 {
                    st.topics.iter().find(|(_, t)| t.id == ft.topic_id).map(|(n, _)| n.clone()).unwrap_or_default()
                } else {
                    ft.topic.clone()
                };
                let mut parts = Vec::new();
                for fp in ft.partitions {
                    let mut pd = PartitionData { partition_index: fp.partition, ..Default::default() };
                    match st.topics.get(&name).and_then(|t| t.partitions.get(fp.partition as usize)) {
                        None => pd.error_code = 3,
                        Some(part) => {
                            pd.high_watermark = part.next;
                            pd.last_stable_offset = part.next;
                            pd.log_start_offset = 0;
                            let mut out = BytesMut::new();
                            for (_, last, b) in &part.batches {
                                if *last < fp.fetch_offset {
                                    continue;
                                }
                                if !out.is_empty() && out.len() + b.len() > fp.partition_max_bytes as usize {
                                    break;
                                }
                                out.extend_from_slice(b);
                            }
                            pd.records = Some(out.freeze());
                        }
                    }
                    parts.push(pd);
                }
                topics.push(FetchableTopicResponse { topic: ft.topic, topic_id: ft.topic_id, partitions: parts });
            }
            ResponseBody::Fetch(FetchResponse { responses: topics, ..Default::default() })
        }
        RequestBody::ListOffsets(l) => {
            let mut topics = Vec::new();
            for lt in l.topics {
                let mut parts = Vec::new();
                for lp in lt.partitions {
                    let mut r = ListOffsetsPartitionResponse { partition_index: lp.partition_index, ..Default::default() };
                    match st.topics.get(&lt.name).and_then(|t| t.partitions.get(lp.partition_index as usize)) {
                        None => r.error_code = 3,
                        Some(part) => {
                            r.offset = if lp.timestamp == -2 { 0 } else { part.next };
                            r.old_style_offsets = vec![r.offset];
                        }
                    }
                    parts.push(r);
                }
                topics.push(ListOffsetsTopicResponse { name: lt.name, partitions: parts });
            }
            ResponseBody::ListOffsets(ListOffsetsResponse { topics, ..Default::default() })
        }
        RequestBody::InitProducerId(_) => {
            st.producer_ids += 1;
            ResponseBody::InitProducerId(strata_proto::messages::InitProducerIdResponse {
                producer_id: 1000 + st.producer_ids,
                producer_epoch: 0,
                ..Default::default()
            })
        }
        _ => return None,
    })
}
