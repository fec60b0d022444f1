//! The in-memory harness the core's integration tests share: one broker, a
//! map for the object store, a vector for the sequencer, a clock moved by
//! hand. Every commit goes through its binary form, as from a real sequencer.

#![allow(dead_code)]

use std::collections::BTreeMap;

use bytes::Bytes;
use strata_core::broker::{Broker, BrokerConfig};
use strata_core::error_code as ec;
use strata_core::io::{AppendResult, Input, ListedObject, Output};
use strata_core::log::commit::Commit;
use strata_proto::codec::header::{encode_response_frame, RequestHeader};
use strata_proto::messages::fetch_request::{FetchPartition, FetchTopic};
use strata_proto::messages::metadata_request::MetadataRequestTopic;
use strata_proto::messages::produce_request::{PartitionProduceData, TopicProduceData};
use strata_proto::messages::*;
use strata_proto::records::{batches, BatchBuilder, Compression, TailMode};
use strata_proto::{RequestBody, ResponseBody};

/// One broker with in-memory IO.
pub struct Harness {
    pub broker: Broker,
    pub now: u64,
    pub objects: BTreeMap<String, Bytes>,
    /// When each object was written (harness clock).
    pub written_at: BTreeMap<String, u64>,
    pub log: Vec<Bytes>,
    pub timers: BTreeMap<u64, u64>,
    pub responses: Vec<(u64, ResponseBody)>,
    pub next_request: u64,
    pub fail_writes: bool,
    /// Fail every sequencer append (definitely not appended).
    pub fail_appends: bool,
    /// A hung sequencer: appends neither resolve nor apply until
    /// [`Harness::release_appends`].
    pub hold_appends: bool,
    /// The appends held meanwhile, in order.
    pub held: Vec<(strata_core::io::AppendId, Bytes)>,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_config(BrokerConfig::for_tests())
    }

    pub fn with_config(cfg: BrokerConfig) -> Self {
        Harness {
            broker: Broker::new(cfg),
            now: 0,
            objects: BTreeMap::new(),
            written_at: BTreeMap::new(),
            log: Vec::new(),
            timers: BTreeMap::new(),
            responses: Vec::new(),
            next_request: 0,
            fail_writes: false,
            fail_appends: false,
            hold_appends: false,
            held: Vec::new(),
        }
    }

    pub fn feed(&mut self, input: Input) {
        let mut queue = vec![input];
        while let Some(input) = queue.pop() {
            let mut out = Vec::new();
            self.broker.handle(self.now, input, &mut out);
            for o in out {
                match o {
                    Output::Respond { request, body, api_version, correlation_id, .. } => {
                        // Every answer must encode at the version asked for.
                        let mut w = bytes::BytesMut::new();
                        if let Err(e) = encode_response_frame(&mut w, correlation_id, api_version, &body) {
                            panic!("response to request {request} does not encode at v{api_version}: {e:?}\n{body:?}");
                        }
                        self.responses.push((request, body))
                    }
                    Output::NoResponse { .. } | Output::Close { .. } => {}
                    Output::WriteObject { write, key, bytes } => {
                        let result = if self.fail_writes { Err("injected".to_string()) } else { Ok(()) };
                        if result.is_ok() {
                            self.written_at.insert(key.clone(), self.now);
                            self.objects.insert(key, bytes.to_bytes());
                        }
                        queue.insert(0, Input::ObjectWritten { write, result });
                    }
                    Output::Append { append, commit } if self.hold_appends => self.held.push((append, commit.encode())),
                    Output::Append { append, .. } if self.fail_appends => {
                        queue.insert(0, Input::Appended { append, result: AppendResult::Failed("injected".into()) });
                    }
                    Output::Append { append, commit } => {
                        self.log.push(commit.encode());
                        let revision = self.log.len() as u64;
                        let commit = Commit::decode(self.log[revision as usize - 1].clone()).unwrap();
                        queue.insert(0, Input::Appended { append, result: AppendResult::Ok(revision) });
                        queue.insert(0, Input::Applied { revision, commit });
                    }
                    Output::Read { read, key, range } => {
                        let result = self
                            .objects
                            .get(&key)
                            .map(|o| o.slice(range.start as usize..range.end as usize))
                            .ok_or_else(|| "missing".to_string());
                        queue.insert(0, Input::ReadDone { read, result });
                    }
                    Output::SetTimer { timer, at_ms } => {
                        self.timers.insert(timer, at_ms);
                    }
                    Output::ListObjects { prefix } => {
                        let listed = self
                            .objects
                            .keys()
                            .filter(|k| k.starts_with(&prefix))
                            .map(|k| ListedObject { key: k.clone(), last_modified_ms: self.written_at.get(k).copied().unwrap_or(0) })
                            .collect();
                        queue.insert(0, Input::ObjectsListed { result: Ok(listed) });
                    }
                    Output::DeleteObjects { keys } => {
                        for k in keys {
                            self.objects.remove(&k);
                            self.written_at.remove(&k);
                        }
                    }
                }
            }
        }
    }

    /// The hung sequencer recovers: the held appends land in order, each
    /// resolves with its revision and is applied.
    pub fn release_appends(&mut self) {
        self.hold_appends = false;
        for (append, bytes) in std::mem::take(&mut self.held) {
            self.log.push(bytes);
            let revision = self.log.len() as u64;
            let commit = Commit::decode(self.log[revision as usize - 1].clone()).unwrap();
            self.feed(Input::Appended { append, result: AppendResult::Ok(revision) });
            self.feed(Input::Applied { revision, commit });
        }
    }

    /// Moves the clock and fires due timers.
    pub fn advance(&mut self, ms: u64) {
        self.now += ms;
        loop {
            let due: Vec<u64> = self.timers.iter().filter(|(_, at)| **at <= self.now).map(|(t, _)| *t).collect();
            if due.is_empty() {
                break;
            }
            for t in due {
                self.timers.remove(&t);
                self.feed(Input::Timer { timer: t });
            }
        }
    }

    pub fn send(&mut self, version: i16, body: RequestBody) -> u64 {
        self.send_on(1, version, body)
    }

    /// Sends on connection `conn` (request numbers stay unique across connections).
    pub fn send_on(&mut self, conn: u64, version: i16, body: RequestBody) -> u64 {
        let request = self.next_request;
        self.next_request += 1;
        let header = RequestHeader {
            api_key: body.api_key() as i16,
            api_version: version,
            correlation_id: request as i32,
            client_id: Some(format!("client-{conn}")),
        };
        self.feed(Input::Request { conn, request, header, body, size: 0 });
        request
    }

    /// The broker restarted: a new incarnation replays the whole log.
    pub fn restart(&mut self, incarnation: u64) {
        let cfg = BrokerConfig { incarnation, ..self.broker.config().clone() };
        self.broker = Broker::new(cfg);
        self.timers.clear();
        self.responses.clear();
        for (i, bytes) in self.log.clone().into_iter().enumerate() {
            let commit = Commit::decode(bytes).unwrap();
            self.feed(Input::Applied { revision: i as u64 + 1, commit });
        }
    }

    pub fn take(&mut self, request: u64) -> Option<ResponseBody> {
        let i = self.responses.iter().position(|(r, _)| *r == request)?;
        Some(self.responses.remove(i).1)
    }

    /// Sends and lets time pass until the answer arrives.
    pub fn call(&mut self, version: i16, body: RequestBody) -> ResponseBody {
        let r = self.send(version, body);
        for _ in 0..100 {
            if let Some(b) = self.take(r) {
                return b;
            }
            self.advance(5);
        }
        panic!("no response to request {r}");
    }

    /// Creates a topic with CreateTopics (the latest version).
    pub fn create_topic(&mut self, name: &str, partitions: u32) {
        let req = CreateTopicsRequest {
            topics: vec![create_topics_request::CreatableTopic {
                name: name.into(),
                num_partitions: partitions as i32,
                replication_factor: -1,
                ..Default::default()
            }],
            ..Default::default()
        };
        let ResponseBody::CreateTopics(r) = self.call(7, req.into()) else { panic!() };
        assert_eq!(r.topics[0].error_code, ec::NONE, "{:?}", r.topics[0].error_message);
    }

    /// Creates a topic the way auto-creation does (a Metadata request).
    pub fn auto_create_topic(&mut self, name: &str) {
        let req = MetadataRequest {
            topics: Some(vec![MetadataRequestTopic { name: Some(name.into()), ..Default::default() }]),
            allow_auto_topic_creation: true,
            ..Default::default()
        };
        let ResponseBody::Metadata(m) = self.call(12, req.into()) else { panic!() };
        assert_eq!(m.topics[0].error_code, ec::NONE);
    }

    /// Replaces a topic's config overrides (IncrementalAlterConfigs SET of each).
    pub fn set_topic_configs(&mut self, topic: &str, configs: BTreeMap<String, String>) {
        use strata_proto::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
        let req = IncrementalAlterConfigsRequest {
            resources: vec![AlterConfigsResource {
                resource_type: 2,
                resource_name: topic.into(),
                configs: configs
                    .into_iter()
                    .map(|(name, value)| AlterableConfig { name, config_operation: 0, value: Some(value) })
                    .collect(),
            }],
            validate_only: false,
        };
        let ResponseBody::IncrementalAlterConfigs(r) = self.call(1, req.into()) else { panic!() };
        assert_eq!(r.responses[0].error_code, 0, "{:?}", r.responses[0].error_message);
    }

    pub fn produce(&mut self, topic: &str, partition: i32, batch: Bytes, acks: i16) -> ProduceResponse {
        let ResponseBody::Produce(p) = self.call(9, Self::produce_request(topic, partition, batch, acks).into()) else { panic!() };
        p
    }

    pub fn produce_request(topic: &str, partition: i32, batch: Bytes, acks: i16) -> ProduceRequest {
        ProduceRequest {
            acks,
            timeout_ms: 1000,
            topic_data: vec![TopicProduceData {
                name: topic.into(),
                partition_data: vec![PartitionProduceData { index: partition, records: Some(batch) }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    pub fn fetch(&mut self, topic: &str, partition: i32, offset: i64, max_bytes: i32) -> FetchResponse {
        let req = FetchRequest {
            max_wait_ms: 0,
            min_bytes: 0,
            max_bytes,
            topics: vec![FetchTopic {
                topic: topic.into(),
                partitions: vec![FetchPartition { partition, fetch_offset: offset, partition_max_bytes: max_bytes, ..Default::default() }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let ResponseBody::Fetch(f) = self.call(12, req.into()) else { panic!() };
        f
    }
}

pub fn batch(values: &[&str], producer: Option<(i64, i16, i32)>) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None);
    if let Some((id, epoch, seq)) = producer {
        b = b.producer(id, epoch, seq);
    }
    for (i, v) in values.iter().enumerate() {
        b.push(1000 + i as i64, Some(b"k"), Some(v.as_bytes()), &[]).unwrap();
    }
    b.build().unwrap()
}

/// (offset, value) of every record in a fetch response partition.
pub fn records_of(f: &FetchResponse) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    let data = f.responses[0].partitions[0].records.clone().unwrap_or_default();
    for b in batches(data, TailMode::AllowTruncated) {
        let b = b.unwrap();
        b.verify_crc().unwrap();
        let base = b.header().base_offset;
        for r in b.records(1 << 20).unwrap() {
            let r = r.unwrap();
            out.push((base + r.offset_delta as i64, String::from_utf8(r.value.unwrap().to_vec()).unwrap()));
        }
    }
    out
}
