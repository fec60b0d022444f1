//! What flows into and out of a broker's core: plain data, no IO.
//!
//! The runtime (tokio) and the simulator (madsim) feed [`Input`]s to
//! [`crate::Broker::handle`] and carry out the [`Output`]s it returns, feeding
//! the results back as further inputs. Nothing here awaits.

use bytes::Bytes;
use strata_proto::codec::header::RequestHeader;
use strata_proto::{RequestBody, ResponseBody};

use crate::log::commit::Commit;

/// A client connection, numbered by the runtime.
pub type ConnId = u64;

/// An object-store write the core asked for.
pub type WriteId = u64;

/// A sequencer append the core asked for.
pub type AppendId = u64;

/// An object-store ranged read the core asked for.
pub type ReadId = u64;

/// A timer the core set.
pub type TimerId = u64;

/// The outcome of a sequencer append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendResult {
    /// Appended at this revision (it will also arrive as [`Input::Applied`]).
    Ok(u64),
    /// Definitely not appended.
    Failed(String),
    /// Maybe appended: the outcome shows in the applied stream, or not at all.
    Unknown(String),
}

/// Something that happened, for the core to react to.
#[derive(Debug, Clone)]
pub enum Input {
    /// A decoded request from connection `conn`: `request` numbers the
    /// connection's requests in arrival order; `size` is the frame size.
    Request { conn: ConnId, request: u64, header: RequestHeader, body: RequestBody, size: usize },
    /// The next commit in sequencer order (every broker sees every commit).
    Applied { revision: u64, commit: Commit },
    /// An object write finished.
    ObjectWritten { write: WriteId, result: Result<(), String> },
    /// A sequencer append finished.
    Appended { append: AppendId, result: AppendResult },
    /// A ranged object read finished.
    ReadDone { read: ReadId, result: Result<Bytes, String> },
    /// A timer fired.
    Timer { timer: TimerId },
    /// A connection opened from `peer` (the client's IP address).
    Opened { conn: ConnId, peer: String },
    /// A connection closed; drop whatever waits on it.
    Closed { conn: ConnId },
    /// The sequencer holds a record at `revision` that is not a commit this
    /// build can decode: the applied revision moves past it.
    Skipped { revision: u64 },
    /// Write the open object now instead of waiting for `flush.ms` (shutdown).
    Flush,
    /// The live brokers now (from the sequencer's leased registrations): the
    /// whole set, replacing the previous one. This broker is always in its
    /// own view, whether or not the set names it.
    Members(Vec<crate::broker::Peer>),
    /// The listing [`Output::ListObjects`] asked for.
    ObjectsListed { result: Result<Vec<ListedObject>, String> },
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    /// Its key.
    pub key: String,
    /// When it was written, in milliseconds since the Unix epoch.
    pub last_modified_ms: u64,
}

/// Something the core wants done.
#[derive(Debug, Clone)]
pub enum Output {
    /// Answer request number `request` of `conn`. The runtime sends responses
    /// in request order, holding early ones until those before are answered.
    Respond { conn: ConnId, request: u64, correlation_id: i32, api_version: i16, body: ResponseBody },
    /// Request `request` of `conn` gets no response (acks=0 produce); the
    /// runtime moves past it in its response order.
    NoResponse { conn: ConnId, request: u64 },
    /// Write `bytes` to the object store at `key`, create-only.
    WriteObject { write: WriteId, key: String, bytes: crate::object::parts::ObjectParts },
    /// Append `commit` to the sequencer.
    Append { append: AppendId, commit: Commit },
    /// Read `range` of the object at `key`.
    Read { read: ReadId, key: String, range: std::ops::Range<u64> },
    /// Fire [`Input::Timer`] with `timer` at `at_ms` (replaces an earlier one with the same id).
    SetTimer { timer: TimerId, at_ms: u64 },
    /// Close the connection (Kafka closes on some protocol errors).
    Close { conn: ConnId },
    /// List the objects under `prefix`; answer with [`Input::ObjectsListed`].
    ListObjects { prefix: String },
    /// Delete these objects (no answer: a failure is logged, the next pass retries).
    DeleteObjects { keys: Vec<String> },
}
