//! The local-directory object store (`file://`): one file per object, at
//! `<root>/<key>`, written with exactly the syncs that make an object durable
//! before the commit naming it is appended — and no others.
//!
//! A create-only put is `open(O_CREAT | O_EXCL)` of the final path, one
//! `write` of the whole object, `fdatasync` of the file (its data and the size
//! needed to read it back), then `fsync` of its directory (the new entry). A
//! directory created on the way is synced along with its parent. Nobody reads
//! an object before its commit is applied, and the commit is appended only
//! after the put returns, so the object needs no staging file and no rename:
//! a crash mid-write leaves an object that no commit names (garbage). A put
//! that fails removes what it wrote. (`object_store`'s `LocalFileSystem`
//! stages, `fsync`s, hard-links, `fsync`s the directory and unlinks: one more
//! directory update per object, and full `fsync`s.)
//!
//! Reads open the file and read the range into a buffer that is not zeroed
//! first. Only the objects written last (`--page-cache-bytes`) keep their
//! pages in the OS page cache; see [`PageCacheWindow`]. All file IO runs on
//! tokio's blocking pool.

use std::collections::{HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::{ObjectStoreClient, StoreError, StoreFuture};

/// Objects as files under a root directory.
#[derive(Debug, Clone)]
pub struct LocalDirStore {
    root: Arc<PathBuf>,
    url: String,
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

#[derive(Debug, Default)]
struct WindowState {
    order: VecDeque<(PathBuf, u64)>,
    members: HashSet<PathBuf>,
    bytes: u64,
}

impl PageCacheWindow {
    /// Admits a file just written; returns the files whose pages to drop now
    /// (those that fell out of the window, or this one if it does not fit).
    fn admit(&self, path: &Path, len: u64) -> Vec<PathBuf> {
        if len > self.limit {
            return vec![path.to_owned()];
        }
        let mut st = self.state.lock().expect("page cache window lock");
        st.order.push_back((path.to_owned(), len));
        st.members.insert(path.to_owned());
        st.bytes += len;
        let mut out = Vec::new();
        while st.bytes > self.limit {
            let Some((p, l)) = st.order.pop_front() else { break };
            st.bytes -= l;
            st.members.remove(&p);
            out.push(p);
        }
        out
    }

    fn contains(&self, path: &Path) -> bool {
        self.limit > 0 && self.state.lock().expect("page cache window lock").members.contains(path)
    }
}

/// Asks the OS to drop the cached pages of `file` (clean pages: the file was
/// synced, or only read). Best effort.
fn drop_cached(file: &File) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: posix_fadvise only takes integers; the descriptor is open for the call.
        unsafe {
            libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

impl LocalDirStore {
    /// A store rooted at `root`, an existing absolute directory, that leaves
    /// the last `page_cache_bytes` of objects it wrote in the OS page cache.
    pub fn new(root: PathBuf, page_cache_bytes: u64) -> Self {
        let url = format!("file://{}", root.display());
        let window = PageCacheWindow { limit: page_cache_bytes, state: Mutex::default() };
        LocalDirStore { root: Arc::new(root), url, window: Arc::new(window) }
    }

    /// The file of `key`, refusing keys that would leave the root.
    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        let bad = || StoreError::Other(format!("bad object key {key:?}"));
        if key.contains('\0') || key.contains('\\') {
            return Err(bad());
        }
        if key.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
            return Err(bad());
        }
        let rel = Path::new(key);
        if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(bad());
        }
        Ok(self.root.join(rel))
    }
}

fn io_error(key: &str, what: &str, e: std::io::Error) -> StoreError {
    StoreError::Other(format!("object {key}: {what}: {e}"))
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

fn put_blocking(root: &Path, path: &Path, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().ok_or_else(|| StoreError::Other(format!("bad object key {key:?}")))?;
    let open = || OpenOptions::new().write(true).create_new(true).open(path);
    let mut file = match open() {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            create_dirs_durably(root, dir).map_err(|e| io_error(key, "creating its directory", e))?;
            open().map_err(|e| match e.kind() {
                ErrorKind::AlreadyExists => StoreError::AlreadyExists(key.into()),
                _ => io_error(key, "creating", e),
            })?
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return Err(StoreError::AlreadyExists(key.into())),
        Err(e) => return Err(io_error(key, "creating", e)),
    };
    let written = file
        .write_all(bytes)
        .map_err(|e| io_error(key, "writing", e))
        .and_then(|()| file.sync_data().map_err(|e| io_error(key, "syncing", e)));
    drop(file);
    if let Err(e) = written {
        // Nothing names it yet: take it away so that no half object stays behind.
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    sync_dir(dir).map_err(|e| {
        let _ = std::fs::remove_file(path);
        io_error(key, "syncing its directory", e)
    })
}

fn get_blocking(path: &Path, key: &str, range: Range<u64>, keep_cached: bool) -> Result<Bytes, StoreError> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(StoreError::NotFound(key.into())),
        Err(e) => return Err(io_error(key, "opening", e)),
    };
    let want = range.end - range.start;
    let len = usize::try_from(want).map_err(|_| StoreError::Other(format!("object {key}: range {range:?} too large")))?;
    file.seek(SeekFrom::Start(range.start)).map_err(|e| io_error(key, "seeking", e))?;
    // read_to_end fills the spare capacity without zeroing it first.
    let mut buf = Vec::with_capacity(len);
    (&mut file).take(want).read_to_end(&mut buf).map_err(|e| io_error(key, "reading", e))?;
    if !keep_cached {
        drop_cached(&file);
    }
    if buf.len() != len {
        return Err(StoreError::Other(format!(
            "object {key}: range {range:?} is beyond its end ({} bytes read)",
            buf.len()
        )));
    }
    Ok(Bytes::from(buf))
}

impl ObjectStoreClient for LocalDirStore {
    fn put_create(&self, key: &str, bytes: Bytes) -> StoreFuture<'_, ()> {
        let key = key.to_owned();
        Box::pin(async move {
            let path = self.path(&key)?;
            let root = self.root.clone();
            let window = self.window.clone();
            tokio::task::spawn_blocking(move || {
                put_blocking(&root, &path, &key, &bytes)?;
                for old in window.admit(&path, bytes.len() as u64) {
                    if let Ok(f) = File::open(&old) {
                        drop_cached(&f);
                    }
                }
                Ok(())
            })
            .await
                .map_err(|e| StoreError::Other(format!("object write task failed: {e}")))?
        })
    }

    fn get_range(&self, key: &str, range: Range<u64>) -> StoreFuture<'_, Bytes> {
        let key = key.to_owned();
        Box::pin(async move {
            let path = self.path(&key)?;
            if range.start >= range.end {
                return Ok(Bytes::new());
            }
            let keep_cached = self.window.contains(&path);
            tokio::task::spawn_blocking(move || get_blocking(&path, &key, range, keep_cached))
                .await
                .map_err(|e| StoreError::Other(format!("object read task failed: {e}")))?
        })
    }

    fn describe(&self) -> String {
        self.url.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn create_only_puts_ranged_reads_and_bad_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDirStore::new(dir.path().to_owned(), 1 << 20);
        store.put_create("objects/ab/o-1", Bytes::from_static(b"hello world")).await.unwrap();
        assert_eq!(
            store.put_create("objects/ab/o-1", Bytes::from_static(b"x")).await,
            Err(StoreError::AlreadyExists("objects/ab/o-1".into()))
        );
        assert_eq!(&store.get_range("objects/ab/o-1", 6..11).await.unwrap()[..], b"world");
        assert!(store.get_range("objects/ab/o-1", 6..12).await.is_err(), "past the end");
        assert!(matches!(store.get_range("objects/ab/none", 0..1).await, Err(StoreError::NotFound(_))));
        assert_eq!(std::fs::read(dir.path().join("objects/ab/o-1")).unwrap(), b"hello world");
        // Nothing but the object itself in its directory (no staging files left).
        let names: Vec<_> = std::fs::read_dir(dir.path().join("objects/ab")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("o-1")]);
        for bad in ["", "/etc/passwd", "../x", "objects/../../x", "a//b", "a/./b", "a/", "a\\b"] {
            assert!(store.put_create(bad, Bytes::from_static(b"x")).await.is_err(), "{bad:?}");
        }
    }
}
