//! The cluster as a client sees it: a bootstrap connection, Metadata (brokers,
//! partition leaders, topic id), CreateTopics, and ListOffsets on the leaders.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use strata_proto::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use strata_proto::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use strata_proto::messages::metadata_request::MetadataRequestTopic;
use strata_proto::messages::{CreateTopicsRequest, ListOffsetsRequest, MetadataRequest};
use strata_proto::{ApiKey, RequestBody, ResponseBody, Uuid};

use super::client::{ClientError, ConnectOptions, Connection};
use super::errors::error_name;
use super::BenchError;

const TOPIC_ALREADY_EXISTS: i16 = 36;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

/// ListOffsets timestamp for the log end.
pub const LATEST: i64 = -1;
/// ListOffsets timestamp for the log start.
pub const EARLIEST: i64 = -2;

/// One partition, as Metadata describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Partition index.
    pub index: i32,
    /// Leader's node id (-1: none).
    pub leader: i32,
    /// Leader epoch (-1: unknown).
    pub leader_epoch: i32,
}

/// A topic, as Metadata describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicInfo {
    /// Name.
    pub name: String,
    /// Topic id (zero before Metadata v10).
    pub id: Uuid,
    /// Partitions by index.
    pub partitions: Vec<PartitionInfo>,
}

impl TopicInfo {
    /// Partitions grouped by leader node id, each group in index order.
    pub fn by_leader(&self, only: &[i32]) -> BTreeMap<i32, Vec<i32>> {
        let mut out: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for p in &self.partitions {
            if only.is_empty() || only.contains(&p.index) {
                out.entry(p.leader).or_default().push(p.index);
            }
        }
        for v in out.values_mut() {
            v.sort_unstable();
        }
        out
    }
}

/// What CreateTopics said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// The topic was created.
    Created,
    /// It existed already.
    AlreadyExisted,
}

/// A bootstrap connection and what Metadata told it.
pub struct Cluster {
    opts: ConnectOptions,
    conn: Connection,
    /// Node id → host:port.
    pub brokers: BTreeMap<i32, String>,
    /// The controller's node id (-1: unknown).
    pub controller: i32,
}

impl Cluster {
    /// Connects to the first bootstrap server that answers.
    pub async fn connect(bootstrap: &[String], opts: ConnectOptions) -> Result<Cluster, BenchError> {
        let mut last = None;
        for addr in bootstrap {
            match Connection::connect(addr, &opts).await {
                Ok(conn) => {
                    return Ok(Cluster { opts, conn, brokers: BTreeMap::new(), controller: -1 });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) => BenchError::Client(e),
            None => BenchError::Args("no bootstrap server given".into()),
        })
    }

    /// The bootstrap connection.
    pub fn bootstrap(&self) -> &Connection {
        &self.conn
    }

    /// The connection options.
    pub fn options(&self) -> &ConnectOptions {
        &self.opts
    }

    /// Metadata for one topic; None when the broker does not know it.
    pub async fn metadata(&mut self, topic: &str) -> Result<Option<TopicInfo>, BenchError> {
        let req = MetadataRequest {
            topics: Some(vec![MetadataRequestTopic { topic_id: Uuid::ZERO, name: Some(topic.to_string()) }]),
            allow_auto_topic_creation: false,
            include_cluster_authorized_operations: false,
            include_topic_authorized_operations: false,
        };
        let resp = match self.conn.call(RequestBody::Metadata(req)).await? {
            ResponseBody::Metadata(r) => r,
            other => return Err(unexpected("Metadata", &other)),
        };
        if resp.error_code != 0 {
            return Err(BenchError::Kafka { api: "Metadata", code: resp.error_code, detail: String::new() });
        }
        self.brokers = resp.brokers.iter().map(|b| (b.node_id, format!("{}:{}", b.host, b.port))).collect();
        self.controller = resp.controller_id;
        let Some(t) = resp.topics.into_iter().find(|t| t.name.as_deref() == Some(topic)) else {
            return Ok(None);
        };
        match t.error_code {
            0 => {}
            UNKNOWN_TOPIC_OR_PARTITION => return Ok(None),
            // LEADER_NOT_AVAILABLE while a new topic settles: report it as not ready.
            5 => {
                return Ok(Some(TopicInfo { name: topic.to_string(), id: t.topic_id, partitions: Vec::new() }));
            }
            code => return Err(BenchError::Kafka { api: "Metadata", code, detail: format!("topic {topic}") }),
        }
        let mut partitions: Vec<PartitionInfo> = t
            .partitions
            .iter()
            .map(|p| PartitionInfo {
                index: p.partition_index,
                leader: if p.error_code == 0 || p.leader_id >= 0 { p.leader_id } else { -1 },
                leader_epoch: p.leader_epoch,
            })
            .collect();
        partitions.sort_by_key(|p| p.index);
        Ok(Some(TopicInfo { name: topic.to_string(), id: t.topic_id, partitions }))
    }

    /// CreateTopics, sent to the controller when Metadata named one (brokers
    /// forward it in KRaft clusters anyway).
    pub async fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &[(String, String)],
    ) -> Result<(Created, Vec<String>), BenchError> {
        let mut notes = Vec::new();
        // Learn the controller.
        let _ = self.metadata(name).await?;
        let controller = self.brokers.get(&self.controller).cloned();
        let via_controller;
        let conn: &Connection = match controller {
            Some(addr) if addr != self.conn.addr() => match Connection::connect(&addr, &self.opts).await {
                Ok(c) => {
                    via_controller = c;
                    &via_controller
                }
                Err(_) => &self.conn,
            },
            _ => &self.conn,
        };
        let version = conn.version(ApiKey::CreateTopics)?;
        let mut rf = replication_factor;
        if rf < 1 && version < 4 {
            notes.push(format!("CreateTopics v{version} has no broker-default replication factor; used 1"));
            rf = 1;
        }
        let req = CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: name.to_string(),
                num_partitions: partitions,
                replication_factor: rf,
                assignments: Vec::new(),
                configs: configs
                    .iter()
                    .map(|(k, v)| CreatableTopicConfig { name: k.clone(), value: Some(v.clone()) })
                    .collect(),
            }],
            timeout_ms: self.opts.timeout.as_millis().min(i32::MAX as u128) as i32,
            validate_only: false,
        };
        let resp = match conn.call(RequestBody::CreateTopics(req)).await? {
            ResponseBody::CreateTopics(r) => r,
            other => return Err(unexpected("CreateTopics", &other)),
        };
        let Some(t) = resp.topics.into_iter().find(|t| t.name == name) else {
            return Err(BenchError::Protocol(format!("CreateTopics answer does not mention {name}")));
        };
        match t.error_code {
            0 => Ok((Created::Created, notes)),
            TOPIC_ALREADY_EXISTS => Ok((Created::AlreadyExisted, notes)),
            code => Err(BenchError::Kafka {
                api: "CreateTopics",
                code,
                detail: t.error_message.unwrap_or_default(),
            }),
        }
    }

    /// Polls Metadata until the topic exists with a leader for every
    /// partition (and `partitions` of them, when given).
    pub async fn wait_for_topic(
        &mut self,
        name: &str,
        partitions: Option<i32>,
        timeout: Duration,
    ) -> Result<TopicInfo, BenchError> {
        let deadline = Instant::now() + timeout;
        loop {
            let t = self.metadata(name).await?;
            if let Some(t) = &t {
                let all_led = !t.partitions.is_empty()
                    && t.partitions.iter().all(|p| p.leader >= 0 && self.brokers.contains_key(&p.leader));
                let count_ok = partitions.is_none_or(|n| t.partitions.len() as i32 >= n);
                if all_led && count_ok {
                    return Ok(t.clone());
                }
            }
            if Instant::now() >= deadline {
                return Err(BenchError::Timeout(format!(
                    "topic {name} has no leader for every partition after {timeout:?} (last metadata: {t:?})"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A new connection to a broker by node id.
    pub async fn connect_node(&self, node: i32) -> Result<Connection, BenchError> {
        let addr = self
            .brokers
            .get(&node)
            .ok_or_else(|| BenchError::Protocol(format!("Metadata names no broker with node id {node}")))?;
        Ok(Connection::connect(addr, &self.opts).await?)
    }
}

/// ListOffsets for `partitions` of `topic` on one leader: offset per partition.
pub async fn list_offsets(
    conn: &Connection,
    topic: &str,
    partitions: &[i32],
    timestamp: i64,
    timeout: Duration,
) -> Result<BTreeMap<i32, i64>, BenchError> {
    let version = conn.version(ApiKey::ListOffsets)?;
    let req = ListOffsetsRequest {
        replica_id: -1,
        isolation_level: 0,
        topics: vec![ListOffsetsTopic {
            name: topic.to_string(),
            partitions: partitions
                .iter()
                .map(|&p| ListOffsetsPartition { partition_index: p, current_leader_epoch: -1, timestamp, max_num_offsets: 1 })
                .collect(),
        }],
        timeout_ms: timeout.as_millis().min(i32::MAX as u128) as i32,
    };
    let resp = match conn.call(RequestBody::ListOffsets(req)).await? {
        ResponseBody::ListOffsets(r) => r,
        other => return Err(unexpected("ListOffsets", &other)),
    };
    let mut out = BTreeMap::new();
    for t in resp.topics {
        for p in t.partitions {
            if p.error_code != 0 {
                return Err(BenchError::Kafka {
                    api: "ListOffsets",
                    code: p.error_code,
                    detail: format!("{topic}-{}", p.partition_index),
                });
            }
            let offset = if version == 0 { p.old_style_offsets.first().copied().unwrap_or(-1) } else { p.offset };
            out.insert(p.partition_index, offset);
        }
    }
    for p in partitions {
        if !out.contains_key(p) {
            return Err(BenchError::Protocol(format!("ListOffsets answer lacks partition {topic}-{p}")));
        }
    }
    Ok(out)
}

fn unexpected(api: &str, got: &ResponseBody) -> BenchError {
    BenchError::Protocol(format!("{api} request answered with a {} response", got.api_key().name()))
}

impl From<ClientError> for BenchError {
    fn from(e: ClientError) -> Self {
        BenchError::Client(e)
    }
}

/// "NAME (code)" for messages.
pub fn code_text(code: i16) -> String {
    format!("{} ({code})", error_name(code))
}
