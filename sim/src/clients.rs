//! Simulated Kafka clients speaking the real wire protocol (the runtime's
//! bench `Connection`): idempotent producers that retry until acknowledged,
//! plain producers that never retry, consumers that fetch from any broker,
//! and the final reader the checkers use.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use strata_proto::messages::create_topics_request::CreatableTopic;
use strata_proto::messages::fetch_request::{FetchPartition, FetchTopic};
use strata_proto::messages::metadata_request::MetadataRequestTopic;
use strata_proto::messages::produce_request::{PartitionProduceData, TopicProduceData};
use strata_proto::messages::{CreateTopicsRequest, FetchRequest, InitProducerIdRequest, MetadataRequest, ProduceRequest};
use strata_proto::records::{batches, BatchBuilder, Compression, TailMode};
use strata_proto::{RequestBody, ResponseBody, Uuid};
use strata_runtime::bench::client::{ConnectOptions, Connection};

use crate::history::{Ack, History, Seen};

pub const TOPIC: &str = "sim";
const OFFSET_OUT_OF_RANGE: i16 = 1;
const TOPIC_ALREADY_EXISTS: i16 = 36;

/// What every client knows.
#[derive(Clone)]
pub struct Ctx {
    pub brokers: Vec<String>,
    pub partitions: i32,
    pub history: History,
    pub topic_id: Uuid,
}

fn rand_u64() -> u64 {
    madsim::rand::random::<u64>()
}

fn pick(n: usize) -> usize {
    (rand_u64() % n as u64) as usize
}

async fn pause(min_ms: u64, max_ms: u64) {
    let ms = min_ms + rand_u64() % (max_ms - min_ms + 1);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// A client's connections, one per broker, reopened after any error.
pub struct Conns {
    name: String,
    conns: HashMap<usize, Connection>,
    brokers: Vec<String>,
}

impl Conns {
    pub fn new(name: &str, brokers: &[String]) -> Self {
        Conns { name: name.into(), conns: HashMap::new(), brokers: brokers.to_vec() }
    }

    /// Sends `body` to broker `b`; `None` on any connection error (dropped then).
    pub async fn call(&mut self, b: usize, body: RequestBody) -> Result<ResponseBody, String> {
        if !self.conns.contains_key(&b) {
            let opts = ConnectOptions { client_id: Some(self.name.clone()), timeout: Duration::from_secs(8), max_frame: 64 << 20 };
            let conn = Connection::connect(&self.brokers[b], &opts).await.map_err(|e| e.to_string())?;
            self.conns.insert(b, conn);
        }
        let conn = self.conns.get(&b).expect("just inserted");
        match conn.call(body).await {
            Ok(r) => Ok(r),
            Err(e) => {
                self.conns.remove(&b);
                Err(e.to_string())
            }
        }
    }
}

/// Creates the topic (retrying through any broker) and learns its id.
pub async fn setup_topic(brokers: &[String], partitions: i32, history: &History) -> Uuid {
    let mut conns = Conns::new("setup", brokers);
    loop {
        let b = pick(brokers.len());
        let req = CreateTopicsRequest {
            topics: vec![CreatableTopic { name: TOPIC.into(), num_partitions: partitions, replication_factor: 1, ..Default::default() }],
            timeout_ms: 5000,
            validate_only: false,
        };
        match conns.call(b, RequestBody::CreateTopics(req)).await {
            Ok(ResponseBody::CreateTopics(r)) => {
                let code = r.topics.first().map_or(-1, |t| t.error_code);
                history.log("setup", format!("CreateTopics via broker {b}: error {code}"));
                if code == 0 || code == TOPIC_ALREADY_EXISTS {
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => history.log("setup", format!("CreateTopics via broker {b}: {e}")),
        }
        pause(100, 300).await;
    }
    loop {
        let b = pick(brokers.len());
        let req = MetadataRequest {
            topics: Some(vec![MetadataRequestTopic { name: Some(TOPIC.into()), topic_id: Uuid::default() }]),
            allow_auto_topic_creation: false,
            ..Default::default()
        };
        if let Ok(ResponseBody::Metadata(r)) = conns.call(b, RequestBody::Metadata(req)).await {
            if let Some(t) = r.topics.first() {
                if t.error_code == 0 && t.partitions.len() as i32 == partitions {
                    history.log("setup", format!("topic {TOPIC} has id {:?}", t.topic_id));
                    return t.topic_id;
                }
            }
        }
        pause(100, 300).await;
    }
}

fn produce_request(ctx: &Ctx, partition: i32, batch: Bytes) -> RequestBody {
    RequestBody::Produce(ProduceRequest {
        transactional_id: None,
        acks: -1,
        timeout_ms: 5000,
        topic_data: vec![TopicProduceData {
            name: TOPIC.into(),
            topic_id: ctx.topic_id,
            partition_data: vec![PartitionProduceData { index: partition, records: Some(batch) }],
        }],
    })
}

fn build_batch(values: &[Bytes], producer: Option<(i64, i16, i32)>, ts: i64) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None);
    if let Some((pid, epoch, seq)) = producer {
        b = b.producer(pid, epoch, seq);
    }
    for v in values {
        b.push(ts, None, Some(v), &[]).expect("a small record");
    }
    b.build().expect("a small batch")
}

/// The verdict of one produce answer for our single partition.
fn produce_verdict(resp: ResponseBody) -> Result<i64, String> {
    match resp {
        ResponseBody::Produce(r) => {
            let p = r.responses.first().and_then(|t| t.partition_responses.first()).ok_or("empty answer")?;
            if p.error_code == 0 {
                Ok(p.base_offset)
            } else {
                Err(format!("error {}", p.error_code))
            }
        }
        other => Err(format!("answered with {:?}", other.api_key())),
    }
}

/// An idempotent producer: one batch in flight, retried (to any broker, same
/// sequence) until acknowledged.
pub async fn idempotent_producer(ctx: Ctx, name: String, until_ms: u64) {
    let h = &ctx.history;
    let mut conns = Conns::new(&name, &ctx.brokers);
    let (pid, epoch) = loop {
        let b = pick(ctx.brokers.len());
        let req = InitProducerIdRequest { transactional_id: None, transaction_timeout_ms: i32::MAX, ..Default::default() };
        match conns.call(b, RequestBody::InitProducerId(req)).await {
            Ok(ResponseBody::InitProducerId(r)) if r.error_code == 0 => break (r.producer_id, r.producer_epoch),
            Ok(_) | Err(_) => pause(50, 200).await,
        }
        if h.now_ms() > until_ms {
            return;
        }
    };
    h.log(&name, format!("producer id {pid} epoch {epoch}"));
    let mut seqs = vec![0i32; ctx.partitions as usize];
    while h.now_ms() < until_ms {
        let partition = pick(ctx.partitions as usize) as i32;
        let seq = seqs[partition as usize];
        let n = 1 + pick(3);
        let values: Vec<Bytes> = (0..n).map(|i| Bytes::from(format!("{name}/p{partition}/s{}", seq + i as i32))).collect();
        h.0.lock().unwrap().idempotent_sent.entry((name.clone(), partition)).or_default().extend(values.iter().cloned());
        let batch = build_batch(&values, Some((pid, epoch, seq)), 1_700_000_000_000 + h.now_ms() as i64);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let b = pick(ctx.brokers.len());
            let result = conns.call(b, produce_request(&ctx, partition, batch.clone())).await.and_then(produce_verdict);
            match result {
                Ok(base) => {
                    h.log(&name, format!("p{partition} s{seq}+{n} acked at {base} by broker {b} (attempt {attempt})"));
                    h.ack(Ack { producer: name.clone(), partition, base_offset: base, values, broker: b, at_ms: h.now_ms() });
                    break;
                }
                Err(e) => {
                    h.log(&name, format!("p{partition} s{seq}+{n} attempt {attempt} via broker {b}: {e}"));
                    // Keep retrying the same sequence: giving up would leave a gap.
                    pause(20, 300).await;
                }
            }
        }
        seqs[partition as usize] += n as i32;
        pause(0, 50).await;
    }
}

/// A plain producer: no producer id, never retries (an ambiguous failure may
/// or may not have appended; it never appends twice).
pub async fn plain_producer(ctx: Ctx, name: String, until_ms: u64) {
    let h = &ctx.history;
    let mut conns = Conns::new(&name, &ctx.brokers);
    let mut k = 0u64;
    while h.now_ms() < until_ms {
        let partition = pick(ctx.partitions as usize) as i32;
        let n = 1 + pick(2);
        let values: Vec<Bytes> = (0..n).map(|i| Bytes::from(format!("{name}/p{partition}/k{}", k + i as u64))).collect();
        k += n as u64;
        h.0.lock().unwrap().plain_sent.extend(values.iter().cloned());
        let batch = build_batch(&values, None, 1_700_000_000_000 + h.now_ms() as i64);
        let b = pick(ctx.brokers.len());
        match conns.call(b, produce_request(&ctx, partition, batch)).await.and_then(produce_verdict) {
            Ok(base) => {
                h.log(&name, format!("p{partition} {} acked at {base} by broker {b}", String::from_utf8_lossy(&values[0])));
                h.ack(Ack { producer: name.clone(), partition, base_offset: base, values, broker: b, at_ms: h.now_ms() });
            }
            Err(e) => h.log(&name, format!("p{partition} {} via broker {b}: {e}", String::from_utf8_lossy(&values[0]))),
        }
        pause(0, 60).await;
    }
}

fn fetch_request(ctx: &Ctx, offsets: &[(i32, i64)], max_wait_ms: i32) -> RequestBody {
    RequestBody::Fetch(FetchRequest {
        replica_id: -1,
        max_wait_ms,
        min_bytes: 1,
        max_bytes: 1 << 20,
        isolation_level: 0,
        session_id: 0,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: TOPIC.into(),
            topic_id: ctx.topic_id,
            partitions: offsets
                .iter()
                .map(|&(partition, fetch_offset)| FetchPartition { partition, fetch_offset, partition_max_bytes: 64 << 10, ..Default::default() })
                .collect(),
        }],
        ..Default::default()
    })
}

/// One partition's part of a fetch answer.
pub struct PartAnswer {
    pub partition: i32,
    pub error: i16,
    pub high_watermark: i64,
    pub log_start: i64,
    /// (offset, value) of every record, in the order they came.
    pub records: Vec<(i64, Bytes)>,
    pub decode_error: Option<String>,
}

fn parse_fetch(resp: ResponseBody) -> Result<Vec<PartAnswer>, String> {
    let ResponseBody::Fetch(r) = resp else { return Err("not a fetch answer".into()) };
    if r.error_code != 0 {
        return Err(format!("fetch error {}", r.error_code));
    }
    let mut out = Vec::new();
    for t in r.responses {
        for p in t.partitions {
            let mut records = Vec::new();
            let mut decode_error = None;
            if let Some(blob) = p.records {
                for batch in batches(blob, TailMode::AllowTruncated) {
                    let batch = match batch {
                        Ok(b) => b,
                        Err(e) => {
                            decode_error = Some(e.to_string());
                            break;
                        }
                    };
                    if let Err(e) = batch.verify_crc() {
                        decode_error = Some(format!("crc: {e}"));
                        break;
                    }
                    let base = batch.header().base_offset;
                    match batch.records(1 << 20) {
                        Ok(rs) => {
                            for rec in rs {
                                match rec {
                                    Ok(rec) => records.push((rec.offset(base), rec.value.unwrap_or_default())),
                                    Err(e) => decode_error = Some(e.to_string()),
                                }
                            }
                        }
                        Err(e) => decode_error = Some(e.to_string()),
                    }
                }
            }
            out.push(PartAnswer {
                partition: p.partition_index,
                error: p.error_code,
                high_watermark: p.high_watermark,
                log_start: p.log_start_offset,
                records,
                decode_error,
            });
        }
    }
    Ok(out)
}

/// Fetches `offsets` from broker `b`.
pub async fn fetch(ctx: &Ctx, conns: &mut Conns, b: usize, offsets: &[(i32, i64)], max_wait_ms: i32) -> Result<Vec<PartAnswer>, String> {
    parse_fetch(conns.call(b, fetch_request(ctx, offsets, max_wait_ms)).await?)
}

/// A consumer of every partition, fetching each time from a random broker,
/// checking on the spot that it sees a prefix: the next offset, no hole, no
/// going back. Now and then it probes beyond what it has seen.
pub async fn consumer(ctx: Ctx, name: String, until_ms: u64) {
    let h = &ctx.history;
    let mut conns = Conns::new(&name, &ctx.brokers);
    let mut next = vec![0i64; ctx.partitions as usize];
    while h.now_ms() < until_ms {
        let b = pick(ctx.brokers.len());
        let probe = (rand_u64() % 10 == 0).then(|| pick(ctx.partitions as usize) as i32);
        let offsets: Vec<(i32, i64)> = (0..ctx.partitions)
            .map(|p| (p, if probe == Some(p) { next[p as usize] + 1000 } else { next[p as usize] }))
            .collect();
        let answers = match fetch(&ctx, &mut conns, b, &offsets, 200).await {
            Ok(a) => a,
            Err(e) => {
                h.log(&name, format!("fetch via broker {b}: {e}"));
                pause(20, 200).await;
                continue;
            }
        };
        for a in answers {
            let Some(&(_, asked)) = offsets.iter().find(|(p, _)| *p == a.partition) else { continue };
            let p = a.partition as usize;
            if a.error == 0 && asked > a.high_watermark {
                h.anomaly(
                    "4 (a fetch beyond the log end is out of range)",
                    Some(a.partition),
                    format!("{name}: broker {b} answered fetch of p{} at {asked} with no error, high watermark {}", a.partition, a.high_watermark),
                );
            }
            if probe == Some(a.partition) {
                continue;
            }
            if let Some(e) = &a.decode_error {
                h.anomaly("2 (records decode)", Some(a.partition), format!("{name}: broker {b} p{}: {e}", a.partition));
            }
            if a.error != 0 {
                if a.error == OFFSET_OUT_OF_RANGE && asked > a.high_watermark {
                    h.log(&name, format!("p{} at {asked}: broker {b} is behind (hw {})", a.partition, a.high_watermark));
                } else {
                    h.log(&name, format!("p{} at {asked} via broker {b}: error {}", a.partition, a.error));
                }
                continue;
            }
            for (offset, value) in a.records {
                if offset < next[p] {
                    continue; // a batch may start before the fetch offset
                }
                if offset != next[p] {
                    h.anomaly(
                        "4 (consumer sees a prefix)",
                        Some(a.partition),
                        format!("{name}: broker {b} p{} expected offset {} got {offset} ({})", a.partition, next[p], String::from_utf8_lossy(&value)),
                    );
                    break;
                }
                if offset >= a.high_watermark {
                    h.anomaly(
                        "2 (records beyond the high watermark)",
                        Some(a.partition),
                        format!("{name}: broker {b} p{} offset {offset} >= hw {}", a.partition, a.high_watermark),
                    );
                }
                h.seen(Seen { consumer: name.clone(), broker: b, partition: a.partition, offset, value, at_ms: h.now_ms() });
                next[p] = offset + 1;
            }
        }
        pause(0, 30).await;
    }
    h.log(&name, format!("stopped at {next:?}"));
}

/// Reads partition `partition` from broker `b`, from offset 0 up to its
/// high watermark. `Err` when the broker cannot serve it.
pub async fn read_all(ctx: &Ctx, conns: &mut Conns, b: usize, partition: i32) -> Result<(i64, Vec<(i64, Bytes)>), String> {
    let mut out: Vec<(i64, Bytes)> = Vec::new();
    let mut next = 0i64;
    let mut hw = i64::MAX;
    let mut stuck = 0;
    while next < hw {
        let answers = fetch(ctx, conns, b, &[(partition, next)], 0).await?;
        let a = answers.into_iter().find(|a| a.partition == partition).ok_or("partition missing from the answer")?;
        if a.error != 0 {
            return Err(format!("error {} at offset {next} (hw {})", a.error, a.high_watermark));
        }
        if let Some(e) = a.decode_error {
            return Err(format!("undecodable records at {next}: {e}"));
        }
        hw = a.high_watermark;
        let before = next;
        for (offset, value) in a.records {
            if offset < next {
                continue;
            }
            out.push((offset, value));
            next = offset + 1;
        }
        if next == before && next < hw {
            stuck += 1;
            if stuck > 3 {
                return Err(format!("no records at offset {next} below hw {hw}"));
            }
        }
    }
    Ok((hw, out))
}
