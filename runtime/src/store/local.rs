//! The local-directory object store (`file://`). Objects are records in
//! append-only segment files (`segments.rs`: one `fdatasync` per object, no
//! file created per object); an object is durable before its put returns,
//! and so before the commit naming it is appended. Nobody reads an object
//! before its commit is applied, so a crash mid-write leaves a record that no
//! commit names (garbage), and nothing acknowledged. Objects are immutable,
//! so only create-only puts are served; overwrites, multipart uploads and
//! copies are `NotImplemented`.
//!
//! Directories written before segments (a file per object, at `<root>/<key>`)
//! are still read, listed and deleted; new objects all go to segments.
//!
//! Reads read the range into a buffer that is not zeroed first. Only the
//! objects written last (`--page-cache-bytes`) keep their pages in the OS page
//! cache; see [`PageCacheWindow`]. All file IO runs on tokio's blocking pool.

mod segment_record;
mod segments;

use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

use segments::{Located, SegmentLog, SEGMENTS_DIR};

/// The name this store gives itself in `object_store` errors.
const STORE: &str = "LocalDirStore";

/// Objects in segment files under a root directory.
#[derive(Debug, Clone)]
pub struct LocalDirStore {
    root: Arc<PathBuf>,
    url: String,
    segments: Arc<SegmentLog>,
    window: Arc<PageCacheWindow>,
}

/// The objects written last, up to a byte limit, whose pages are left in the
/// OS page cache; the pages of every other object are dropped once written
/// or read.
///
/// Objects are written once and read back rarely: the broker serves its
/// recent objects from memory and older ones through its block cache, so
/// beyond a window for consumers catching up, a page-cache copy of them is
/// a second copy of what the broker holds, or of nothing anyone reads soon.
/// Dropping the pages leaves the page cache to everything else, and hands the
/// pages straight to the next write or read, which is much cheaper than taking
/// never-used ones (by far on a virtual machine whose host backs memory lazily).
#[derive(Debug)]
struct PageCacheWindow {
    limit: u64,
    state: Mutex<WindowState>,
}

/// A byte range of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileRange {
    path: PathBuf,
    at: u64,
    len: u64,
}

#[derive(Debug, Default)]
struct WindowState {
    order: VecDeque<(String, FileRange)>,
    members: HashSet<String>,
    bytes: u64,
}

impl PageCacheWindow {
    /// Admits an object just written; returns the ranges whose pages to drop
    /// now (those that fell out of the window, or this one if it does not fit).
    fn admit(&self, key: &str, range: FileRange) -> Vec<FileRange> {
        if range.len > self.limit {
            return vec![range];
        }
        let mut st = self.state.lock().expect("page cache window lock");
        st.bytes += range.len;
        st.order.push_back((key.to_owned(), range));
        st.members.insert(key.to_owned());
        let mut out = Vec::new();
        while st.bytes > self.limit {
            let Some((k, r)) = st.order.pop_front() else { break };
            st.bytes -= r.len;
            st.members.remove(&k);
            out.push(r);
        }
        out
    }

    fn contains(&self, key: &str) -> bool {
        self.limit > 0 && self.state.lock().expect("page cache window lock").members.contains(key)
    }
}

/// Asks the OS to drop the cached pages of `len` bytes of `file` at `at`
/// (all of it for `len` 0): clean pages, synced or only read. Best effort.
fn drop_cached(file: &File, at: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let (Ok(at), Ok(len)) = (libc::off_t::try_from(at), libc::off_t::try_from(len)) else { return };
        // SAFETY: posix_fadvise only takes integers; the descriptor is open for the call.
        unsafe {
            libc::posix_fadvise(file.as_raw_fd(), at, len, libc::POSIX_FADV_DONTNEED);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, at, len);
}

/// What a file operation failed with, for the key it was on.
#[derive(Debug, thiserror::Error)]
enum LocalError {
    /// The key would leave the root, or is not a file name.
    #[error("bad object key {0:?}")]
    BadKey(String),
    /// No object at the key.
    #[error("object {0} not found")]
    NotFound(String),
    /// A create-only put found an object there.
    #[error("object {0} already exists")]
    AlreadyExists(String),
    /// The range asked for does not fit this machine's memory addressing.
    #[error("object {key}: range {start}..{end} too large")]
    TooLarge { key: String, start: u64, end: u64 },
    /// An I/O error, and what was being done.
    #[error("object {key}: {what}: {source}")]
    Io {
        key: String,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The blocking task did not finish.
    #[error("object {key}: {what} task failed: {reason}")]
    Task { key: String, what: &'static str, reason: String },
}

impl From<LocalError> for object_store::Error {
    fn from(e: LocalError) -> Self {
        match e {
            LocalError::NotFound(ref path) => object_store::Error::NotFound { path: path.clone(), source: Box::new(e) },
            LocalError::AlreadyExists(ref path) => {
                object_store::Error::AlreadyExists { path: path.clone(), source: Box::new(e) }
            }
            other => object_store::Error::Generic { store: STORE, source: Box::new(other) },
        }
    }
}

fn io_error(key: &str, what: &'static str, source: std::io::Error) -> LocalError {
    LocalError::Io { key: key.into(), what, source }
}

fn not_implemented(operation: &str) -> object_store::Error {
    object_store::Error::NotImplemented {
        operation: format!("{operation} (objects are immutable: only create-only puts)"),
        implementer: STORE.into(),
    }
}

/// Runs `f` on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    key: &str,
    what: &'static str,
    f: impl FnOnce() -> Result<T, LocalError> + Send + 'static,
) -> Result<T, LocalError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| LocalError::Task { key: key.into(), what, reason: e.to_string() })?
}

impl LocalDirStore {
    /// The store rooted at `root`, an existing absolute directory (its
    /// segments indexed), that leaves the last `page_cache_bytes` of objects
    /// it wrote in the OS page cache.
    pub fn open(root: PathBuf, page_cache_bytes: u64) -> std::io::Result<Self> {
        let segments = SegmentLog::open(&root).map_err(std::io::Error::other)?;
        let url = format!("file://{}", root.display());
        let window = PageCacheWindow { limit: page_cache_bytes, state: Mutex::default() };
        Ok(LocalDirStore { root: Arc::new(root), url, segments: Arc::new(segments), window: Arc::new(window) })
    }

    /// `file://<root>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The file an object written before segments has, refusing keys that
    /// would leave the root or enter the segments' folder.
    fn path(&self, key: &str) -> Result<PathBuf, LocalError> {
        let bad = || LocalError::BadKey(key.into());
        if key.contains('\0') || key.contains('\\') {
            return Err(bad());
        }
        if key.split('/').any(|s| s.is_empty() || s == "." || s == "..") || key.split('/').next() == Some(SEGMENTS_DIR) {
            return Err(bad());
        }
        let rel = Path::new(key);
        if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(bad());
        }
        Ok(self.root.join(rel))
    }
}

/// Syncs a directory, so that entries added to or removed from it are durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` and its missing ancestors below `root`, syncing each new
/// directory and the parent that got the first new entry.
fn create_dirs_durably(root: &Path, dir: &Path) -> std::io::Result<()> {
    let mut first_existing = dir;
    while !first_existing.exists() {
        match first_existing.parent() {
            Some(p) if p.starts_with(root) => first_existing = p,
            _ => break,
        }
    }
    std::fs::create_dir_all(dir)?;
    let mut d = dir;
    loop {
        sync_dir(d)?;
        if d == first_existing {
            return Ok(());
        }
        match d.parent() {
            Some(p) => d = p,
            None => return Ok(()),
        }
    }
}

fn now_ms() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

fn meta_at(location: &ObjectPath, size: u64, written_ms: u64) -> ObjectMeta {
    let ms = i64::try_from(written_ms).unwrap_or(i64::MAX);
    let last_modified = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
    ObjectMeta { location: location.clone(), last_modified, size, e_tag: None, version: None }
}

fn meta_of(location: &ObjectPath, md: &std::fs::Metadata) -> ObjectMeta {
    // Every Unix filesystem we run on keeps mtimes; the epoch stands in otherwise.
    let last_modified = md.modified().map(DateTime::<Utc>::from).unwrap_or_default();
    ObjectMeta { location: location.clone(), last_modified, size: md.len(), e_tag: None, version: None }
}

/// The byte range `options` asks for of an object of `size` bytes.
fn range_of(options: &GetOptions, size: u64) -> object_store::Result<std::ops::Range<u64>> {
    match &options.range {
        Some(r) => r.as_range(size).map_err(|e| object_store::Error::Generic { store: STORE, source: Box::new(e) }),
        None => Ok(0..size),
    }
}

/// A buffer of `range.end - range.start` bytes, or the error for a range too large.
fn buffer_for(key: &str, range: &std::ops::Range<u64>) -> Result<Vec<u8>, LocalError> {
    let len = usize::try_from(range.end - range.start)
        .map_err(|_| LocalError::TooLarge { key: key.into(), start: range.start, end: range.end })?;
    Ok(Vec::with_capacity(len))
}

/// Reads the asked-for part of an object in a segment.
fn get_segment_blocking(
    found: &Located,
    location: &ObjectPath,
    options: &GetOptions,
    keep_cached: bool,
) -> object_store::Result<(ObjectMeta, std::ops::Range<u64>, Bytes)> {
    let key = location.as_ref();
    let meta = meta_at(location, found.len, found.written_ms);
    options.check_preconditions(&meta)?;
    let range = range_of(options, meta.size)?;
    if options.head {
        return Ok((meta, range, Bytes::new()));
    }
    let file = match File::open(&found.path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(LocalError::NotFound(key.into()).into()),
        Err(e) => return Err(io_error(key, "opening its segment", e).into()),
    };
    let mut buf = buffer_for(key, &range)?;
    let at = found.data_at + range.start;
    let len = range.end - range.start;
    (&file).seek(SeekFrom::Start(at)).map_err(|e| io_error(key, "seeking", e))?;
    // read_to_end fills the spare capacity without zeroing it first.
    (&file).take(len).read_to_end(&mut buf).map_err(|e| io_error(key, "reading", e))?;
    if !keep_cached {
        drop_cached(&file, at, len);
    }
    let got = range.start..range.start + buf.len() as u64;
    Ok((meta, got, Bytes::from(buf)))
}

/// Reads the asked-for part of an object written before segments, from its own file.
fn get_file_blocking(
    path: &Path,
    location: &ObjectPath,
    options: &GetOptions,
) -> object_store::Result<(ObjectMeta, std::ops::Range<u64>, Bytes)> {
    let key = location.as_ref();
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(LocalError::NotFound(key.into()).into()),
        Err(e) => return Err(io_error(key, "opening", e).into()),
    };
    let md = file.metadata().map_err(|e| io_error(key, "reading its metadata", e))?;
    let meta = meta_of(location, &md);
    options.check_preconditions(&meta)?;
    let range = range_of(options, meta.size)?;
    if options.head {
        return Ok((meta, range, Bytes::new()));
    }
    let mut buf = buffer_for(key, &range)?;
    file.seek(SeekFrom::Start(range.start)).map_err(|e| io_error(key, "seeking", e))?;
    (&mut file).take(range.end - range.start).read_to_end(&mut buf).map_err(|e| io_error(key, "reading", e))?;
    drop_cached(&file, 0, 0);
    // A file shorter than its metadata said (truncated meanwhile) gives a short
    // answer, which the caller sees by its length.
    let got = range.start..range.start + buf.len() as u64;
    Ok((meta, got, Bytes::from(buf)))
}

/// Every object file under `dir` (a directory below `root`) written before
/// segments, sorted by key.
fn list_files_blocking(root: &Path, dir: &Path) -> Result<Vec<ObjectMeta>, LocalError> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    let segments = root.join(SEGMENTS_DIR);
    while let Some(d) = todo.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => continue,
            Err(e) => return Err(io_error(&d.display().to_string(), "listing", e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| io_error(&d.display().to_string(), "listing", e))?;
            let path = entry.path();
            if path == segments {
                continue;
            }
            let md = match entry.metadata() {
                Ok(md) => md,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error(&path.display().to_string(), "listing", e)),
            };
            if md.is_dir() {
                todo.push(path);
                continue;
            }
            let key = path.strip_prefix(root).ok().and_then(|rel| rel.to_str()).and_then(|k| ObjectPath::parse(k).ok());
            if let Some(location) = key {
                out.push(meta_of(&location, &md));
            }
        }
    }
    Ok(out)
}

impl std::fmt::Display for LocalDirStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{STORE}({})", self.url)
    }
}

#[async_trait]
impl ObjectStore for LocalDirStore {
    async fn put_opts(&self, location: &ObjectPath, payload: PutPayload, opts: PutOptions) -> object_store::Result<PutResult> {
        if opts.mode != PutMode::Create {
            return Err(not_implemented("put_opts with a mode other than PutMode::Create"));
        }
        if !opts.attributes.is_empty() {
            return Err(not_implemented("put_opts with attributes"));
        }
        let key = location.to_string();
        let old_file = self.path(&key)?;
        let segments = self.segments.clone();
        let window = self.window.clone();
        blocking(&key.clone(), "object write", move || {
            if old_file.exists() {
                return Err(LocalError::AlreadyExists(key));
            }
            let parts: Vec<Bytes> = payload.iter().cloned().collect();
            let put = segments.put(&key, &parts, now_ms())?;
            let range = FileRange { path: put.path, at: put.data_at, len: put.len };
            // Ranges come in write order, so mostly from the same segment: open it once.
            let mut open: Option<(PathBuf, File)> = None;
            for old in window.admit(&key, range) {
                if open.as_ref().is_none_or(|(p, _)| *p != old.path) {
                    open = File::open(&old.path).ok().map(|f| (old.path.clone(), f));
                }
                if let Some((_, f)) = &open {
                    drop_cached(f, old.at, old.len);
                }
            }
            Ok(())
        })
        .await?;
        Ok(PutResult { e_tag: None, version: None, extensions: Default::default() })
    }

    async fn put_multipart_opts(
        &self,
        _location: &ObjectPath,
        _opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        Err(not_implemented("put_multipart_opts"))
    }

    async fn get_opts(&self, location: &ObjectPath, options: GetOptions) -> object_store::Result<GetResult> {
        let key = location.to_string();
        let old_file = self.path(&key)?;
        let keep_cached = self.window.contains(&key);
        let segments = self.segments.clone();
        let location = location.clone();
        let (meta, range, bytes) = tokio::task::spawn_blocking(move || {
            // A key neither indexed nor an old file may be another writer's
            // newest: only then read what other writers appended (`locate`).
            let found = match segments.lookup(location.as_ref()) {
                Some(found) => Some(found),
                None if old_file.exists() => None,
                None => segments.locate(location.as_ref())?,
            };
            match found {
                Some(found) => get_segment_blocking(&found, &location, &options, keep_cached),
                None => get_file_blocking(&old_file, &location, &options),
            }
        })
        .await
        .map_err(|e| LocalError::Task { key, what: "object read", reason: e.to_string() })??;
        let payload = futures_util::stream::once(futures_util::future::ready(Ok(bytes))).boxed();
        Ok(GetResult {
            payload: GetResultPayload::Stream(payload),
            meta,
            range,
            attributes: Default::default(),
            extensions: Default::default(),
        })
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<ObjectPath>>,
    ) -> BoxStream<'static, object_store::Result<ObjectPath>> {
        let store = self.clone();
        locations
            .and_then(move |location| {
                let store = store.clone();
                async move {
                    let key = location.to_string();
                    let old_file = store.path(&key)?;
                    let segments = store.segments.clone();
                    blocking(&key.clone(), "object delete", move || {
                        if segments.delete(&key)? {
                            return Ok(());
                        }
                        match std::fs::remove_file(&old_file) {
                            Err(e) if e.kind() != ErrorKind::NotFound => Err(io_error(&key, "deleting", e)),
                            _ => Ok(()),
                        }
                    })
                    .await?;
                    Ok(location)
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&ObjectPath>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let root = self.root.clone();
        let prefix = prefix.map(|p| p.to_string()).filter(|p| !p.is_empty());
        let dir = match &prefix {
            None => Ok(root.as_ref().clone()),
            Some(p) => self.path(p),
        };
        let segments = self.segments.clone();
        let listed = async move {
            let dir = dir?;
            let metas = blocking("(listing)", "list", move || {
                // object_store prefixes are whole path segments: "a/b" lists "a/b/...".
                let key_prefix = prefix.map(|p| format!("{p}/")).unwrap_or_default();
                let mut metas: Vec<ObjectMeta> = segments
                    .list(&key_prefix)?
                    .into_iter()
                    .filter_map(|(key, len, ms)| ObjectPath::parse(&key).ok().map(|loc| meta_at(&loc, len, ms)))
                    .collect();
                metas.extend(list_files_blocking(&root, &dir)?);
                metas.sort_by(|a, b| a.location.cmp(&b.location));
                Ok(metas)
            })
            .await?;
            Ok::<_, object_store::Error>(futures_util::stream::iter(metas.into_iter().map(Ok)))
        };
        futures_util::stream::once(listed).try_flatten().boxed()
    }

    async fn list_with_delimiter(&self, _prefix: Option<&ObjectPath>) -> object_store::Result<ListResult> {
        Err(not_implemented("list_with_delimiter"))
    }

    async fn copy_opts(&self, _from: &ObjectPath, _to: &ObjectPath, _options: CopyOptions) -> object_store::Result<()> {
        Err(not_implemented("copy_opts"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;

    fn p(key: &str) -> ObjectPath {
        ObjectPath::parse(key).unwrap()
    }

    #[tokio::test]
    async fn create_only_puts_ranged_reads_head_list_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDirStore::open(dir.path().to_owned(), 1 << 20).unwrap();
        let create = || PutOptions::from(PutMode::Create);
        store.put_opts(&p("objects/ab/o-1"), Bytes::from_static(b"hello world").into(), create()).await.unwrap();
        let again = store.put_opts(&p("objects/ab/o-1"), Bytes::from_static(b"x").into(), create()).await;
        assert!(matches!(again, Err(object_store::Error::AlreadyExists { .. })), "{again:?}");
        assert_eq!(&store.get_range(&p("objects/ab/o-1"), 6..11).await.unwrap()[..], b"world");
        // ObjectStore's ranges: an end past the object is cut to the object.
        assert_eq!(&store.get_range(&p("objects/ab/o-1"), 6..99).await.unwrap()[..], b"world");
        assert!(store.get_range(&p("objects/ab/o-1"), 11..12).await.is_err(), "starts at the end");
        assert_eq!(&store.get(&p("objects/ab/o-1")).await.unwrap().bytes().await.unwrap()[..], b"hello world");
        assert_eq!(store.head(&p("objects/ab/o-1")).await.unwrap().size, 11);
        assert!(matches!(store.get_range(&p("objects/ab/none"), 0..1).await, Err(object_store::Error::NotFound { .. })));
        // No file per object: only the segments' folder.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from(SEGMENTS_DIR)]);

        store.put_opts(&p("objects/cd/o-2"), Bytes::from_static(b"2").into(), create()).await.unwrap();
        store.put_opts(&p("snapshots/7"), Bytes::from_static(b"s").into(), create()).await.unwrap();
        let listed: Vec<_> = store.list(Some(&p("objects"))).map_ok(|m| (m.location.to_string(), m.size)).try_collect().await.unwrap();
        assert_eq!(listed, vec![("objects/ab/o-1".to_string(), 11), ("objects/cd/o-2".to_string(), 1)]);
        assert_eq!(store.list(None).try_collect::<Vec<_>>().await.unwrap().len(), 3);
        assert!(store.list(Some(&p("nothing/here"))).try_collect::<Vec<_>>().await.unwrap().is_empty());
        assert!(store.list(Some(&p("snapshots/7"))).try_collect::<Vec<_>>().await.unwrap().is_empty());
        store.delete(&p("objects/ab/o-1")).await.unwrap();
        store.delete(&p("objects/ab/o-1")).await.unwrap();
        assert!(matches!(store.head(&p("objects/ab/o-1")).await, Err(object_store::Error::NotFound { .. })));

        let overwrite = store.put(&p("objects/cd/o-2"), Bytes::from_static(b"x").into()).await;
        assert!(matches!(overwrite, Err(object_store::Error::NotImplemented { .. })), "{overwrite:?}");
        assert_eq!(&store.get(&p("objects/cd/o-2")).await.unwrap().bytes().await.unwrap()[..], b"2");

        // A reopened store has every object but the deleted one.
        drop(store);
        let store = LocalDirStore::open(dir.path().to_owned(), 1 << 20).unwrap();
        let listed: Vec<_> = store.list(None).map_ok(|m| m.location.to_string()).try_collect().await.unwrap();
        assert_eq!(listed, vec!["objects/cd/o-2".to_string(), "snapshots/7".to_string()]);
    }

    #[tokio::test]
    async fn objects_written_a_file_each_before_segments_are_still_served() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("objects/ab")).unwrap();
        std::fs::write(dir.path().join("objects/ab/old"), b"from before").unwrap();
        let store = LocalDirStore::open(dir.path().to_owned(), 1 << 20).unwrap();
        store.put_opts(&p("objects/ab/new"), Bytes::from_static(b"segment").into(), PutMode::Create.into()).await.unwrap();
        assert_eq!(&store.get_range(&p("objects/ab/old"), 5..11).await.unwrap()[..], b"before");
        let again = store.put_opts(&p("objects/ab/old"), Bytes::from_static(b"x").into(), PutMode::Create.into()).await;
        assert!(matches!(again, Err(object_store::Error::AlreadyExists { .. })), "{again:?}");
        let listed: Vec<_> = store.list(Some(&p("objects"))).map_ok(|m| (m.location.to_string(), m.size)).try_collect().await.unwrap();
        assert_eq!(listed, vec![("objects/ab/new".to_string(), 7), ("objects/ab/old".to_string(), 11)]);
        store.delete(&p("objects/ab/old")).await.unwrap();
        assert!(!dir.path().join("objects/ab/old").exists());
        assert!(matches!(store.head(&p("objects/ab/old")).await, Err(object_store::Error::NotFound { .. })));
    }

    #[test]
    fn the_page_cache_window_drops_the_oldest_ranges_past_its_limit() {
        let w = PageCacheWindow { limit: 100, state: Mutex::default() };
        let r = |at: u64, len: u64| FileRange { path: PathBuf::from("seg"), at, len };
        assert!(w.admit("a", r(0, 60)).is_empty());
        assert!(w.admit("b", r(60, 40)).is_empty());
        assert_eq!(w.admit("c", r(100, 30)), vec![r(0, 60)]);
        assert!(!w.contains("a") && w.contains("b") && w.contains("c"));
        // An object larger than the window is dropped at once and not admitted.
        assert_eq!(w.admit("big", r(130, 101)), vec![r(130, 101)]);
        assert!(!w.contains("big") && w.contains("b"));
        let off = PageCacheWindow { limit: 0, state: Mutex::default() };
        assert_eq!(off.admit("a", r(0, 1)), vec![r(0, 1)]);
        assert!(!off.contains("a"));
    }

    #[tokio::test]
    async fn an_object_put_in_many_pieces_is_written_whole_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDirStore::open(dir.path().to_owned(), 1 << 20).unwrap();
        // More pieces than one vectored write takes, some empty, of many sizes.
        let pieces: Vec<Bytes> = (0..300u32).map(|i| Bytes::from(vec![(i % 251) as u8; (i as usize * 37) % 1000])).collect();
        let want: Vec<u8> = pieces.iter().flat_map(|b| b.iter().copied()).collect();
        store.put_opts(&p("objects/ab/many"), PutPayload::from_iter(pieces), PutMode::Create.into()).await.unwrap();
        assert_eq!(store.get(&p("objects/ab/many")).await.unwrap().bytes().await.unwrap().to_vec(), want);
    }

    #[tokio::test]
    async fn keys_that_would_leave_the_root_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDirStore::open(dir.path().join("root"), 1 << 20).unwrap();
        for bad in ["", "/etc/passwd", "../x", "objects/../../x", "a//b", "a/./b", "a/", "a\\b", "segments/x.seg"] {
            assert!(matches!(store.path(bad), Err(LocalError::BadKey(_))), "{bad:?}");
        }
        // object_store's own paths escape such segments rather than follow them.
        let escaped = ObjectPath::from_iter(["..", "x"]);
        store.put_opts(&escaped, Bytes::from_static(b"x").into(), PutMode::Create.into()).await.unwrap();
        assert!(!dir.path().join("x").exists());
    }
}
