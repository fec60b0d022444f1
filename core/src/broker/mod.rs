//! One broker's brain: takes [`Input`]s, returns [`Output`]s. Request handlers
//! live one per file; the replicated state lives in [`crate::log`].

mod admin_topics;
mod api_versions;
mod cluster;
mod configs;
mod delete_records;
mod fetch;
mod flush;
mod leader_epoch;
mod log_dirs;
mod members;
mod metadata;
mod object_gc;
mod offsets;
mod produce;
mod producer_expiry;
mod producer_id;
mod producers;
mod retention;
mod snapshot;
mod topic_partitions;

use std::collections::BTreeMap;

use strata_proto::codec::header::RequestHeader;
use strata_proto::{RequestBody, ResponseBody};

use crate::io::{AppendId, AppendResult, ConnId, Input, Output, ReadId, TimerId, WriteId};
use crate::log::apply::{apply, Applied};
use crate::log::commit::{Commit, CommitBody, Origin};
use crate::log::state::LogState;

pub use api_versions::{api_versions_fallback, supported_apis};
pub use flush::FlushProgress;

/// A broker's static settings (flags and environment of `strata serve`).
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// This broker's node id.
    pub node_id: i32,
    /// The cluster id reported in Metadata.
    pub cluster_id: String,
    /// Host clients should connect to.
    pub advertised_host: String,
    /// Port clients should connect to.
    pub advertised_port: i32,
    /// Rack, if any.
    pub rack: Option<String>,
    /// Flush the open object once it holds this many bytes.
    pub flush_bytes: usize,
    /// Flush the open object this long after its first batch arrived.
    pub flush_ms: u64,
    /// Also flush the open object at once whenever no object write is in
    /// flight, rather than wait for `flush_ms` or `flush_bytes`: an idle
    /// broker writes what arrives straight away, and a busy one gathers what
    /// arrives while the previous object is written (group commit).
    pub flush_when_idle: bool,
    /// With `flush_when_idle`: object writes that may be in flight before the
    /// open object waits for one to finish (1: strict group commit). More
    /// than one starts a batch's write without waiting out the write ahead of
    /// it (lower tail latency, smaller objects under moderate load); commits
    /// still go out in flush order.
    pub flush_concurrency: usize,
    /// Create unknown topics on Metadata requests that allow it.
    pub auto_create_topics: bool,
    /// Partitions of auto-created topics and of CreateTopics with -1.
    pub default_partitions: u32,
    /// Largest record batch accepted (Kafka's message.max.bytes).
    pub message_max_bytes: usize,
    /// Cap on a batch's decompressed size when it must be decompressed.
    pub max_decompressed_bytes: usize,
    /// How long a proposed commit (a produce's object, an admin or group
    /// change) may take to be applied before its request is answered
    /// REQUEST_TIMED_OUT: its append may hang, or come back unknown.
    pub request_timeout_ms: u64,
    /// Random, drawn at start: tells this run's commits from earlier runs'.
    pub incarnation: u64,
    /// Bytes of this broker's recent objects kept in memory for tail fetches.
    pub recent_object_bytes: usize,
    /// The log directory DescribeLogDirs reports (the data directory).
    pub log_dir: String,
    /// How often one broker lists the object store to delete unreferenced
    /// objects (0: never).
    pub object_gc_interval_ms: u64,
    /// How old an unreferenced object must be before it is deleted (at
    /// least twice `request_timeout_ms`).
    pub object_gc_grace_ms: u64,
    /// Other static broker configs by Kafka name (`strata serve --config
    /// name=value`), e.g. `group.initial.rebalance.delay.ms`.
    pub static_props: BTreeMap<String, String>,
}

impl BrokerConfig {
    /// Settings for tests: node 1 on localhost:9092, small flushes.
    pub fn for_tests() -> Self {
        BrokerConfig {
            node_id: 1,
            cluster_id: "strata-test".into(),
            advertised_host: "127.0.0.1".into(),
            advertised_port: 9092,
            rack: None,
            flush_bytes: 1 << 20,
            flush_ms: 5,
            flush_when_idle: false,
            flush_concurrency: 1,
            auto_create_topics: true,
            default_partitions: 1,
            message_max_bytes: 1_048_588,
            max_decompressed_bytes: 64 << 20,
            request_timeout_ms: 30_000,
            incarnation: 7,
            recent_object_bytes: 64 << 20,
            log_dir: "/tmp/strata-test".into(),
            static_props: BTreeMap::new(),
            object_gc_interval_ms: 0,
            object_gc_grace_ms: 600_000,
        }
    }
}

/// A live broker of the cluster, as clients reach it ([`Input::Members`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Its node id.
    pub node_id: i32,
    /// Host clients connect to.
    pub host: String,
    /// Port clients connect to.
    pub port: i32,
    /// Its rack, if any.
    pub rack: Option<String>,
}

/// Identifies a request: its connection and number on that connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ReqKey {
    pub conn: ConnId,
    pub request: u64,
}

/// A request being answered later, with what the response needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReqInfo {
    pub key: ReqKey,
    pub correlation_id: i32,
    pub api_version: i16,
}

/// What a proposed commit is for, so its apply can answer the right request.
#[derive(Debug)]
pub(crate) enum Proposal {
    /// An object commit: the flush it came from.
    Object(u64),
    /// A producer-id allocation for a request.
    ProducerId(ReqInfo),
    /// Topics to create for a Metadata request (auto-create), then answer it.
    AutoCreate(metadata::PendingMetadata),
    /// A CreateTopics request.
    CreateTopics(admin_topics::PendingCreate),
    /// A DeleteTopics request.
    DeleteTopics(admin_topics::PendingDelete),
    /// A CreatePartitions request.
    CreatePartitions(admin_topics::PendingPartitions),
    /// One resource of an AlterConfigs / IncrementalAlterConfigs request.
    AlterConfigs(configs::PendingAlter),
    /// A DeleteRecords request.
    DeleteRecords(delete_records::PendingDeleteRecords),
    /// Log starts moved by retention (nobody waits).
    Retention,
    /// An object GC fence, with the pass's candidates.
    ObjectGc(Vec<String>),
    /// Consumer-group operations.
    Group(crate::group::GroupProposal),
}

/// A broker's core state machine.
pub struct Broker {
    pub(crate) cfg: BrokerConfig,
    pub(crate) log: LogState,
    pub(crate) now_ms: u64,
    next_id: u64,
    next_commit_seq: u64,
    /// Commits proposed and not yet applied, by origin seq.
    pub(crate) proposals: BTreeMap<u64, Proposal>,
    /// Appends in flight, to the origin seq they carry.
    appends: BTreeMap<AppendId, u64>,
    /// Each proposal's deadline timer, to its origin seq: a proposal not
    /// applied within the request timeout of being proposed fails with
    /// REQUEST_TIMED_OUT, whether its append hangs, came back with an unknown
    /// outcome, or succeeded but the apply is late.
    append_timeouts: BTreeMap<TimerId, u64>,
    /// The same timers by origin seq, to forget one when its proposal settles.
    proposal_timers: BTreeMap<u64, TimerId>,
    /// Revisions our appends got, to the origin seq, until that revision is applied.
    appended_at: BTreeMap<u64, u64>,
    pub(crate) flush: flush::Flusher,
    pub(crate) fetch: fetch::FetchWaits,
    pub(crate) offsets: offsets::OffsetLookups,
    /// The groups this broker coordinates.
    pub(crate) groups: crate::group::Coordinator,
    /// Open connections' client addresses (DescribeGroups shows members' hosts).
    pub(crate) peers: BTreeMap<ConnId, String>,
    /// Whether the retention sweep's timer is set.
    retention_armed: bool,
    /// `strata.flush.bytes` and `strata.flush.ms` in force (static, or the
    /// dynamic overrides), computed when first needed after a config change.
    pub(crate) flush_limits: Option<(usize, u64)>,
    /// The object GC pass.
    object_gc: object_gc::ObjectGc,
    /// The live brokers (this one alone until [`Input::Members`] says otherwise).
    pub(crate) members: members::Members,
    /// Draining ([`Broker::drain`]): no produce taken, out of the live set.
    pub(crate) draining: bool,
}

/// Timer ids below this are fixed roles; above are allocated.
pub(crate) const TIMER_FLUSH: TimerId = 1;

impl Broker {
    /// A broker with empty state; the runtime replays the sequencer into it
    /// ([`Input::Applied`]) before it serves requests.
    pub fn new(cfg: BrokerConfig) -> Self {
        Broker {
            members: members::Members::only(Peer::of(&cfg)),
            cfg,
            log: LogState::default(),
            now_ms: 0,
            next_id: 1000,
            next_commit_seq: 1,
            proposals: BTreeMap::new(),
            appends: BTreeMap::new(),
            append_timeouts: BTreeMap::new(),
            proposal_timers: BTreeMap::new(),
            appended_at: BTreeMap::new(),
            flush: flush::Flusher::default(),
            fetch: fetch::FetchWaits::default(),
            offsets: offsets::OffsetLookups::default(),
            groups: crate::group::Coordinator::default(),
            peers: BTreeMap::new(),
            retention_armed: false,
            flush_limits: None,
            object_gc: object_gc::ObjectGc::default(),
            draining: false,
        }
    }

    /// The applied state (read-only).
    pub fn log(&self) -> &LogState {
        &self.log
    }

    /// The settings.
    pub fn config(&self) -> &BrokerConfig {
        &self.cfg
    }

    /// A fresh id for writes, reads, appends and timers.
    pub(crate) fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Proposes a commit: emits the append and remembers what it is for.
    pub(crate) fn propose(&mut self, body: CommitBody, purpose: Proposal, out: &mut Vec<Output>) {
        let seq = self.next_commit_seq;
        self.next_commit_seq += 1;
        let commit =
            Commit { origin: Origin { broker: self.cfg.node_id, incarnation: self.cfg.incarnation, seq }, body };
        let append = self.fresh_id();
        self.appends.insert(append, seq);
        self.proposals.insert(seq, purpose);
        // Bounded from now: a sequencer that hangs (rather than fails) must not
        // leave the request unanswered past the request timeout.
        let timer = self.fresh_id();
        self.append_timeouts.insert(timer, seq);
        self.proposal_timers.insert(seq, timer);
        out.push(Output::SetTimer { timer, at_ms: self.now_ms + self.cfg.request_timeout_ms });
        out.push(Output::Append { append, commit });
    }

    /// Takes proposal `seq` out of the waiting ones, with its deadline.
    fn settle_proposal(&mut self, seq: u64) -> Option<Proposal> {
        if let Some(timer) = self.proposal_timers.remove(&seq) {
            self.append_timeouts.remove(&timer);
        }
        self.proposals.remove(&seq)
    }

    /// Feeds one input at time `now_ms`; outputs are appended to `out`.
    pub fn handle(&mut self, now_ms: u64, input: Input, out: &mut Vec<Output>) {
        self.now_ms = self.now_ms.max(now_ms);
        match input {
            Input::Request { conn, request, header, body, size } => {
                self.on_request(ReqKey { conn, request }, header, body, size, out)
            }
            Input::Applied { revision, commit } => self.on_applied(revision, commit, out),
            Input::ObjectWritten { write, result } => self.on_object_written(write, result, out),
            Input::Appended { append, result } => self.on_appended(append, result, out),
            Input::ReadDone { read, result } => {
                if self.offsets.waits_for(read) {
                    self.on_offsets_read(read, result, out);
                } else {
                    self.on_read_done(read, result, out);
                }
            }
            Input::Timer { timer } => self.on_timer(timer, out),
            Input::Opened { conn, peer } => {
                self.peers.insert(conn, peer);
            }
            Input::Closed { conn } => {
                self.peers.remove(&conn);
                self.fetch.drop_conn(conn);
                self.drop_offset_lookups(conn);
            }
            Input::Skipped { revision } => {
                self.log.revision = self.log.revision.max(revision);
                self.fail_unmatched_appends(out);
            }
            Input::Flush => self.flush_now(out),
            Input::ObjectsListed { result } => self.on_objects_listed(result, out),
            Input::Members(peers) => self.on_members(peers, out),
        }
    }

    fn on_request(&mut self, key: ReqKey, header: RequestHeader, body: RequestBody, size: usize, out: &mut Vec<Output>) {
        let req = ReqInfo { key, correlation_id: header.correlation_id, api_version: header.api_version };
        match body {
            RequestBody::ApiVersions(_) => {
                let body = api_versions::respond(req.api_version);
                respond(out, &req, body);
            }
            RequestBody::Metadata(m) => self.on_metadata(req, m, out),
            RequestBody::Produce(p) => self.on_produce(req, p, size, out),
            RequestBody::Fetch(f) => self.on_fetch(req, f, out),
            RequestBody::ListOffsets(l) => self.on_list_offsets(req, l, out),
            RequestBody::InitProducerId(i) => self.on_init_producer_id(req, i, out),
            RequestBody::CreateTopics(r) => self.on_create_topics(req, r, out),
            RequestBody::DeleteTopics(r) => self.on_delete_topics(req, r, out),
            RequestBody::CreatePartitions(r) => self.on_create_partitions(req, r, out),
            RequestBody::DescribeConfigs(r) => self.on_describe_configs(req, r, out),
            RequestBody::AlterConfigs(r) => self.on_alter_configs(req, r, out),
            RequestBody::IncrementalAlterConfigs(r) => self.on_incremental_alter_configs(req, r, out),
            RequestBody::DeleteRecords(r) => self.on_delete_records(req, r, out),
            RequestBody::DescribeCluster(r) => self.on_describe_cluster(req, r, out),
            RequestBody::DescribeLogDirs(r) => self.on_describe_log_dirs(req, r, out),
            RequestBody::DescribeProducers(r) => self.on_describe_producers(req, r, out),
            RequestBody::DescribeTopicPartitions(r) => self.on_describe_topic_partitions(req, r, out),
            RequestBody::OffsetForLeaderEpoch(r) => self.on_offset_for_leader_epoch(req, r, out),
            body @ (RequestBody::FindCoordinator(_)
            | RequestBody::JoinGroup(_)
            | RequestBody::SyncGroup(_)
            | RequestBody::Heartbeat(_)
            | RequestBody::LeaveGroup(_)
            | RequestBody::OffsetCommit(_)
            | RequestBody::OffsetFetch(_)
            | RequestBody::DescribeGroups(_)
            | RequestBody::ListGroups(_)
            | RequestBody::DeleteGroups(_)
            | RequestBody::OffsetDelete(_)) => self.on_group_request(req, header.client_id.unwrap_or_default(), body, out),
            other => {
                // Not advertised by ApiVersions: a well-behaved client never sends
                // it. Kafka closes the connection on requests it cannot handle.
                let _ = other;
                out.push(Output::Close { conn: key.conn });
            }
        }
    }

    fn on_applied(&mut self, revision: u64, commit: Commit, out: &mut Vec<Output>) {
        let Some(applied) = apply(&mut self.log, revision, &commit) else { return };
        self.arm_retention(out);
        self.arm_object_gc(out);
        if matches!(commit.body, CommitBody::SetBrokerConfigs(_) | CommitBody::SetNodeConfigs(..)) {
            self.flush_limits = None;
        }
        let touched = touched_partitions(&commit);
        let mine = commit.origin.broker == self.cfg.node_id && commit.origin.incarnation == self.cfg.incarnation;
        if mine {
            if let Some(purpose) = self.settle_proposal(commit.origin.seq) {
                self.on_own_commit_applied(purpose, &commit, applied, out);
            }
        }
        self.fail_unmatched_appends(out);
        if let CommitBody::Groups(list) = &commit.body {
            self.on_group_commits_applied(list, out);
        }
        if !touched.is_empty() {
            self.wake_fetches(&touched, out);
        }
    }

    /// A proposal whose append got a revision that has been applied without
    /// matching it (the record there was not ours, or could not be decoded) will
    /// never be answered by an apply: fail it instead of leaving it hanging.
    fn fail_unmatched_appends(&mut self, out: &mut Vec<Output>) {
        while let Some((&rev, &seq)) = self.appended_at.first_key_value() {
            if rev > self.log.revision {
                break;
            }
            self.appended_at.remove(&rev);
            if let Some(purpose) = self.settle_proposal(seq) {
                self.fail_proposal(purpose, crate::error_code::KAFKA_STORAGE_ERROR, out);
            }
        }
    }

    fn on_own_commit_applied(&mut self, purpose: Proposal, commit: &Commit, applied: Applied, out: &mut Vec<Output>) {
        match (purpose, applied) {
            (Proposal::Object(flush), Applied::Object(outcomes)) => self.on_object_applied(flush, commit, outcomes, out),
            (Proposal::ProducerId(req), Applied::ProducerId(id)) => producer_id::answer(&req, id, out),
            (Proposal::AutoCreate(pending), Applied::CreateTopics(_)) => self.answer_metadata(pending, out),
            (Proposal::CreateTopics(p), Applied::CreateTopics(v)) => self.on_create_topics_applied(p, v, out),
            (Proposal::DeleteTopics(p), Applied::DeleteTopics(v)) => self.on_delete_topics_applied(p, v, out),
            (Proposal::CreatePartitions(p), Applied::CreatePartitions(v)) => self.on_create_partitions_applied(p, v, out),
            (Proposal::AlterConfigs(p), Applied::SetConfigs(v)) => self.on_alter_configs_applied(p, v, out),
            (Proposal::DeleteRecords(p), Applied::DeleteRecords(v)) => self.on_delete_records_applied(p, v, out),
            (Proposal::Group(p), Applied::Groups(v)) => self.on_group_commit_applied(p, v, out),
            (Proposal::Retention, Applied::DeleteRecords(_) | Applied::ExpireProducers(_)) => {}
            (Proposal::ObjectGc(candidates), Applied::FenceObjects(_)) => self.delete_fenced(candidates, out),
            (purpose, applied) => {
                debug_assert!(false, "commit applied with an unexpected outcome: {purpose:?} {applied:?}");
            }
        }
    }

    fn on_appended(&mut self, append: AppendId, result: AppendResult, out: &mut Vec<Output>) {
        let Some(seq) = self.appends.remove(&append) else { return };
        match result {
            // The answer comes with the apply (which may already have happened).
            AppendResult::Ok(revision) => {
                if self.proposals.contains_key(&seq) {
                    self.appended_at.insert(revision, seq);
                    self.fail_unmatched_appends(out);
                }
            }
            AppendResult::Failed(_) => {
                if let Some(purpose) = self.settle_proposal(seq) {
                    self.fail_proposal(purpose, crate::error_code::KAFKA_STORAGE_ERROR, out);
                }
            }
            // Maybe appended: the applied stream tells, until the proposal's deadline.
            AppendResult::Unknown(_) => {}
        }
    }

    fn fail_proposal(&mut self, purpose: Proposal, error: i16, out: &mut Vec<Output>) {
        match purpose {
            Proposal::Object(flush) => self.fail_flush(flush, error, out),
            Proposal::ProducerId(req) => producer_id::fail(&req, error, out),
            Proposal::AutoCreate(pending) => self.answer_metadata(pending, out),
            Proposal::CreateTopics(p) => admin_topics::fail_create(p, error, out),
            Proposal::DeleteTopics(p) => admin_topics::fail_delete(p, error, out),
            Proposal::CreatePartitions(p) => admin_topics::fail_partitions(p, error, out),
            Proposal::AlterConfigs(p) => configs::fail_alter(p, error, out),
            Proposal::DeleteRecords(p) => delete_records::fail_delete_records(p, error, out),
            Proposal::Group(p) => self.on_group_commit_failed(p, error, out),
            // The next sweep proposes the moves again.
            Proposal::Retention => {}
            Proposal::ObjectGc(_) => self.object_gc_failed(),
        }
    }

    fn on_timer(&mut self, timer: TimerId, out: &mut Vec<Output>) {
        if timer == TIMER_FLUSH {
            self.on_flush_timer(out);
        } else if timer == retention::TIMER_RETENTION {
            self.on_retention_timer(out);
        } else if timer == object_gc::TIMER_OBJECT_GC {
            self.on_object_gc_timer(out);
        } else if let Some(&seq) = self.append_timeouts.get(&timer) {
            if let Some(purpose) = self.settle_proposal(seq) {
                self.fail_proposal(purpose, crate::error_code::REQUEST_TIMED_OUT, out);
            }
        } else if !self.on_group_timer(timer, out) {
            self.on_fetch_timer(timer, out);
        }
    }

    pub(crate) fn next_read(&mut self) -> ReadId {
        self.fresh_id()
    }

    pub(crate) fn next_write(&mut self) -> WriteId {
        self.fresh_id()
    }
}

/// Emits a response for `req`.
pub(crate) fn respond(out: &mut Vec<Output>, req: &ReqInfo, body: impl Into<ResponseBody>) {
    out.push(Output::Respond {
        conn: req.key.conn,
        request: req.key.request,
        correlation_id: req.correlation_id,
        api_version: req.api_version,
        body: body.into(),
    });
}

/// The (topic id, partition) pairs a commit adds data to.
fn touched_partitions(commit: &Commit) -> Vec<(strata_proto::Uuid, i32)> {
    match &commit.body {
        CommitBody::Object { partitions, .. } => partitions.iter().map(|p| (p.topic_id, p.partition)).collect(),
        _ => Vec::new(),
    }
}
