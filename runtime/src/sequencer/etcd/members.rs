//! Membership on etcd (the contract is in [`crate::sequencer::members`]):
//! each broker's [`Member`] under `/{cluster}/brokers/{node_id}`, put with an
//! etcd lease that a background task keeps alive; the live set is a prefix
//! watch (a lapsed lease shows as a delete).

use std::collections::BTreeMap;
use std::time::Duration;

use etcd_client::{Client, GetOptions, LeaseClient, PutOptions, WatchOptions};
use tokio::sync::{mpsc, oneshot};

use super::timed;
use crate::sequencer::members::{Member, MemberItem, MemberWatch, Registration};
use crate::sequencer::SequencerError;

/// Pause before retrying to re-register after a lapse (doubles up to the max).
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Bound on the revoke done when a registration is dropped.
const REVOKE_TIMEOUT: Duration = Duration::from_secs(5);

/// `ttl` in whole seconds, rounded up, at least 1 (etcd's lease unit).
fn ttl_seconds(ttl: Duration) -> i64 {
    let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    i64::try_from(secs.max(1)).unwrap_or(i64::MAX)
}

/// Grants a lease of `ttl_s` seconds and puts `value` under `key` with it.
async fn grant_and_put(client: &Client, key: &str, value: &[u8], ttl_s: i64) -> Result<i64, SequencerError> {
    let mut leases = client.lease_client();
    let lease = timed("granting a lease", leases.grant(ttl_s, None)).await?.id();
    let mut kv = client.kv_client();
    let put = kv.put(key, value.to_vec(), Some(PutOptions::new().with_lease(lease)));
    if let Err(e) = timed("registering this broker", put).await {
        let _ = tokio::time::timeout(REVOKE_TIMEOUT, leases.revoke(lease)).await;
        return Err(e);
    }
    Ok(lease)
}

/// Puts `me` under `{brokers}{node_id}` with a lease of `ttl` and keeps it
/// there until the returned registration is dropped.
pub(super) async fn register(client: Client, brokers: &str, me: Member, ttl: Duration) -> Result<Registration, SequencerError> {
    let value = me.encode().map_err(|e| SequencerError::Fatal { reason: e.to_string() })?;
    let key = format!("{brokers}{}", me.node_id);
    let ttl_s = ttl_seconds(ttl);
    let lease = grant_and_put(&client, &key, &value, ttl_s).await?;
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(keep_registered(client, key, value, ttl_s, lease, stopped));
    // Dropping the sender ends the task, which then revokes the lease.
    Ok(Registration::new(stop))
}

/// Why keeping a lease alive stopped.
enum Lapse {
    /// etcd says the lease is gone (expired or revoked).
    Gone,
    /// The keep-alive stream failed; the lease may still be alive.
    Broken(String),
}

/// Keeps `lease` alive, a keep-alive every `period`, until it lapses or the
/// stream breaks (including an answer that takes longer than `patience`).
async fn keep_alive(mut leases: LeaseClient, lease: i64, period: Duration, patience: Duration) -> Lapse {
    let lapse = |e: etcd_client::Error| match e {
        // etcd-client's own check of the first answer (TTL 0).
        etcd_client::Error::LeaseKeepAliveError(m) if m.contains("not found") => Lapse::Gone,
        etcd_client::Error::GRpcStatus(s) if s.code() == tonic::Code::NotFound => Lapse::Gone,
        e => Lapse::Broken(e.to_string()),
    };
    let slow = || Lapse::Broken(format!("no keep-alive answer within {} ms", patience.as_millis()));
    // keep_alive sends the first request and reads its answer itself.
    let (mut keeper, mut responses) = match tokio::time::timeout(patience, leases.keep_alive(lease)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return lapse(e),
        Err(_) => return slow(),
    };
    loop {
        tokio::time::sleep(period).await;
        if let Err(e) = keeper.keep_alive().await {
            return lapse(e);
        }
        match tokio::time::timeout(patience, responses.message()).await {
            Ok(Ok(Some(r))) if r.ttl() <= 0 => return Lapse::Gone,
            Ok(Ok(Some(_))) => {}
            Ok(Ok(None)) => return Lapse::Broken("etcd closed the keep-alive stream".into()),
            Ok(Err(e)) => return lapse(e),
            Err(_) => return slow(),
        }
    }
}

/// The registration's background task: keep-alives every `ttl / 3`; a new
/// lease and put when the old one lapsed; on `stop`, revoke (best effort).
async fn keep_registered(client: Client, key: String, value: Vec<u8>, ttl_s: i64, mut lease: i64, mut stop: oneshot::Receiver<()>) {
    let period = Duration::from_millis(ttl_s as u64 * 1000 / 3);
    let patience = Duration::from_secs(ttl_s as u64);
    let mut backoff = MIN_BACKOFF;
    loop {
        let lapse = tokio::select! {
            _ = &mut stop => break,
            lapse = keep_alive(client.lease_client(), lease, period, patience) => lapse,
        };
        match lapse {
            Lapse::Broken(why) => {
                // Retry the same lease: the next keep-alive says whether it expired meanwhile.
                tracing::warn!(key, reason = %why, "etcd lease keep-alive broken; retrying in {} ms", backoff.as_millis());
            }
            Lapse::Gone => {
                tracing::warn!(key, "this broker's etcd lease expired; registering again");
                match grant_and_put(&client, &key, &value, ttl_s).await {
                    Ok(new) => {
                        lease = new;
                        backoff = MIN_BACKOFF;
                        continue;
                    }
                    Err(e) => tracing::warn!(key, error = %e, "cannot register again; retrying in {} ms", backoff.as_millis()),
                }
            }
        }
        tokio::select! {
            _ = &mut stop => break,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    // Revoking deletes only the keys put with this lease, never a newer registration's.
    let _ = tokio::time::timeout(REVOKE_TIMEOUT, client.lease_client().revoke(lease)).await;
}

/// The live set under `brokers`: now, then after each watch response.
pub(super) async fn watch_members(client: Client, brokers: String) -> Result<MemberWatch, SequencerError> {
    let resp = timed("reading the live brokers", client.kv_client().get(brokers.as_str(), Some(GetOptions::new().with_prefix()))).await?;
    let revision = resp.header().map_or(0, |h| h.revision());
    let mut live = BTreeMap::new();
    for kv in resp.kvs() {
        put_member(&mut live, kv.key(), kv.value());
    }
    let (tx, watch) = MemberWatch::channel();
    tx.try_send(Ok(sorted(&live))).expect("a new channel has room");
    tokio::spawn(async move {
        tokio::select! {
            () = follow(client, brokers, revision + 1, live, &tx) => {}
            () = tx.closed() => {}
        }
    });
    Ok(watch)
}

/// Decodes a member's value into `live`, or leaves it out (with a warning).
fn put_member(live: &mut BTreeMap<Vec<u8>, Member>, key: &[u8], value: &[u8]) {
    match Member::decode(value) {
        Ok(m) => {
            live.insert(key.to_vec(), m);
        }
        Err(e) => {
            live.remove(key);
            tracing::warn!(key = %String::from_utf8_lossy(key), error = %e, "ignoring an undecodable broker registration");
        }
    }
}

fn sorted(live: &BTreeMap<Vec<u8>, Member>) -> Vec<Member> {
    let mut set: Vec<Member> = live.values().cloned().collect();
    set.sort_by_key(|m| m.node_id);
    set.dedup_by_key(|m| m.node_id);
    set
}

/// Watches `brokers` from `from`, sending the whole set after each response; an error ends it.
async fn follow(client: Client, brokers: String, from: i64, mut live: BTreeMap<Vec<u8>, Member>, tx: &mpsc::Sender<MemberItem>) {
    let why = match follow_until_error(client, &brokers, from, &mut live, tx).await {
        Ok(()) => return, // the reader is gone
        Err(why) => why,
    };
    let _ = tx.send(Err(SequencerError::Unavailable(format!("watching the live brokers: {why}")))).await;
}

/// The watch loop of [`follow`]: `Ok` when the reader went away, `Err` when the watch failed.
async fn follow_until_error(
    mut client: Client,
    brokers: &str,
    from: i64,
    live: &mut BTreeMap<Vec<u8>, Member>,
    tx: &mpsc::Sender<MemberItem>,
) -> Result<(), String> {
    let options = WatchOptions::new().with_prefix().with_start_revision(from);
    let stream = client.watch(brokers, Some(options)).await.map_err(|e| e.to_string())?;
    // The request half stays alive while we read: dropping it ends the watch.
    let (_requests, mut responses) = stream.split();
    loop {
        let resp = responses.message().await.map_err(|e| e.to_string())?;
        let resp = resp.ok_or("etcd closed the watch stream")?;
        if resp.canceled() {
            return Err(format!("etcd cancelled the watch: {}", resp.cancel_reason()));
        }
        if resp.events().is_empty() {
            continue; // the created notice, or progress
        }
        for event in resp.events() {
            let Some(kv) = event.kv() else { continue };
            // A delete (or a lapsed lease) leaves a tombstone of version 0.
            // (etcd-client's `Event::event_type` panics on a type it does not know.)
            if kv.version() == 0 {
                live.remove(kv.key());
            } else {
                put_member(live, kv.key(), kv.value());
            }
        }
        if tx.send(Ok(sorted(live))).await.is_err() {
            return Ok(());
        }
    }
}
