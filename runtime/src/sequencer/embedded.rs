//! The embedded sequencer: an append-only, fsynced local file with group
//! commit, for single-node deployments.
//!
//! # File format (`{dir}/sequencer.log`, all integers little-endian)
//!
//! ```text
//! file header, 32 bytes:
//!   0..8    magic "STRATASQ"
//!   8..12   format version (1)
//!   12..16  flags (0; any other value is refused)
//!   16..24  revision of the first record in the file (1)
//!   24..28  reserved (0)
//!   28..32  crc32c of bytes 0..28
//! then records, back to back, each:
//!   0..4    payload length (at most MAX_RECORD_BYTES)
//!   4..8    crc32c of bytes 0..4, 8..20 and the payload
//!   8..16   revision of this record
//!   16..20  position of the record in its write group (0 = first)
//!   20..    payload
//! ```
//!
//! The checksum covers the length, so a zero-filled region never passes for
//! an empty record. The revision makes every record self-describing, and the
//! group position lets recovery tell a torn write (damage confined to the last
//! group, the only one that can be unsynced at a crash) from corruption
//! (damage followed by a valid record of a later group).
//!
//! # Writing
//!
//! A single writer thread takes every pending append from a bounded channel
//! (up to [`MAX_GROUP_BYTES`] / [`MAX_GROUP_RECORDS`]), writes them with one
//! `write`, issues one `fdatasync` for the group, then publishes them to
//! watchers and resolves the appends. Failure handling:
//!
//! * the `write` fails (disk full, ...): the file is truncated back to the end
//!   of the last durable group and that truncation is synced; if that works
//!   the appends get [`AppendError::Failed`] and the sequencer carries on (the
//!   next group reuses the revisions); if it does not, as below.
//! * the `fdatasync` fails: the group's records may or may not be on disk, and
//!   after a failed fsync the kernel's page cache cannot be trusted (a retry
//!   may report success for lost data). The appends get
//!   [`AppendError::Unknown`], and the sequencer turns **fatal**: later appends
//!   fail with `Failed(Fatal)`, every watch ends with `Err(Fatal)` once it has
//!   delivered the records durable before the failure, `current_revision`
//!   and `watch` return `Err(Fatal)`. The process must reopen the log (restart);
//!   recovery then shows whether the unknown records made it.
//!
//! # Recovery on open
//!
//! The file is scanned and every record verified. Damage at the tail that one
//! interrupted group can explain (a record cut short, a checksum mismatch, a
//! zero-filled tail, with no valid record of a later group after it) is
//! truncated away with a warning; the records dropped were never acknowledged.
//! Damage anywhere else, or a bad file header, refuses to open with
//! [`SequencerError::Corrupt`] / [`SequencerError::CorruptHeader`], which say
//! where, what, and what the operator can do. After recovery the file is
//! fsynced, so records that were written but not synced before a crash are
//! durable before any watcher sees them. A lock file (`flock`) keeps a second
//! sequencer from opening the same directory.
//!
//! Watchers read old records from the file through a sparse in-memory index
//! (one offset per [`INDEX_STRIDE`] records) and recent ones from a
//! byte-bounded in-memory cache, so memory does not grow with the log's size
//! beyond 8 bytes per 64 records.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};

use super::{AppendError, Sequencer, SequencerError, Watch, WatchItem};

/// Name of the log file inside the sequencer's directory.
pub const LOG_FILE: &str = "sequencer.log";
/// Name of the lock file inside the sequencer's directory.
pub const LOCK_FILE: &str = "sequencer.lock";
/// First 8 bytes of a log file.
pub const MAGIC: [u8; 8] = *b"STRATASQ";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Size of the file header.
pub const FILE_HEADER_LEN: u64 = 32;
/// Size of a record's frame header.
pub const FRAME_HEADER_LEN: usize = 20;
/// The largest record the log accepts (part of the format: recovery refuses
/// longer lengths before allocating anything).
pub const MAX_RECORD_BYTES: usize = 64 << 20;
/// A write group stops growing at this many bytes (a single larger record
/// forms a group of its own).
pub const MAX_GROUP_BYTES: usize = 8 << 20;
/// A write group stops growing at this many records.
pub const MAX_GROUP_RECORDS: usize = 4096;
/// One index entry per this many records.
pub const INDEX_STRIDE: u64 = 64;

/// Appends waiting for the writer (backpressure beyond this).
const APPEND_QUEUE: usize = 4096;
/// Recent records kept in memory for watchers that are caught up.
const RECENT_MAX_BYTES: usize = 8 << 20;
const RECENT_MAX_RECORDS: usize = 16 * 1024;
/// Bytes read from the file at a time by a watcher that is behind.
const READ_CHUNK: usize = 1 << 20;
/// Records handed to a watch per batch.
const WATCH_BATCH: usize = 256;
/// The most bytes an interrupted group can leave behind the last durable one.
const MAX_TORN_TAIL: u64 = {
    let record = (FRAME_HEADER_LEN + MAX_RECORD_BYTES) as u64;
    let group = MAX_GROUP_BYTES as u64;
    if record > group {
        record
    } else {
        group
    }
};

/// What recovery found when the log was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Revision of the last record kept (0 if none).
    pub last_revision: u64,
    /// Bytes truncated from a torn tail (0 if the file ended cleanly).
    pub truncated_bytes: u64,
}

/// The file-backed sequencer. See the module documentation.
pub struct EmbeddedSequencer {
    inner: Arc<Inner>,
    tx: Option<mpsc::Sender<AppendReq>>,
    writer: Option<JoinHandle<()>>,
    recovery: RecoveryReport,
    /// Single node: the live set is whoever registered in this process.
    members: super::members::LocalMembers,
}

impl std::fmt::Debug for EmbeddedSequencer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedSequencer")
            .field("path", &self.inner.path)
            .field("revision", &self.inner.status.borrow().revision)
            .finish()
    }
}

struct Inner {
    path: PathBuf,
    /// Read-only handle for watchers (positional reads, shared).
    reader: File,
    first_revision: u64,
    state: Mutex<State>,
    /// Last durable revision and end offset, and whether the sequencer is
    /// fatal or closed. Watchers subscribe to it.
    status: watch::Sender<Status>,
    fsyncs: AtomicU64,
    #[cfg(test)]
    hooks: TestHooks,
}

#[derive(Clone, Debug)]
struct Status {
    revision: u64,
    end: u64,
    fatal: Option<SequencerError>,
    closed: bool,
}

struct State {
    /// `index[k]` is the byte offset of revision `first_revision + k * INDEX_STRIDE`.
    index: Vec<u64>,
    /// The most recent durable records, contiguous revisions.
    recent: VecDeque<Recent>,
    recent_bytes: usize,
}

struct Recent {
    revision: u64,
    offset: u64,
    payload: Bytes,
}

struct AppendReq {
    record: Bytes,
    reply: oneshot::Sender<Result<u64, AppendError>>,
}

impl EmbeddedSequencer {
    /// Opens (or creates) the log in `dir`, recovering it as described in the
    /// module documentation. Blocking: it reads the whole file once.
    pub fn open(dir: &Path) -> Result<Self, SequencerError> {
        fs::create_dir_all(dir)
            .map_err(|e| SequencerError::io(format!("creating directory {}", dir.display()), e))?;
        let lock = lock_dir(dir)?;
        let path = dir.join(LOG_FILE);
        match fs::symlink_metadata(&path) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => create_log(dir, &path)?,
            Err(e) => {
                return Err(SequencerError::io(
                    format!("inspecting {}", path.display()),
                    e,
                ))
            }
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| SequencerError::io(format!("opening {}", path.display()), e))?;
        let rec = recover(&path, &mut file)?;
        // Whatever we recovered may be written-but-unsynced data of a process
        // that crashed: make it durable before any watcher sees it.
        file.sync_all().map_err(|e| {
            SequencerError::io(format!("syncing {} after recovery", path.display()), e)
        })?;
        file.seek(SeekFrom::Start(rec.end))
            .map_err(|e| SequencerError::io(format!("seeking in {}", path.display()), e))?;
        let reader = File::open(&path).map_err(|e| {
            SequencerError::io(format!("opening {} for reading", path.display()), e)
        })?;
        // first_revision >= 1, so this is first_revision - 1 for an empty log.
        let last_revision = rec.first_revision + rec.records - 1;
        let (status, _) = watch::channel(Status {
            revision: last_revision,
            end: rec.end,
            fatal: None,
            closed: false,
        });
        let inner = Arc::new(Inner {
            path: path.clone(),
            reader,
            first_revision: rec.first_revision,
            state: Mutex::new(State {
                index: rec.index,
                recent: VecDeque::new(),
                recent_bytes: 0,
            }),
            status,
            fsyncs: AtomicU64::new(0),
            #[cfg(test)]
            hooks: TestHooks::default(),
        });
        let (tx, rx) = mpsc::channel(APPEND_QUEUE);
        let writer = Writer {
            inner: inner.clone(),
            file,
            _lock: lock,
            next_revision: last_revision + 1,
            end: rec.end,
            buf: Vec::new(),
            fatal: None,
        };
        let handle = std::thread::Builder::new()
            .name("strata-sequencer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| SequencerError::io("starting the sequencer's writer thread", e))?;
        tracing::info!(path = %path.display(), last_revision, bytes = rec.end, "sequencer log opened");
        Ok(EmbeddedSequencer {
            inner,
            tx: Some(tx),
            writer: Some(handle),
            recovery: RecoveryReport {
                last_revision,
                truncated_bytes: rec.truncated_bytes,
            },
            members: Default::default(),
        })
    }

    /// The log file's path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// What recovery found when the log was opened.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// How many group fsyncs the writer has completed since open.
    pub fn fsync_count(&self) -> u64 {
        self.inner.fsyncs.load(Ordering::Relaxed)
    }

    fn status(&self) -> Status {
        self.inner.status.borrow().clone()
    }
}

impl Drop for EmbeddedSequencer {
    fn drop(&mut self) {
        // Closing the channel lets the writer finish what is queued and exit,
        // releasing the file and the lock; joining makes a reopen right after
        // this drop find the lock free.
        drop(self.tx.take());
        if let Some(handle) = self.writer.take() {
            let _ = handle.join();
        }
        self.inner.status.send_modify(|s| s.closed = true);
    }
}

impl Sequencer for EmbeddedSequencer {
    async fn append(&self, record: Bytes) -> Result<u64, AppendError> {
        if record.len() > MAX_RECORD_BYTES {
            return Err(AppendError::Failed(SequencerError::RecordTooLarge {
                size: record.len(),
                max: MAX_RECORD_BYTES,
            }));
        }
        let fatal = self.inner.status.borrow().fatal.clone();
        if let Some(fatal) = fatal {
            return Err(AppendError::Failed(fatal));
        }
        let tx = self
            .tx
            .as_ref()
            .ok_or(AppendError::Failed(SequencerError::Closed))?;
        let (reply, rx) = oneshot::channel();
        tx.send(AppendReq { record, reply })
            .await
            .map_err(|_| AppendError::Failed(SequencerError::Closed))?;
        // The writer always answers; no answer means it died mid-group.
        rx.await
            .unwrap_or(Err(AppendError::Unknown(SequencerError::Closed)))
    }

    async fn watch(&self, from: u64) -> Result<Watch, SequencerError> {
        let from = from.max(1);
        if let Some(fatal) = self.status().fatal {
            return Err(fatal);
        }
        if from < self.inner.first_revision {
            return Err(SequencerError::Compacted {
                requested: from,
                first_available: self.inner.first_revision,
            });
        }
        let (tx, watch) = Watch::channel();
        tokio::spawn(feed_watch(self.inner.clone(), from, tx));
        Ok(watch)
    }

    async fn current_revision(&self) -> Result<u64, SequencerError> {
        let status = self.status();
        match status.fatal {
            Some(fatal) => Err(fatal),
            None => Ok(status.revision),
        }
    }

    // Membership
    async fn register(&self, me: super::Member, _ttl: std::time::Duration) -> Result<super::Registration, SequencerError> {
        Ok(self.members.register(me))
    }

    async fn watch_members(&self) -> Result<super::MemberWatch, SequencerError> {
        Ok(self.members.watch())
    }

    // Snapshots: not kept. The embedded log serves one broker, which replays
    // its own file at start; rewriting that file to drop a prefix would put
    // its crash safety at risk for little gain. So nothing is ever published,
    // and nothing may be truncated (the snapshotter stops on the first refusal).
    async fn snapshot_revision(&self) -> Result<Option<u64>, SequencerError> {
        Ok(None)
    }

    async fn publish_snapshot(&self, _revision: u64) -> Result<bool, SequencerError> {
        Ok(false)
    }

    async fn truncate(&self, through: u64) -> Result<(), SequencerError> {
        if through < self.inner.first_revision {
            return Ok(()); // nothing there to delete
        }
        Err(SequencerError::BeyondSnapshot { through, snapshot: None })
    }
}

// ---------------------------------------------------------------------------
// Encoding

fn encode_file_header(first_revision: u64) -> [u8; FILE_HEADER_LEN as usize] {
    let mut h = [0u8; FILE_HEADER_LEN as usize];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&first_revision.to_le_bytes());
    let crc = crc32c::crc32c(&h[0..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks a file header and returns the revision of its first record.
fn check_file_header(
    path: &Path,
    h: &[u8; FILE_HEADER_LEN as usize],
) -> Result<u64, SequencerError> {
    let bad = |detail: String| SequencerError::CorruptHeader {
        path: path.to_owned(),
        detail,
    };
    if h[0..8] != MAGIC {
        return Err(bad(format!(
            "the file starts with {:?}, not the magic {:?}: it is not a Strata sequencer log, or its first bytes are damaged",
            String::from_utf8_lossy(&h[0..8]),
            String::from_utf8_lossy(&MAGIC)
        )));
    }
    let stored = u32::from_le_bytes(h[28..32].try_into().unwrap());
    let computed = crc32c::crc32c(&h[0..28]);
    if stored != computed {
        return Err(bad(format!(
            "header checksum mismatch (stored {stored:08x}, computed {computed:08x})"
        )));
    }
    let version = u32::from_le_bytes(h[8..12].try_into().unwrap());
    if version != FORMAT_VERSION {
        return Err(bad(format!(
            "format version {version}; this build reads version {FORMAT_VERSION} (a log written by a newer Strata needs that version)"
        )));
    }
    let flags = u32::from_le_bytes(h[12..16].try_into().unwrap());
    if flags != 0 {
        return Err(bad(format!("unknown flags {flags:#x}")));
    }
    let first = u64::from_le_bytes(h[16..24].try_into().unwrap());
    if first == 0 {
        return Err(bad("first revision 0 (revisions start at 1)".into()));
    }
    Ok(first)
}

#[derive(Debug, Clone, Copy)]
struct FrameHeader {
    len: u32,
    crc: u32,
    revision: u64,
    index: u32,
}

fn parse_frame_header(h: &[u8]) -> FrameHeader {
    FrameHeader {
        len: u32::from_le_bytes(h[0..4].try_into().unwrap()),
        crc: u32::from_le_bytes(h[4..8].try_into().unwrap()),
        revision: u64::from_le_bytes(h[8..16].try_into().unwrap()),
        index: u32::from_le_bytes(h[16..20].try_into().unwrap()),
    }
}

/// The checksum of a frame header's covered fields; continue it over the payload.
fn frame_crc_start(h: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&h[0..4]), &h[8..20])
}

fn encode_frame(buf: &mut Vec<u8>, revision: u64, index_in_group: u32, payload: &[u8]) {
    let mut h = [0u8; FRAME_HEADER_LEN];
    h[0..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    h[8..16].copy_from_slice(&revision.to_le_bytes());
    h[16..20].copy_from_slice(&index_in_group.to_le_bytes());
    let crc = crc32c::crc32c_append(frame_crc_start(&h), payload);
    h[4..8].copy_from_slice(&crc.to_le_bytes());
    buf.extend_from_slice(&h);
    buf.extend_from_slice(payload);
}

/// If `b` starts with a whole valid frame of revision `>= min_revision`,
/// returns (revision, group position, frame length).
fn valid_frame_at(b: &[u8], min_revision: u64) -> Option<(u64, u32, usize)> {
    if b.len() < FRAME_HEADER_LEN {
        return None;
    }
    let h = parse_frame_header(&b[..FRAME_HEADER_LEN]);
    let len = h.len as usize;
    if len > MAX_RECORD_BYTES
        || FRAME_HEADER_LEN + len > b.len()
        || h.revision < min_revision
        || u64::from(h.index) >= h.revision
    {
        return None;
    }
    let payload = &b[FRAME_HEADER_LEN..FRAME_HEADER_LEN + len];
    if crc32c::crc32c_append(frame_crc_start(&b[..FRAME_HEADER_LEN]), payload) != h.crc {
        return None;
    }
    Some((h.revision, h.index, FRAME_HEADER_LEN + len))
}

// ---------------------------------------------------------------------------
// Files

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Takes an exclusive lock on `{dir}/sequencer.lock`, held until the returned
/// file is dropped (by the writer thread, when it exits).
fn lock_dir(dir: &Path) -> Result<File, SequencerError> {
    let lock_path = dir.join(LOCK_FILE);
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| SequencerError::io(format!("opening {}", lock_path.display()), e))?;
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(SequencerError::Locked {
                    path: dir.to_owned(),
                });
            }
            return Err(SequencerError::io(
                format!("locking {}", lock_path.display()),
                e,
            ));
        }
    }
    Ok(lock)
}

/// Creates an empty log atomically: header into a temporary file, synced,
/// renamed into place, directory synced. A log file therefore always has a
/// whole header, and a short one is damage.
fn create_log(dir: &Path, path: &Path) -> Result<(), SequencerError> {
    let tmp = dir.join(format!("{LOG_FILE}.tmp"));
    let io_err = |what: &str, e| SequencerError::io(format!("{what} {}", tmp.display()), e);
    let _ = fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| io_err("creating", e))?;
    f.write_all(&encode_file_header(1))
        .map_err(|e| io_err("writing", e))?;
    f.sync_all().map_err(|e| io_err("syncing", e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| {
        SequencerError::io(
            format!("renaming {} to {}", tmp.display(), path.display()),
            e,
        )
    })?;
    sync_dir(dir)?;
    tracing::info!(path = %path.display(), "created a new sequencer log");
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), SequencerError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| SequencerError::io(format!("syncing directory {}", dir.display()), e))?;
    }
    let _ = dir;
    Ok(())
}

// ---------------------------------------------------------------------------
// Recovery

struct Recovered {
    first_revision: u64,
    records: u64,
    end: u64,
    index: Vec<u64>,
    truncated_bytes: u64,
}

fn recover(path: &Path, file: &mut File) -> Result<Recovered, SequencerError> {
    let ioe = |what: &str, e| SequencerError::io(format!("{what} {}", path.display()), e);
    let len = file
        .metadata()
        .map_err(|e| ioe("reading the size of", e))?
        .len();
    if len < FILE_HEADER_LEN {
        return Err(SequencerError::CorruptHeader {
            path: path.to_owned(),
            detail: format!(
                "the file is {len} bytes long, shorter than the {FILE_HEADER_LEN}-byte header \
                 (logs are created whole, so this is damage, not an interrupted write)"
            ),
        });
    }
    let mut header = [0u8; FILE_HEADER_LEN as usize];
    read_exact_at(file, &mut header, 0).map_err(|e| ioe("reading the header of", e))?;
    let first = check_file_header(path, &header)?;

    let mut r = io::BufReader::with_capacity(READ_CHUNK, &*file);
    r.seek(SeekFrom::Start(FILE_HEADER_LEN))
        .map_err(|e| ioe("seeking in", e))?;
    let mut pos = FILE_HEADER_LEN;
    let mut revision = first;
    let mut prev_index: Option<u32> = None;
    let mut index = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let damage: Option<String> = loop {
        if pos == len {
            break None;
        }
        let remaining = len - pos;
        if remaining < FRAME_HEADER_LEN as u64 {
            break Some(format!(
                "incomplete record header ({remaining} of {FRAME_HEADER_LEN} bytes)"
            ));
        }
        let mut h = [0u8; FRAME_HEADER_LEN];
        r.read_exact(&mut h).map_err(|e| ioe("reading", e))?;
        let fh = parse_frame_header(&h);
        if fh.len as usize > MAX_RECORD_BYTES {
            break Some(format!(
                "record length {} exceeds the maximum of {MAX_RECORD_BYTES}",
                fh.len
            ));
        }
        let frame_len = FRAME_HEADER_LEN as u64 + u64::from(fh.len);
        if frame_len > remaining {
            break Some(format!(
                "record of {} bytes is cut short: the file ends {} bytes into it",
                fh.len,
                remaining - FRAME_HEADER_LEN as u64
            ));
        }
        let mut crc = frame_crc_start(&h);
        let mut left = fh.len as usize;
        while left > 0 {
            let n = left.min(chunk.len());
            r.read_exact(&mut chunk[..n])
                .map_err(|e| ioe("reading", e))?;
            crc = crc32c::crc32c_append(crc, &chunk[..n]);
            left -= n;
        }
        if crc != fh.crc {
            break Some(format!(
                "checksum mismatch (stored {:08x}, computed {crc:08x})",
                fh.crc
            ));
        }
        if fh.revision != revision {
            break Some(format!(
                "the record says revision {}, expected {revision}",
                fh.revision
            ));
        }
        let follows = fh.index == 0 || prev_index.and_then(|p| p.checked_add(1)) == Some(fh.index);
        if !follows {
            break Some(format!(
                "group position {} does not follow the previous record's ({:?})",
                fh.index, prev_index
            ));
        }
        if (revision - first) % INDEX_STRIDE == 0 {
            index.push(pos);
        }
        pos += frame_len;
        revision += 1;
        prev_index = Some(fh.index);
    };
    drop(r);

    let mut truncated_bytes = 0;
    if let Some(detail) = damage {
        let dropped = check_torn_tail(path, file, pos, len, revision, first, &detail)?;
        truncated_bytes = len - pos;
        tracing::warn!(
            path = %path.display(),
            offset = pos,
            truncated_bytes,
            revision,
            dropped_whole_records = dropped,
            "sequencer log: truncating a torn tail of {truncated_bytes} bytes at byte {pos} \
             (record {revision}: {detail}); these were never acknowledged (a crash between write and fsync)"
        );
        file.set_len(pos)
            .map_err(|e| ioe("truncating the torn tail of", e))?;
    }
    Ok(Recovered {
        first_revision: first,
        records: revision - first,
        end: pos,
        index,
        truncated_bytes,
    })
}

/// Damage was found at `pos` (where record `revision` should start). Decides
/// whether it is a torn tail — everything from `pos` on is what one
/// interrupted group could leave: no more than a group's bytes, and no valid
/// record of a later group — and returns how many whole records of the torn
/// group follow the damage (they go too); otherwise returns `Corrupt`.
fn check_torn_tail(
    path: &Path,
    file: &File,
    pos: u64,
    len: u64,
    revision: u64,
    first: u64,
    detail: &str,
) -> Result<u64, SequencerError> {
    let corrupt = |detail: String| SequencerError::Corrupt {
        path: path.to_owned(),
        offset: pos,
        revision,
        kept: revision - first,
        detail,
    };
    let tail = len - pos;
    if tail > MAX_TORN_TAIL {
        return Err(corrupt(format!(
            "{detail}; {tail} bytes follow, more than one interrupted write group can leave, \
             so this is not a torn write from a crash"
        )));
    }
    let mut buf = vec![0u8; tail as usize];
    read_exact_at(file, &mut buf, pos)
        .map_err(|e| SequencerError::io(format!("reading the tail of {}", path.display()), e))?;
    let mut q = 1;
    let mut dropped = 0;
    while q + FRAME_HEADER_LEN <= buf.len() {
        if let Some((rev, index, frame_len)) = valid_frame_at(&buf[q..], revision) {
            if rev - u64::from(index) > revision {
                return Err(corrupt(format!(
                    "{detail}; a valid record (revision {rev}) of a later write group follows at byte {}, \
                     so the damaged record had been synced: this is not a torn write from a crash",
                    pos + q as u64
                )));
            }
            dropped += 1;
            q += frame_len;
        } else {
            q += 1;
        }
    }
    Ok(dropped)
}

// ---------------------------------------------------------------------------
// The writer thread

struct Writer {
    inner: Arc<Inner>,
    file: File,
    /// Held for the writer's lifetime.
    _lock: File,
    next_revision: u64,
    end: u64,
    buf: Vec<u8>,
    fatal: Option<SequencerError>,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<AppendReq>) {
        let mut group: Vec<AppendReq> = Vec::new();
        let mut carry: Option<AppendReq> = None;
        loop {
            let first = match carry.take() {
                Some(req) => req,
                None => match rx.blocking_recv() {
                    Some(req) => req,
                    None => return,
                },
            };
            if let Some(fatal) = &self.fatal {
                let _ = first.reply.send(Err(AppendError::Failed(fatal.clone())));
                continue;
            }
            let mut bytes = FRAME_HEADER_LEN + first.record.len();
            group.push(first);
            while group.len() < MAX_GROUP_RECORDS {
                match rx.try_recv() {
                    Ok(req) => {
                        let n = FRAME_HEADER_LEN + req.record.len();
                        if bytes + n > MAX_GROUP_BYTES {
                            carry = Some(req);
                            break;
                        }
                        bytes += n;
                        group.push(req);
                    }
                    Err(_) => break,
                }
            }
            self.commit(&mut group);
        }
    }

    fn commit(&mut self, group: &mut Vec<AppendReq>) {
        let path = self.inner.path.clone();
        self.buf.clear();
        for (i, req) in group.iter().enumerate() {
            encode_frame(
                &mut self.buf,
                self.next_revision + i as u64,
                i as u32,
                &req.record,
            );
        }
        if let Err(e) = self.write_buf() {
            match self.roll_back() {
                Ok(()) => {
                    tracing::warn!(path = %path.display(), error = %e, records = group.len(),
                        "sequencer log: write failed; rolled back, the appends failed");
                    let err = SequencerError::io(format!("writing to {}", path.display()), e);
                    for req in group.drain(..) {
                        let _ = req.reply.send(Err(AppendError::Failed(err.clone())));
                    }
                }
                Err(e2) => self.turn_fatal(
                    format!(
                        "writing to {} failed ({e}) and truncating the partial write failed too ({e2}); \
                         restart to recover the log",
                        path.display()
                    ),
                    group,
                ),
            }
            return;
        }
        if let Err(e) = self.sync() {
            self.turn_fatal(
                format!(
                    "fdatasync of {} failed ({e}): the last write group may or may not be on disk; \
                     restart to recover the log and learn which",
                    path.display()
                ),
                group,
            );
            return;
        }
        self.inner.fsyncs.fetch_add(1, Ordering::Relaxed);

        let first_revision = self.next_revision;
        let mut offset = self.end;
        {
            let mut state = lock(&self.inner.state);
            for (i, req) in group.iter().enumerate() {
                let revision = first_revision + i as u64;
                if (revision - self.inner.first_revision) % INDEX_STRIDE == 0 {
                    state.index.push(offset);
                }
                state.push_recent(Recent {
                    revision,
                    offset,
                    payload: req.record.clone(),
                });
                offset += (FRAME_HEADER_LEN + req.record.len()) as u64;
            }
        }
        let last = first_revision + group.len() as u64 - 1;
        self.next_revision = last + 1;
        self.end = offset;
        self.inner.status.send_modify(|s| {
            s.revision = last;
            s.end = offset;
        });
        for (i, req) in group.drain(..).enumerate() {
            let _ = req.reply.send(Ok(first_revision + i as u64));
        }
    }

    fn write_buf(&mut self) -> io::Result<()> {
        #[cfg(test)]
        if self
            .inner
            .hooks
            .fail_next_write
            .swap(false, Ordering::SeqCst)
        {
            let half = self.buf.len() / 2;
            self.file.write_all(&self.buf[..half])?;
            return Err(io::Error::other("injected write failure"));
        }
        self.file.write_all(&self.buf)
    }

    fn sync(&mut self) -> io::Result<()> {
        #[cfg(test)]
        {
            let delay = self.inner.hooks.sync_delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                std::thread::sleep(std::time::Duration::from_millis(delay));
            }
            if self
                .inner
                .hooks
                .fail_next_sync
                .swap(false, Ordering::SeqCst)
            {
                return Err(io::Error::other("injected fsync failure"));
            }
        }
        self.file.sync_data()
    }

    /// Undoes a failed (possibly partial) write: truncate to the last durable
    /// end and make that truncation durable.
    fn roll_back(&mut self) -> io::Result<()> {
        self.file.set_len(self.end)?;
        self.file.seek(SeekFrom::Start(self.end))?;
        self.file.sync_all()
    }

    fn turn_fatal(&mut self, reason: String, group: &mut Vec<AppendReq>) {
        tracing::error!(path = %self.inner.path.display(), "sequencer log: {reason}");
        let err = SequencerError::Fatal { reason };
        self.fatal = Some(err.clone());
        self.inner
            .status
            .send_modify(|s| s.fatal = Some(err.clone()));
        for req in group.drain(..) {
            let _ = req.reply.send(Err(AppendError::Unknown(err.clone())));
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.inner.status.send_modify(|s| {
                if s.fatal.is_none() {
                    s.fatal = Some(SequencerError::Fatal {
                        reason: "the sequencer's writer thread panicked".into(),
                    });
                }
            });
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl State {
    fn push_recent(&mut self, recent: Recent) {
        self.recent_bytes += recent.payload.len();
        self.recent.push_back(recent);
        while self.recent_bytes > RECENT_MAX_BYTES || self.recent.len() > RECENT_MAX_RECORDS {
            match self.recent.pop_front() {
                Some(old) => self.recent_bytes -= old.payload.len(),
                None => break,
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Watchers

type Batch = Vec<(u64, u64, Bytes)>; // (revision, offset, payload)

async fn feed_watch(inner: Arc<Inner>, mut next: u64, tx: mpsc::Sender<WatchItem>) {
    let mut status_rx = inner.status.subscribe();
    // (revision, byte offset) of the next record, when known: saves an index
    // lookup and a skip when reading on from the file.
    let mut cursor: Option<(u64, u64)> = None;
    loop {
        let status = status_rx.borrow_and_update().clone();
        if next <= status.revision {
            let batch = match inner.recent_batch(next) {
                Some(batch) => batch,
                None => {
                    let (at_revision, offset) = match cursor {
                        Some((revision, offset)) if revision == next => (revision, offset),
                        _ => inner.index_lookup(next),
                    };
                    let reader = inner.clone();
                    let (upto, end) = (status.revision, status.end);
                    let read = tokio::task::spawn_blocking(move || {
                        reader.read_batch(at_revision, offset, next, upto, end)
                    })
                    .await;
                    match read {
                        Ok(Ok(batch)) => batch,
                        Ok(Err(e)) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                        Err(join) => {
                            let reason = format!("reading the sequencer log failed: {join}");
                            let _ = tx.send(Err(SequencerError::Fatal { reason })).await;
                            return;
                        }
                    }
                }
            };
            for (revision, offset, payload) in batch {
                let len = payload.len();
                if tx.send(Ok((revision, payload))).await.is_err() {
                    return;
                }
                next = revision + 1;
                cursor = Some((next, offset + (FRAME_HEADER_LEN + len) as u64));
            }
            continue;
        }
        if let Some(fatal) = status.fatal {
            let _ = tx.send(Err(fatal)).await;
            return;
        }
        if status.closed {
            let _ = tx.send(Err(SequencerError::Closed)).await;
            return;
        }
        tokio::select! {
            changed = status_rx.changed() => {
                if changed.is_err() {
                    let _ = tx.send(Err(SequencerError::Closed)).await;
                    return;
                }
            }
            _ = tx.closed() => return,
        }
    }
}

impl Inner {
    /// Up to `WATCH_BATCH` records from `next` on out of the in-memory cache,
    /// or `None` when `next` is older than the cache.
    fn recent_batch(&self, next: u64) -> Option<Batch> {
        let state = lock(&self.state);
        let front = state.recent.front()?.revision;
        if next < front {
            return None;
        }
        let skip = (next - front) as usize;
        if skip >= state.recent.len() {
            return None;
        }
        Some(
            state
                .recent
                .iter()
                .skip(skip)
                .take(WATCH_BATCH)
                .map(|r| (r.revision, r.offset, r.payload.clone()))
                .collect(),
        )
    }

    /// The indexed (revision, offset) at or before `revision`.
    fn index_lookup(&self, revision: u64) -> (u64, u64) {
        let k = (revision - self.first_revision) / INDEX_STRIDE;
        let state = lock(&self.state);
        // Every durable stride start is indexed before it is published.
        let offset = state.index[k as usize];
        (self.first_revision + k * INDEX_STRIDE, offset)
    }

    /// Reads records from the file, starting at `offset` (the frame of
    /// `revision`), returning those `>= from` and `<= upto`, up to about
    /// `READ_CHUNK` bytes or `WATCH_BATCH` records. `end` is the durable end:
    /// nothing at or past it is read. Every record is verified again.
    fn read_batch(
        &self,
        mut revision: u64,
        mut offset: u64,
        from: u64,
        upto: u64,
        end: u64,
    ) -> Result<Batch, SequencerError> {
        let corrupt = |offset: u64, revision: u64, detail: String| {
            SequencerError::Corrupt {
            path: self.path.clone(),
            offset,
            revision,
            kept: revision - self.first_revision,
            detail: format!("{detail} (found while reading a record it had verified when it opened the log: the file changed or the disk returns bad data)"),
        }
        };
        let mut out = Vec::new();
        let mut out_bytes = 0usize;
        let mut chunk: Vec<u8> = Vec::new();
        let mut chunk_start = offset;
        while revision <= upto && out.len() < WATCH_BATCH && out_bytes < READ_CHUNK {
            let header_end = offset + FRAME_HEADER_LEN as u64;
            if header_end > end {
                return Err(corrupt(
                    offset,
                    revision,
                    "record header runs past the durable end".into(),
                ));
            }
            if header_end > chunk_start + chunk.len() as u64 {
                self.fill(&mut chunk, &mut chunk_start, offset, FRAME_HEADER_LEN, end)?;
            }
            let at = (offset - chunk_start) as usize;
            let h = parse_frame_header(&chunk[at..at + FRAME_HEADER_LEN]);
            let len = h.len as usize;
            let frame_end = header_end + len as u64;
            if len > MAX_RECORD_BYTES || frame_end > end {
                return Err(corrupt(
                    offset,
                    revision,
                    format!("record length {len} is out of bounds"),
                ));
            }
            if frame_end > chunk_start + chunk.len() as u64 {
                self.fill(
                    &mut chunk,
                    &mut chunk_start,
                    offset,
                    FRAME_HEADER_LEN + len,
                    end,
                )?;
            }
            let at = (offset - chunk_start) as usize;
            let frame = &chunk[at..at + FRAME_HEADER_LEN + len];
            let payload = &frame[FRAME_HEADER_LEN..];
            let crc = crc32c::crc32c_append(frame_crc_start(frame), payload);
            if crc != h.crc {
                return Err(corrupt(
                    offset,
                    revision,
                    format!(
                        "checksum mismatch (stored {:08x}, computed {crc:08x})",
                        h.crc
                    ),
                ));
            }
            if h.revision != revision {
                return Err(corrupt(
                    offset,
                    revision,
                    format!("the record says revision {}", h.revision),
                ));
            }
            if revision >= from {
                out.push((revision, offset, Bytes::copy_from_slice(payload)));
                out_bytes += len;
            }
            offset = frame_end;
            revision += 1;
        }
        Ok(out)
    }

    /// Refills `chunk` with the file's bytes from `at`: at least `min` bytes,
    /// and up to `READ_CHUNK`, never past `end`.
    fn fill(
        &self,
        chunk: &mut Vec<u8>,
        chunk_start: &mut u64,
        at: u64,
        min: usize,
        end: u64,
    ) -> Result<(), SequencerError> {
        let n = (end - at).min(READ_CHUNK.max(min) as u64) as usize;
        chunk.resize(n, 0);
        read_exact_at(&self.reader, chunk, at)
            .map_err(|e| SequencerError::io(format!("reading {}", self.path.display()), e))?;
        *chunk_start = at;
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Tests

#[cfg(test)]
#[derive(Default)]
struct TestHooks {
    fail_next_write: std::sync::atomic::AtomicBool,
    fail_next_sync: std::sync::atomic::AtomicBool,
    sync_delay_ms: AtomicU64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::time::{Duration, Instant};

    fn rec(i: u64, len: usize) -> Bytes {
        let mut v = format!("record-{i}-").into_bytes();
        v.resize(len, (i % 251) as u8);
        Bytes::from(v)
    }

    fn payload(i: u64) -> Bytes {
        Bytes::from(format!(
            "commit number {i} {}",
            "x".repeat((i % 37) as usize)
        ))
    }

    async fn next_ok(w: &mut Watch) -> (u64, Bytes) {
        match tokio::time::timeout(Duration::from_secs(10), w.next()).await {
            Ok(Some(Ok(item))) => item,
            other => panic!("expected a record, got {other:?}"),
        }
    }

    async fn fill(seq: &EmbeddedSequencer, n: u64) {
        for i in 1..=n {
            assert_eq!(seq.append(payload(i)).await.unwrap(), i);
        }
    }

    /// Appends `n` records of `len` bytes to an empty log from 32 tasks at
    /// once (so they are group-committed, and quick); returns them in
    /// revision order, after checking the revisions are 1..=n.
    async fn fill_concurrently(seq: &Arc<EmbeddedSequencer>, n: u64, len: usize) -> Vec<Bytes> {
        let mut tasks = Vec::new();
        for t in 0..32 {
            let seq = seq.clone();
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::new();
                for i in (t..n).step_by(32) {
                    let record = rec(i, len);
                    out.push((seq.append(record.clone()).await.unwrap(), record));
                }
                out
            }));
        }
        let mut all = std::collections::BTreeMap::new();
        for task in tasks {
            for (revision, record) in task.await.unwrap() {
                assert!(all.insert(revision, record).is_none());
            }
        }
        assert!(all.keys().copied().eq(1..=n));
        all.into_values().collect()
    }

    fn log_len(dir: &Path) -> u64 {
        fs::metadata(dir.join(LOG_FILE)).unwrap().len()
    }

    /// Offsets of each record's frame, by scanning a clean log.
    fn frame_offsets(dir: &Path) -> Vec<u64> {
        let bytes = fs::read(dir.join(LOG_FILE)).unwrap();
        let mut pos = FILE_HEADER_LEN as usize;
        let mut out = Vec::new();
        while pos < bytes.len() {
            out.push(pos as u64);
            let h = parse_frame_header(&bytes[pos..pos + FRAME_HEADER_LEN]);
            pos += FRAME_HEADER_LEN + h.len as usize;
        }
        out
    }

    fn copy_log(from: &Path) -> tempfile::TempDir {
        let to = tempfile::tempdir().unwrap();
        fs::copy(from.join(LOG_FILE), to.path().join(LOG_FILE)).unwrap();
        to
    }

    fn flip_byte(dir: &Path, at: u64) {
        let path = dir.join(LOG_FILE);
        let mut bytes = fs::read(&path).unwrap();
        bytes[at as usize] ^= 0x40;
        fs::write(&path, bytes).unwrap();
    }

    fn open_err(dir: &Path) -> SequencerError {
        match EmbeddedSequencer::open(dir) {
            Ok(_) => panic!("the log opened, but it should have been refused"),
            Err(e) => e,
        }
    }

    #[tokio::test]
    async fn revisions_are_dense_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let seq = EmbeddedSequencer::open(dir.path()).unwrap();
        assert_eq!(seq.current_revision().await.unwrap(), 0);
        fill(&seq, 100).await;
        assert_eq!(seq.current_revision().await.unwrap(), 100);
        drop(seq);

        let seq = EmbeddedSequencer::open(dir.path()).unwrap();
        assert_eq!(
            seq.recovery(),
            &RecoveryReport {
                last_revision: 100,
                truncated_bytes: 0
            }
        );
        assert_eq!(seq.current_revision().await.unwrap(), 100);
        let mut w = seq.watch(1).await.unwrap();
        for i in 1..=100 {
            assert_eq!(next_ok(&mut w).await, (i, payload(i)));
        }
        assert_eq!(seq.append(payload(101)).await.unwrap(), 101);
        assert_eq!(next_ok(&mut w).await, (101, payload(101)));
        drop(w);
        drop(seq);
        let seq = EmbeddedSequencer::open(dir.path()).unwrap();
        assert_eq!(seq.current_revision().await.unwrap(), 101);
    }

    #[tokio::test]
    async fn empty_large_and_oversized_records() {
        let dir = tempfile::tempdir().unwrap();
        let seq = EmbeddedSequencer::open(dir.path()).unwrap();
        let big = rec(7, 3 << 20);
        assert_eq!(seq.append(Bytes::new()).await.unwrap(), 1);
        assert_eq!(seq.append(big.clone()).await.unwrap(), 2);
        let too_big = Bytes::from(vec![0u8; MAX_RECORD_BYTES + 1]);
        match seq.append(too_big).await {
            Err(AppendError::Failed(SequencerError::RecordTooLarge { size, max })) => {
                assert_eq!((size, max), (MAX_RECORD_BYTES + 1, MAX_RECORD_BYTES));
            }
            other => panic!("expected RecordTooLarge, got {other:?}"),
        }
        assert_eq!(seq.append(Bytes::from_static(b"after")).await.unwrap(), 3);
        drop(seq);
        let seq = EmbeddedSequencer::open(dir.path()).unwrap();
        let mut w = seq.watch(0).await.unwrap();
        assert_eq!(next_ok(&mut w).await, (1, Bytes::new()));
        assert_eq!(next_ok(&mut w).await, (2, big));
        assert_eq!(next_ok(&mut w).await, (3, Bytes::from_static(b"after")));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_are_group_committed() {
        let dir = tempfile::tempdir().unwrap();
        let seq = Arc::new(EmbeddedSequencer::open(dir.path()).unwrap());
        // A slow disk, so that the groups do not depend on how fast this one is.
        seq.inner.hooks.sync_delay_ms.store(2, Ordering::SeqCst);
        let (tasks, per_task) = (64u64, 20u64);
        let mut handles = Vec::new();
        for t in 0..tasks {
            let seq = seq.clone();
            handles.push(tokio::spawn(async move {
                let mut revs = Vec::new();
                for i in 0..per_task {
                    revs.push(seq.append(rec(t * 1000 + i, 1024)).await.unwrap());
                }
                revs
            }));
        }
        let mut all = BTreeSet::new();
        for h in handles {
            let revs = h.await.unwrap();
            assert!(
                revs.windows(2).all(|w| w[0] < w[1]),
                "one task's appends are ordered"
            );
            all.extend(revs);
        }
        let appends = tasks * per_task;
        assert_eq!(
            all,
            (1..=appends).collect::<BTreeSet<_>>(),
            "dense and unique"
        );
        let fsyncs = seq.fsync_count();
        println!("{appends} appends, {fsyncs} fsyncs");
        assert!(
            fsyncs * 8 <= appends,
            "{fsyncs} fsyncs for {appends} appends: not group-committed"
        );
        // Replays in order with the right payloads.
        let mut w = seq.watch(1).await.unwrap();
        let mut seen = 0;
        while seen < appends {
            let (rev, p) = next_ok(&mut w).await;
            seen += 1;
            assert_eq!(rev, seen);
            assert_eq!(p.len(), 1024);
        }
    }

    #[tokio::test]
    async fn watch_from_start_replays_then_follows() {
        let dir = tempfile::tempdir().unwrap();
        let seq = Arc::new(EmbeddedSequencer::open(dir.path()).unwrap());
        fill(&seq, 10).await;
        let mut w = seq.watch(1).await.unwrap();
        for i in 1..=10 {
            assert_eq!(next_ok(&mut w).await, (i, payload(i)));
        }
        // Nothing more yet.
        assert!(tokio::time::timeout(Duration::from_millis(50), w.next())
            .await
            .is_err());
        let appender = {
            let seq = seq.clone();
            tokio::spawn(async move {
                for i in 11..=20 {
                    assert_eq!(seq.append(payload(i)).await.unwrap(), i);
                }
            })
        };
        for i in 11..=20 {
            assert_eq!(next_ok(&mut w).await, (i, payload(i)));
        }
        appender.await.unwrap();
        // A watch on an empty log waits for the first record.
        let dir2 = tempfile::tempdir().unwrap();
        let empty = EmbeddedSequencer::open(dir2.path()).unwrap();
        let mut w = empty.watch(1).await.unwrap();
        assert_eq!(empty.append(payload(1)).await.unwrap(), 1);
        assert_eq!(next_ok(&mut w).await, (1, payload(1)));
    }

    #[tokio::test]
    async fn watch_from_the_middle() {
        let dir = tempfile::tempdir().unwrap();
        let seq = EmbeddedSequencer::open(dir.path()).unwrap();
        fill(&seq, 300).await;
        // From the in-memory cache.
        let mut w = seq.watch(137).await.unwrap();
        for i in 137..=300 {
            assert_eq!(next_ok(&mut w).await, (i, payload(i)));
        }
        drop(w);
        drop(seq);
        // After a reopen the cache is empty: from the file, around index strides.
        let seq = EmbeddedSequencer::open(dir.path()).unwrap();
        for from in [1, 2, 63, 64, 65, 128, 129, 200, 299, 300] {
            let mut w = seq.watch(from).await.unwrap();
            for i in from..=300 {
                assert_eq!(next_ok(&mut w).await, (i, payload(i)), "watch from {from}");
            }
        }
        // From the future: waits for it.
        let mut w = seq.watch(302).await.unwrap();
        assert_eq!(seq.append(payload(301)).await.unwrap(), 301);
        assert!(tokio::time::timeout(Duration::from_millis(50), w.next())
            .await
            .is_err());
        assert_eq!(seq.append(payload(302)).await.unwrap(), 302);
        assert_eq!(next_ok(&mut w).await, (302, payload(302)));
    }

    #[tokio::test]
    async fn watch_replays_more_than_the_cache_holds() {
        let dir = tempfile::tempdir().unwrap();
        let seq = Arc::new(EmbeddedSequencer::open(dir.path()).unwrap());
        // 12 MiB: more than the recent cache, so the start comes from the file.
        let records = fill_concurrently(&seq, 3000, 4096).await;
        assert!(lock(&seq.inner.state).recent.front().unwrap().revision > 1);
        let mut w = seq.watch(1).await.unwrap();
        for (i, record) in records.iter().enumerate() {
            assert_eq!(next_ok(&mut w).await, (i as u64 + 1, record.clone()));
        }
    }

    #[tokio::test]
    async fn a_slow_watcher_does_not_block_appends() {
        let dir = tempfile::tempdir().unwrap();
        let seq = Arc::new(EmbeddedSequencer::open(dir.path()).unwrap());
        let mut w = seq.watch(1).await.unwrap();
        // Far more than the watch buffer, nobody reading.
        let records =
            tokio::time::timeout(Duration::from_secs(60), fill_concurrently(&seq, 3000, 100))
                .await
                .expect("appends blocked");
        for (i, record) in records.iter().enumerate() {
            assert_eq!(next_ok(&mut w).await, (i as u64 + 1, record.clone()));
        }
    }

    #[tokio::test]
    async fn a_watch_ends_with_closed_when_the_sequencer_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let seq = EmbeddedSequencer::open(dir.path()).unwrap();
        fill(&seq, 3).await;
        let mut w = seq.watch(1).await.unwrap();
        drop(seq);
        for i in 1..=3 {
            assert_eq!(next_ok(&mut w).await, (i, payload(i)));
        }
        assert!(matches!(w.next().await, Some(Err(SequencerError::Closed))));
        assert!(w.next().await.is_none());
    }

    #[tokio::test]
    async fn torn_tail_at_every_offset_of_the_last_record() {
        let src = tempfile::tempdir().unwrap();
        let seq = EmbeddedSequencer::open(src.path()).unwrap();
        fill(&seq, 4).await;
        assert_eq!(seq.append(rec(5, 70)).await.unwrap(), 5);
        drop(seq);
        let full = log_len(src.path());
        let last = *frame_offsets(src.path()).last().unwrap();
        for cut in last + 1..full {
            let dir = copy_log(src.path());
            let f = OpenOptions::new()
                .write(true)
                .open(dir.path().join(LOG_FILE))
                .unwrap();
            f.set_len(cut).unwrap();
            drop(f);
            let seq =
                EmbeddedSequencer::open(dir.path()).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
            assert_eq!(
                seq.recovery(),
                &RecoveryReport {
                    last_revision: 4,
                    truncated_bytes: cut - last
                },
                "cut at {cut}"
            );
            assert_eq!(seq.current_revision().await.unwrap(), 4);
            assert_eq!(log_len(dir.path()), last);
            // The log goes on cleanly from there.
            assert_eq!(seq.append(payload(5)).await.unwrap(), 5);
            drop(seq);
            let seq = EmbeddedSequencer::open(dir.path()).unwrap();
            assert_eq!(seq.recovery().truncated_bytes, 0);
            let mut w = seq.watch(4).await.unwrap();
            assert_eq!(next_ok(&mut w).await, (4, payload(4)));
            assert_eq!(next_ok(&mut w).await, (5, payload(5)));
        }
    }

    #[tokio::test]
    async fn zero_filled_and_checksum_failing_tails_are_truncated() {
        let src = tempfile::tempdir().unwrap();
        let seq = EmbeddedSequencer::open(src.path()).unwrap();
        fill(&seq, 5).await;
        drop(seq);
        let full = log_len(src.path());
        let last = *frame_offsets(src.path()).last().unwrap();

        // Zeros after the last record (file size grew, data never made it).
        let dir = copy_log(src.path());
        let mut bytes = fs::read(dir.path().join(LOG_FILE)).unwrap();
        bytes.extend(std::iter::repeat_n(0u8, 8192));
        fs::write(dir.path().join(LOG_FILE), &bytes).unwrap();
        let seq = EmbeddedSequencer::open(dir.path()).unwrap();
        assert_eq!(
            seq.recovery(),
            &RecoveryReport {
                last_revision: 5,
                truncated_bytes: 8192
            }
        );
        drop(seq);

        // The last record's bytes zeroed (its page never written).
        let dir = copy_log(src.path());
        let mut bytes = fs::read(dir.path().join(LOG_FILE)).unwrap();
        bytes[last as usize..].fill(0);
        fs::write(dir.path().join(LOG_FILE), &bytes).unwrap();
        let seq = EmbeddedSequencer::open(dir.path()).unwrap();
        assert_eq!(
            seq.recovery(),
            &RecoveryReport {
                last_revision: 4,
                truncated_bytes: full - last
            }
        );
        drop(seq);

        // A checksum failure in the last record.
        for at in [last + 2, last + 10, full - 1] {
            let dir = copy_log(src.path());
            flip_byte(dir.path(), at);
            let seq = EmbeddedSequencer::open(dir.path()).unwrap();
            assert_eq!(
                seq.recovery(),
                &RecoveryReport {
                    last_revision: 4,
                    truncated_bytes: full - last
                },
                "flip at {at}"
            );
        }
    }

    /// A torn group can leave later records of the same group intact after a
    /// damaged one (pages reach the disk in any order): still a torn tail.
    #[tokio::test]
    async fn a_torn_last_group_with_surviving_later_records_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let seq = EmbeddedSequencer::open(dir.path()).unwrap();
        fill(&seq, 4).await;
        drop(seq);
        let path = dir.path().join(LOG_FILE);
        let mut bytes = fs::read(&path).unwrap();
        let good = bytes.len() as u64;
        // Group of revisions 5, 6, 7; 5's page lost (zeros).
        let mut group = Vec::new();
        for (i, rev) in (5..=7).enumerate() {
            encode_frame(&mut group, rev, i as u32, &payload(rev));
        }
        let first_len = FRAME_HEADER_LEN + payload(5).len();
        group[..first_len].fill(0);
        bytes.extend_from_slice(&group);
        fs::write(&path, &bytes).unwrap();
        let seq = EmbeddedSequencer::open(dir.path()).unwrap();
        assert_eq!(
            seq.recovery(),
            &RecoveryReport {
                last_revision: 4,
                truncated_bytes: group.len() as u64
            }
        );
        assert_eq!(log_len(dir.path()), good);
    }

    #[tokio::test]
    async fn damage_before_valid_records_refuses_to_open() {
        let src = tempfile::tempdir().unwrap();
        let seq = EmbeddedSequencer::open(src.path()).unwrap();
        fill(&seq, 5).await;
        drop(seq);
        let offsets = frame_offsets(src.path());
        let second = offsets[1];
        // (what to flip, what the message must say)
        let cases = [
            (second + FRAME_HEADER_LEN as u64 + 3, "checksum mismatch"), // payload
            (second + 4, "checksum mismatch"),                           // stored crc
            (second, "checksum mismatch"),                               // length (low byte)
            (second + 3, "exceeds the maximum"),                         // length (high byte)
            (second + 9, "checksum mismatch"),                           // revision
        ];
        for (at, what) in cases {
            let dir = copy_log(src.path());
            let before = fs::read(dir.path().join(LOG_FILE)).unwrap();
            flip_byte(dir.path(), at);
            let err = open_err(dir.path());
            let msg = err.to_string();
            match &err {
                SequencerError::Corrupt {
                    offset,
                    revision,
                    kept,
                    ..
                } => {
                    assert_eq!((*offset, *revision, *kept), (second, 2, 1), "{msg}");
                }
                other => panic!("flip at {at}: expected Corrupt, got {other:?}"),
            }
            let path = dir.path().join(LOG_FILE);
            for needle in [
                path.display().to_string(),
                format!("byte {second}"),
                "revision) 2".to_string(),
                what.to_string(),
                "later write group".to_string(),
                "restore".to_string(),
                format!("truncate it to {second} bytes"),
                "move it aside".to_string(),
            ] {
                assert!(
                    msg.contains(&needle),
                    "flip at {at}: {needle:?} missing from: {msg}"
                );
            }
            // Refusing does not touch the file.
            let mut damaged = before.clone();
            damaged[at as usize] ^= 0x40;
            assert_eq!(fs::read(&path).unwrap(), damaged);
        }
    }

    #[tokio::test]
    async fn a_bad_header_refuses_to_open() {
        let src = tempfile::tempdir().unwrap();
        let seq = EmbeddedSequencer::open(src.path()).unwrap();
        fill(&seq, 2).await;
        drop(seq);
        let header = |dir: &Path, f: &dyn Fn(&mut Vec<u8>)| {
            let path = dir.join(LOG_FILE);
            let mut b = fs::read(&path).unwrap();
            f(&mut b);
            fs::write(&path, b).unwrap();
        };
        let reseal = |b: &mut Vec<u8>| {
            let crc = crc32c::crc32c(&b[0..28]);
            b[28..32].copy_from_slice(&crc.to_le_bytes());
        };
        type Damage = Box<dyn Fn(&mut Vec<u8>)>;
        let cases: Vec<(&str, Damage)> = vec![
            ("not the magic", Box::new(|b| b[0] = b'X')),
            ("header checksum mismatch", Box::new(|b| b[17] ^= 1)),
            (
                "format version 2",
                Box::new(move |b| {
                    b[8] = 2;
                    reseal(b)
                }),
            ),
            (
                "unknown flags",
                Box::new(move |b| {
                    b[12] = 1;
                    reseal(b)
                }),
            ),
            (
                "shorter than the 32-byte header",
                Box::new(|b| b.truncate(20)),
            ),
            ("shorter than the 32-byte header", Box::new(|b| b.clear())),
        ];
        for (what, damage) in cases {
            let dir = copy_log(src.path());
            header(dir.path(), &*damage);
            let err = open_err(dir.path());
            assert!(
                matches!(err, SequencerError::CorruptHeader { .. }),
                "{what}: {err:?}"
            );
            let msg = err.to_string();
            assert!(msg.contains(what), "{what:?} missing from: {msg}");
            assert!(
                msg.contains(&dir.path().join(LOG_FILE).display().to_string()),
                "{msg}"
            );
            assert!(msg.contains("move it aside"), "{msg}");
        }
    }

    #[tokio::test]
    async fn a_second_open_of_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let seq = EmbeddedSequencer::open(dir.path()).unwrap();
        assert!(matches!(
            open_err(dir.path()),
            SequencerError::Locked { .. }
        ));
        drop(seq);
        EmbeddedSequencer::open(dir.path()).unwrap();
    }

    #[tokio::test]
    async fn a_failed_fsync_is_unknown_then_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let seq = EmbeddedSequencer::open(dir.path()).unwrap();
        fill(&seq, 3).await;
        let mut w = seq.watch(1).await.unwrap();
        seq.inner.hooks.fail_next_sync.store(true, Ordering::SeqCst);
        match seq.append(payload(4)).await {
            Err(AppendError::Unknown(SequencerError::Fatal { reason })) => {
                assert!(reason.contains("fdatasync"), "{reason}")
            }
            other => panic!("expected Unknown(Fatal), got {other:?}"),
        }
        assert!(matches!(
            seq.append(payload(5)).await,
            Err(AppendError::Failed(SequencerError::Fatal { .. }))
        ));
        assert!(matches!(
            seq.current_revision().await,
            Err(SequencerError::Fatal { .. })
        ));
        assert!(matches!(
            seq.watch(1).await,
            Err(SequencerError::Fatal { .. })
        ));
        // The existing watch delivers what was durable, then the error.
        for i in 1..=3 {
            assert_eq!(next_ok(&mut w).await, (i, payload(i)));
        }
        assert!(matches!(
            w.next().await,
            Some(Err(SequencerError::Fatal { .. }))
        ));
        assert!(w.next().await.is_none());
        drop(seq);
        // Reopening tells the outcome: here the write had reached the file.
        let seq = EmbeddedSequencer::open(dir.path()).unwrap();
        assert_eq!(seq.current_revision().await.unwrap(), 4);
        assert_eq!(seq.append(payload(5)).await.unwrap(), 5);
    }

    #[tokio::test]
    async fn a_failed_write_is_rolled_back_and_failed() {
        let dir = tempfile::tempdir().unwrap();
        let seq = EmbeddedSequencer::open(dir.path()).unwrap();
        fill(&seq, 3).await;
        let len = log_len(dir.path());
        seq.inner
            .hooks
            .fail_next_write
            .store(true, Ordering::SeqCst);
        assert!(matches!(
            seq.append(payload(99)).await,
            Err(AppendError::Failed(SequencerError::Io { .. }))
        ));
        assert_eq!(log_len(dir.path()), len);
        // Not fatal: the next append takes the revision.
        assert_eq!(seq.append(payload(4)).await.unwrap(), 4);
        drop(seq);
        let seq = EmbeddedSequencer::open(dir.path()).unwrap();
        assert_eq!(seq.recovery().truncated_bytes, 0);
        let mut w = seq.watch(1).await.unwrap();
        for i in 1..=4 {
            assert_eq!(next_ok(&mut w).await, (i, payload(i)));
        }
    }

    #[tokio::test]
    async fn works_through_the_trait_and_arc() {
        async fn generic<S: Sequencer>(s: &S) -> u64 {
            s.append(Bytes::from_static(b"x")).await.unwrap();
            s.current_revision().await.unwrap()
        }
        let dir = tempfile::tempdir().unwrap();
        let seq = Arc::new(EmbeddedSequencer::open(dir.path()).unwrap());
        assert_eq!(generic(&seq).await, 1);
        let s2 = seq.clone();
        assert_eq!(
            tokio::spawn(async move { generic(&s2).await })
                .await
                .unwrap(),
            2
        );
    }

    /// `cargo test -p strata-runtime --release sequencer_throughput -- --ignored --nocapture`
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore]
    async fn sequencer_throughput_1kib_64_appenders() {
        let dir = tempfile::tempdir_in(
            std::env::var_os("SEQ_BENCH_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir),
        )
        .unwrap();
        let seq = Arc::new(EmbeddedSequencer::open(dir.path()).unwrap());
        let record = Bytes::from(vec![0xabu8; 1024]);
        let duration = Duration::from_secs(5);
        let start = Instant::now();
        let mut handles = Vec::new();
        for _ in 0..64 {
            let (seq, record) = (seq.clone(), record.clone());
            handles.push(tokio::spawn(async move {
                let mut n = 0u64;
                let mut lat = Vec::new();
                while start.elapsed() < duration {
                    let t = Instant::now();
                    seq.append(record.clone()).await.unwrap();
                    lat.push(t.elapsed());
                    n += 1;
                }
                (n, lat)
            }));
        }
        let mut total = 0;
        let mut lat = Vec::new();
        for h in handles {
            let (n, l) = h.await.unwrap();
            total += n;
            lat.extend(l);
        }
        let secs = start.elapsed().as_secs_f64();
        lat.sort();
        let fsyncs = seq.fsync_count();
        println!(
            "embedded sequencer, 1 KiB records, 64 appenders, {} : {total} appends in {secs:.2}s = {:.0} appends/s; \
             {fsyncs} fsyncs = {:.4} fsyncs/append ({:.1} appends per group); latency p50 {:?} p99 {:?}",
            dir.path().display(),
            total as f64 / secs,
            fsyncs as f64 / total as f64,
            total as f64 / fsyncs as f64,
            lat[lat.len() / 2],
            lat[lat.len() * 99 / 100],
        );
    }
}
