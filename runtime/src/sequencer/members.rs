//! Broker membership through the sequencer (issue 6): each broker keeps a
//! leased key describing it ([`Member`]); the set of unexpired keys is the
//! live-broker set every broker watches ([`MemberWatch`]) and feeds to its
//! core, which derives Metadata, partition leaders and coordinators from it.
//!
//! Contract of [`Sequencer::register`](super::Sequencer::register) /
//! [`Sequencer::watch_members`](super::Sequencer::watch_members), which every
//! implementation keeps (etcd: key `/{cluster}/brokers/{node_id}`, value
//! [`Member::encode`], attached to an etcd lease; a prefix watch):
//!
//! * One key per node id. Registering a node id that is already live replaces
//!   the value (a restarted broker need not wait for its predecessor's lease).
//! * `register(me, ttl)` resolves once `me` is in the live set. In the
//!   background it keeps the lease alive well within `ttl` (etcd: a
//!   keep-alive every `ttl / 3`); when the lease lapsed anyway (the sequencer
//!   says it is unknown or expired, e.g. after a partition longer than `ttl`)
//!   it grants a new lease and puts the key again, retrying with backoff
//!   while the sequencer is unreachable. Implementations with a coarser TTL
//!   unit round `ttl` up (etcd: whole seconds, at least 1).
//! * Dropping the [`Registration`] stops all that and removes the key, best
//!   effort (etcd: revoke the lease; a revoked lease deletes only the keys put
//!   with it, never a newer registration's). A broker killed without dropping
//!   it stays in the set until its lease expires.
//! * `watch_members()` yields the whole live set at once (possibly empty),
//!   then again after each change, sorted by node id, one entry per node id.
//!   Quick successive changes may be coalesced into one item; an item may
//!   repeat the previous set. A value that does not decode is left out of the
//!   set (and logged). The stream ends after an `Err`; the consumer keeps its
//!   last known set and watches again with backoff.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;

use super::SequencerError;

/// Format version of an encoded [`Member`]: 2 adds the internal address.
/// Version 1 records (no internal address) still decode.
const MEMBER_FORMAT: u8 = 2;

/// How many sets a [`MemberWatch`] buffers ahead of its reader (each item is
/// a whole set, so a reader only ever needs the newest).
pub const MEMBER_WATCH_BUFFER: usize = 8;

/// Longest host or rack name a [`Member`] encodes (a DNS name is at most 253).
pub const MAX_NAME_BYTES: usize = 1024;

/// One live broker, as clients reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its node id.
    pub node_id: i32,
    /// The advertised host.
    pub host: String,
    /// The advertised port.
    pub port: u16,
    /// Its rack, if any.
    pub rack: Option<String>,
    /// Where peers reach its internal gRPC service (host:port), if it serves one.
    pub internal: Option<String>,
}

/// Why bytes are not an encoded [`Member`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberDecodeError {
    /// The bytes end inside a field.
    #[error("member record truncated at byte {at}")]
    Truncated { at: usize },
    /// A format version this build does not read.
    #[error("member record has format version {0}, this build reads 1 to {MEMBER_FORMAT}")]
    Version(u8),
    /// A host, rack or internal address that is not UTF-8 or longer than [`MAX_NAME_BYTES`].
    #[error("member record has a bad {field}")]
    BadName { field: &'static str },
    /// A presence flag (rack, internal address) is neither 0 nor 1.
    #[error("member record has presence flag {0}")]
    BadFlag(u8),
    /// Bytes follow the record.
    #[error("member record has {0} trailing bytes")]
    Trailing(usize),
}

/// Why a [`Member`] cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {field} of broker {node_id} is longer than {MAX_NAME_BYTES} bytes")]
pub struct MemberEncodeError {
    pub node_id: i32,
    pub field: &'static str,
}

impl Member {
    /// The value stored under the member's key: version, node id, port
    /// (big-endian), host (u16 length + UTF-8), rack flag and rack, internal
    /// address flag and address.
    pub fn encode(&self) -> Result<Vec<u8>, MemberEncodeError> {
        let too_long = |field| MemberEncodeError { node_id: self.node_id, field };
        let optional_len = |o: &Option<String>| o.as_ref().map_or(0, String::len);
        let mut out = Vec::with_capacity(16 + self.host.len() + optional_len(&self.rack) + optional_len(&self.internal));
        out.push(MEMBER_FORMAT);
        out.extend_from_slice(&self.node_id.to_be_bytes());
        out.extend_from_slice(&self.port.to_be_bytes());
        put_name(&mut out, &self.host).ok_or(too_long("host"))?;
        put_optional(&mut out, &self.rack).ok_or(too_long("rack"))?;
        put_optional(&mut out, &self.internal).ok_or(too_long("internal address"))?;
        Ok(out)
    }

    /// Reads what [`Member::encode`] wrote; any other bytes give an error.
    pub fn decode(bytes: &[u8]) -> Result<Member, MemberDecodeError> {
        let mut r = Reader { bytes, at: 0 };
        let version = r.take(1)?[0];
        if !(1..=MEMBER_FORMAT).contains(&version) {
            return Err(MemberDecodeError::Version(version));
        }
        let node_id = i32::from_be_bytes(r.array()?);
        let port = u16::from_be_bytes(r.array()?);
        let host = r.name("host")?;
        let rack = r.optional("rack")?;
        let internal = if version >= 2 { r.optional("internal address")? } else { None };
        if r.at != bytes.len() {
            return Err(MemberDecodeError::Trailing(bytes.len() - r.at));
        }
        Ok(Member { node_id, host, port, rack, internal })
    }
}

/// A presence flag (0 or 1) and, if present, the name.
fn put_optional(out: &mut Vec<u8>, name: &Option<String>) -> Option<()> {
    match name {
        None => {
            out.push(0);
            Some(())
        }
        Some(name) => {
            out.push(1);
            put_name(out, name)
        }
    }
}

fn put_name(out: &mut Vec<u8>, name: &str) -> Option<()> {
    if name.len() > MAX_NAME_BYTES {
        return None;
    }
    out.extend_from_slice(&(name.len() as u16).to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    Some(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MemberDecodeError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or(MemberDecodeError::Truncated { at: self.bytes.len() })?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], MemberDecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn name(&mut self, field: &'static str) -> Result<String, MemberDecodeError> {
        let len = usize::from(u16::from_be_bytes(self.array()?));
        if len > MAX_NAME_BYTES {
            return Err(MemberDecodeError::BadName { field });
        }
        let raw = self.take(len)?;
        String::from_utf8(raw.to_vec()).map_err(|_| MemberDecodeError::BadName { field })
    }

    fn optional(&mut self, field: &'static str) -> Result<Option<String>, MemberDecodeError> {
        match self.take(1)?[0] {
            0 => Ok(None),
            1 => Ok(Some(self.name(field)?)),
            flag => Err(MemberDecodeError::BadFlag(flag)),
        }
    }
}

/// A broker's registration in the live set: alive while held. Dropping it
/// stops the keep-alive and removes the member (best effort).
pub struct Registration {
    /// Whatever the implementation needs dropped to stop and deregister.
    _guard: Box<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Registration")
    }
}

impl Registration {
    /// A registration that ends when `guard` is dropped.
    pub fn new(guard: impl Any + Send + Sync) -> Self {
        Registration { _guard: Box::new(guard) }
    }
}

/// One item of a member watch: the whole live set, or the error that ended it.
pub type MemberItem = Result<Vec<Member>, SequencerError>;

/// The stream returned by [`Sequencer::watch_members`](super::Sequencer::watch_members).
#[derive(Debug)]
pub struct MemberWatch {
    rx: mpsc::Receiver<MemberItem>,
}

impl MemberWatch {
    /// A bounded channel of [`MEMBER_WATCH_BUFFER`] items and the watch reading it.
    pub fn channel() -> (mpsc::Sender<MemberItem>, MemberWatch) {
        let (tx, rx) = mpsc::channel(MEMBER_WATCH_BUFFER);
        (tx, MemberWatch { rx })
    }

    /// The live set now, an error (after which the stream ends), or `None`
    /// once the stream has ended.
    pub async fn next(&mut self) -> Option<MemberItem> {
        self.rx.recv().await
    }
}

/// The live set of an in-process sequencer (memory, embedded): whoever
/// registered through it in this process, until the registration is dropped.
/// No time is involved, so no lease can lapse. Clones share the set.
#[derive(Clone, Default)]
pub struct LocalMembers {
    inner: Arc<Mutex<Registry>>,
}

#[derive(Default)]
struct Registry {
    /// By node id: the member and the registration that put it.
    live: BTreeMap<i32, (Member, u64)>,
    next_registration: u64,
    /// One per watch: a "changed" signal of capacity 1 (a full one already says so).
    watchers: Vec<mpsc::Sender<()>>,
}

impl Registry {
    fn changed(&mut self) {
        self.watchers.retain(|w| !matches!(w.try_send(()), Err(mpsc::error::TrySendError::Closed(_))));
    }
}

/// Removes its member on drop, unless a newer registration replaced it.
struct LocalGuard {
    members: LocalMembers,
    node_id: i32,
    registration: u64,
}

impl Drop for LocalGuard {
    fn drop(&mut self) {
        let mut r = self.members.lock();
        if r.live.get(&self.node_id).is_some_and(|(_, reg)| *reg == self.registration) {
            r.live.remove(&self.node_id);
            r.changed();
        }
    }
}

impl LocalMembers {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts `me` in the set (replacing an entry of its node id) until the
    /// returned registration is dropped.
    pub fn register(&self, me: Member) -> Registration {
        let mut r = self.lock();
        r.next_registration += 1;
        let registration = r.next_registration;
        let node_id = me.node_id;
        r.live.insert(node_id, (me, registration));
        r.changed();
        Registration::new(LocalGuard { members: self.clone(), node_id, registration })
    }

    /// The live set now.
    pub fn live(&self) -> Vec<Member> {
        self.lock().live.values().map(|(m, _)| m.clone()).collect()
    }

    /// A watch of the set: the set now, then after each change (coalesced).
    pub fn watch(&self) -> MemberWatch {
        let (signal_tx, mut signal_rx) = mpsc::channel(1);
        // The first item: the set as it is now.
        let _ = signal_tx.try_send(());
        self.lock().watchers.push(signal_tx);
        let (tx, watch) = MemberWatch::channel();
        let members = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    signal = signal_rx.recv() => if signal.is_none() { return },
                    _ = tx.closed() => return,
                }
                if tx.send(Ok(members.live())).await.is_err() {
                    return;
                }
            }
        });
        watch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn member(node_id: i32, rack: Option<&str>) -> Member {
        Member { node_id, host: format!("broker-{node_id}.example"), port: 9092, rack: rack.map(str::to_string), internal: None }
    }

    #[test]
    fn members_round_trip_and_any_bytes_decode_or_fail() {
        let empty = Member { node_id: 0, host: String::new(), port: 0, rack: Some(String::new()), internal: Some(String::new()) };
        let internal = Member { internal: Some("broker-2.example:9093".into()), ..member(2, Some("r")) };
        for m in [member(1, None), member(-7, Some("eu-west-1a")), empty, internal] {
            assert_eq!(Member::decode(&m.encode().unwrap()), Ok(m));
        }
        // A version 1 record (before internal addresses) still decodes.
        let mut v1 = vec![1u8];
        v1.extend_from_slice(&5i32.to_be_bytes());
        v1.extend_from_slice(&9092u16.to_be_bytes());
        v1.extend_from_slice(&[0, 1, b'h', 0]);
        assert_eq!(Member::decode(&v1), Ok(Member { node_id: 5, host: "h".into(), port: 9092, rack: None, internal: None }));
        let good = Member { internal: Some("h:1".into()), ..member(3, Some("r")) }.encode().unwrap();
        // Every prefix and every one-byte change decodes to something or fails; never panics.
        for n in 0..good.len() {
            assert!(Member::decode(&good[..n]).is_err(), "prefix of {n} bytes");
        }
        for i in 0..good.len() {
            for b in [0u8, 1, 2, 0x7f, 0xff] {
                let mut bad = good.clone();
                bad[i] = b;
                let _ = Member::decode(&bad);
            }
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(Member::decode(&trailing), Err(MemberDecodeError::Trailing(1)));
        assert_eq!(Member::decode(&[9]), Err(MemberDecodeError::Version(9)));
        let long = Member { host: "h".repeat(MAX_NAME_BYTES + 1), ..member(1, None) };
        assert!(long.encode().is_err());
        let long = Member { internal: Some("h".repeat(MAX_NAME_BYTES + 1)), ..member(1, None) };
        assert!(long.encode().is_err());
    }

    async fn next_set(w: &mut MemberWatch) -> Vec<i32> {
        match tokio::time::timeout(Duration::from_secs(10), w.next()).await {
            Ok(Some(Ok(set))) => set.iter().map(|m| m.node_id).collect(),
            other => panic!("expected a set, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn local_members_follow_registrations() {
        let members = LocalMembers::default();
        let mut w = members.watch();
        assert_eq!(next_set(&mut w).await, Vec::<i32>::new());
        let r2 = members.register(member(2, None));
        assert_eq!(next_set(&mut w).await, [2]);
        let r1 = members.register(member(1, None));
        assert_eq!(next_set(&mut w).await, [1, 2]);
        // A restarted broker 2 replaces its predecessor; the old registration's drop leaves it.
        let r2b = members.register(Member { port: 9999, ..member(2, None) });
        assert_eq!(next_set(&mut w).await, [1, 2]);
        drop(r2);
        assert_eq!(members.live().iter().find(|m| m.node_id == 2).map(|m| m.port), Some(9999));
        drop(r1);
        // Changes may coalesce: read until the set shows broker 1 gone.
        while next_set(&mut w).await != [2] {}
        drop(r2b);
        assert_eq!(next_set(&mut w).await, Vec::<i32>::new());
    }
}
