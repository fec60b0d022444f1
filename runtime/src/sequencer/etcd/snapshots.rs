//! Snapshots on etcd (DESIGN.md, "The sequencer"): the published snapshot's
//! revision under `/{cluster}/snapshot`, moved forward only by
//! compare-and-swap, and truncation of the log behind it.
//!
//! * The revision is stored as a 20-digit zero-padded decimal, so that etcd's
//!   value comparison (bytewise) orders it numerically.
//! * Truncation deletes the log keys whose `mod_revision` is at or below the
//!   snapshot, then compacts etcd's history below the first revision kept, so
//!   that etcd frees it too and a watch from a truncated revision is told
//!   `Compacted`. etcd's compaction is global: other clusters sharing the etcd
//!   lose their history below that revision as well (their live keys stay).

use etcd_client::{Compare, CompareOp, GetOptions, KvClient, Txn, TxnOp, TxnOpResponse};

use super::timed;
use crate::sequencer::SequencerError;

/// Log keys listed per round of truncation.
const TRUNCATE_PAGE: i64 = 1000;

/// Deletes per Txn (etcd's default `--max-txn-ops` is 128).
const TRUNCATE_TXN_OPS: usize = 100;

/// Compare-and-swap attempts before giving up on a contended publish.
const PUBLISH_ATTEMPTS: usize = 16;

/// The stored form of a snapshot revision.
fn encode(revision: u64) -> String {
    format!("{revision:020}")
}

fn decode(key: &str, value: &[u8]) -> Result<u64, SequencerError> {
    std::str::from_utf8(value).ok().and_then(|s| s.parse().ok()).ok_or_else(|| SequencerError::Fatal {
        reason: format!("etcd key {key} holds {:?}, not a snapshot revision", String::from_utf8_lossy(value)),
    })
}

/// The published snapshot's revision, from a Get of `key`.
pub(super) fn published(key: &str, resp: &etcd_client::GetResponse) -> Result<Option<u64>, SequencerError> {
    resp.kvs().first().map(|kv| decode(key, kv.value())).transpose()
}

pub(super) async fn snapshot_revision(kv: &mut KvClient, key: &str) -> Result<Option<u64>, SequencerError> {
    let resp = timed("reading the snapshot revision", kv.get(key, None)).await?;
    published(key, &resp)
}

/// Publishes `revision` under `key` if it is newer than the published one;
/// `log_revision` is the log's current revision (read before).
pub(super) async fn publish(kv: &mut KvClient, key: &str, log_revision: u64, revision: u64) -> Result<bool, SequencerError> {
    if revision > log_revision || revision == 0 {
        return Ok(false);
    }
    let new = encode(revision);
    let put = || TxnOp::put(key, new.clone(), None);
    for _ in 0..PUBLISH_ATTEMPTS {
        // Padded decimals compare as numbers. A missing key fails a value compare.
        let txn = Txn::new()
            .when([Compare::value(key, CompareOp::Less, new.clone())])
            .and_then([put()])
            .or_else([TxnOp::get(key, None)]);
        let resp = timed("publishing a snapshot", kv.txn(txn)).await?;
        if resp.succeeded() {
            return Ok(true);
        }
        let current = match resp.op_responses().into_iter().next() {
            Some(TxnOpResponse::Get(get)) => get.kvs().first().map(|kv| kv.value().to_vec()),
            _ => None,
        };
        let guard = match current {
            None => Compare::version(key, CompareOp::Equal, 0),
            Some(raw) => {
                if decode(key, &raw)? >= revision {
                    return Ok(false);
                }
                // Not in the padded form (written by hand?): swap exactly that value.
                Compare::value(key, CompareOp::Equal, raw)
            }
        };
        let resp = timed("publishing a snapshot", kv.txn(Txn::new().when([guard]).and_then([put()]))).await?;
        if resp.succeeded() {
            return Ok(true);
        }
        // Another broker moved it in between: look again.
    }
    Err(SequencerError::Unavailable(format!("publishing snapshot {revision}: lost {PUBLISH_ATTEMPTS} races for {key}")))
}

/// Deletes the records under `log_prefix` up to `through` (which `snapshot`,
/// the published revision, must cover) and compacts etcd's history below `through + 1`.
pub(super) async fn truncate(kv: &mut KvClient, log_prefix: &str, snapshot: Option<u64>, through: u64) -> Result<(), SequencerError> {
    if snapshot.is_none_or(|s| through > s) {
        return Err(SequencerError::BeyondSnapshot { through, snapshot });
    }
    if through == 0 {
        return Ok(());
    }
    let max = i64::try_from(through).unwrap_or(i64::MAX);
    let mut etcd_revision = 0;
    loop {
        let list = GetOptions::new().with_prefix().with_keys_only().with_max_mod_revision(max).with_limit(TRUNCATE_PAGE);
        let resp = timed("listing truncated log records", kv.get(log_prefix, Some(list))).await?;
        etcd_revision = resp.header().map_or(etcd_revision, |h| h.revision());
        if resp.kvs().is_empty() {
            break;
        }
        let keys: Vec<Vec<u8>> = resp.kvs().iter().map(|kv| kv.key().to_vec()).collect();
        for chunk in keys.chunks(TRUNCATE_TXN_OPS) {
            let deletes: Vec<TxnOp> = chunk.iter().map(|k| TxnOp::delete(k.clone(), None)).collect();
            let resp = timed("deleting truncated log records", kv.txn(Txn::new().and_then(deletes))).await?;
            etcd_revision = resp.header().map_or(etcd_revision, |h| h.revision());
        }
    }
    // Revisions below `through + 1` are gone; a watch from `through + 1` on still works.
    let compact = max.saturating_add(1).min(etcd_revision);
    if compact > 0 {
        match timed("compacting etcd's history", kv.compact(compact, None)).await {
            Ok(_) => {}
            // An earlier truncation (or an operator) compacted at least this far.
            Err(e) if e.to_string().contains("compacted") => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
