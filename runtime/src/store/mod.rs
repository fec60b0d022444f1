//! The object store: where record data lives (DESIGN.md, "Object layout").
//!
//! The seam is the `object_store` crate's [`ObjectStore`] trait: every store
//! the broker can use implements it — [`LocalDirStore`] (`file://`, a local
//! directory written with the fewest syncs that make an object durable),
//! `object_store`'s `InMemory` (`memory://`), its `AmazonS3` (`s3://`, in real
//! builds; not under the simulator) and the simulator's store.
//! [`ObjectStoreBackend`] wraps any of them as the two operations the broker
//! needs — a create-only put and an exact ranged read — with typed errors.
//! [`BlockCache`] is the byte-bounded read cache in front of it.

mod cache;
mod local;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutPayload};

pub use cache::BlockCache;
pub use local::LocalDirStore;

/// How many bytes of the objects it wrote last a local directory leaves in the
/// OS page cache, unless told otherwise (`strata serve --page-cache-bytes`).
pub const DEFAULT_PAGE_CACHE_BYTES: u64 = 1 << 30;

/// What an object-store operation can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A create-only put found an object already there.
    #[error("object {0} already exists")]
    AlreadyExists(String),
    /// No object at that key.
    #[error("object {0} not found")]
    NotFound(String),
    /// The key is not a canonical object path (empty, `//`, `.`, `..`, a
    /// leading or trailing `/`).
    #[error("bad object key {0:?}")]
    BadKey(String),
    /// The object ends before the end of the range asked for.
    #[error("object {key}: range {start}..{end} is beyond its end ({got} bytes read)")]
    Short {
        /// The object.
        key: String,
        /// Start of the range asked for.
        start: u64,
        /// End of the range asked for.
        end: u64,
        /// Bytes the store returned.
        got: u64,
    },
    /// Anything else (I/O, network, the store's own refusal), described.
    #[error("{0}")]
    Other(String),
}

/// How to open the object store, beyond its URL (the `strata serve` flags).
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// A local directory leaves the last this many bytes of objects it wrote
    /// in the OS page cache (see [`LocalDirStore`]).
    pub page_cache_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { page_cache_bytes: DEFAULT_PAGE_CACHE_BYTES }
    }
}

/// Why an objects URL could not be opened. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum OpenStoreError {
    /// The scheme is not one this build serves.
    #[error(
        "objects URL {url:?} has a scheme this build does not support; use file:///some/dir \
         (a local directory) or memory:// (lost at exit, for tests)"
    )]
    UnsupportedScheme {
        /// The URL given.
        url: String,
    },
    /// The local directory could not be created or opened.
    #[error("cannot use {dir} for objects: {source}. Check that the directory can be created and written, or pass --objects")]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The `object_store` crate refused the configuration.
    #[error("cannot open object store {url}: {source}")]
    Store {
        /// The objects URL.
        url: String,
        /// Why.
        #[source]
        source: object_store::Error,
    },
}

/// The broker's object store: any [`ObjectStore`], seen as a create-only put
/// and an exact ranged read. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ObjectStoreBackend {
    store: Arc<dyn ObjectStore>,
    url: Arc<str>,
}

impl ObjectStoreBackend {
    /// Wraps `store`, described as `url` in logs and the startup banner.
    pub fn new(store: Arc<dyn ObjectStore>, url: impl Into<String>) -> Self {
        let url: String = url.into();
        ObjectStoreBackend { store, url: url.into() }
    }

    /// Opens the store named by `url` with default options (see [`open_with`](Self::open_with)).
    pub async fn open(url: &str) -> Result<Self, OpenStoreError> {
        Self::open_with(url, &StoreOptions::default()).await
    }

    /// Opens the store named by `url`: `file:///abs/dir`, `file://rel/dir` or
    /// a plain path (a local directory, created if missing, written with
    /// fsync so that an object is durable before the commit naming it),
    /// or `memory://`.
    pub async fn open_with(url: &str, opts: &StoreOptions) -> Result<Self, OpenStoreError> {
        if url == "memory://" || url == "memory:" || url == "memory:///" {
            return Ok(Self::memory());
        }
        let dir = if let Some(rest) = url.strip_prefix("file://") {
            PathBuf::from(rest)
        } else if url.contains("://") {
            return Err(OpenStoreError::UnsupportedScheme { url: url.into() });
        } else {
            PathBuf::from(url)
        };
        Self::open_dir_with(&dir, opts.page_cache_bytes)
    }

    /// Opens (creating it if needed) a local directory as the object store.
    pub fn open_dir(dir: &Path) -> Result<Self, OpenStoreError> {
        Self::open_dir_with(dir, DEFAULT_PAGE_CACHE_BYTES)
    }

    fn open_dir_with(dir: &Path, page_cache_bytes: u64) -> Result<Self, OpenStoreError> {
        std::fs::create_dir_all(dir).map_err(|source| OpenStoreError::Dir { dir: dir.into(), source })?;
        let abs = std::fs::canonicalize(dir).map_err(|source| OpenStoreError::Dir { dir: dir.into(), source })?;
        if !abs.is_dir() {
            let source = std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory");
            return Err(OpenStoreError::Dir { dir: dir.into(), source });
        }
        let store = LocalDirStore::new(abs, page_cache_bytes);
        let url = store.url().to_owned();
        Ok(Self::new(Arc::new(store), url))
    }

    /// An in-memory store (tests).
    pub fn memory() -> Self {
        Self::new(Arc::new(InMemory::new()), "memory://")
    }

    /// The store itself, for everything beyond puts and ranged reads.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Writes `bytes` at `key` unless an object is already there
    /// ([`StoreError::AlreadyExists`] then). Resolves once the object is durable.
    pub async fn put_create(&self, key: &str, bytes: Bytes) -> Result<(), StoreError> {
        let path = object_path(key)?;
        self.store
            .put_opts(&path, PutPayload::from(bytes), PutMode::Create.into())
            .await
            .map(|_| ())
            .map_err(|e| map_error(key, e))
    }

    /// Reads exactly `range` of the object at `key`: an object that ends
    /// before `range.end` is an error ([`StoreError::Short`]).
    pub async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StoreError> {
        let path = object_path(key)?;
        if range.start >= range.end {
            return Ok(Bytes::new());
        }
        let bytes = self.store.get_range(&path, range.clone()).await.map_err(|e| map_error(key, e))?;
        if bytes.len() as u64 != range.end - range.start {
            return Err(StoreError::Short { key: key.into(), start: range.start, end: range.end, got: bytes.len() as u64 });
        }
        Ok(bytes)
    }

    /// Where the objects are, for logs and the startup banner.
    pub fn describe(&self) -> String {
        self.url.to_string()
    }
}

/// The path of `key`, which must already be in canonical form (so that the
/// key written in a commit is exactly the object's name in every store).
fn object_path(key: &str) -> Result<ObjectPath, StoreError> {
    match ObjectPath::parse(key) {
        Ok(path) if path.as_ref() == key && !key.is_empty() => Ok(path),
        _ => Err(StoreError::BadKey(key.into())),
    }
}

fn map_error(key: &str, e: object_store::Error) -> StoreError {
    match e {
        object_store::Error::AlreadyExists { .. } => StoreError::AlreadyExists(key.into()),
        object_store::Error::NotFound { .. } => StoreError::NotFound(key.into()),
        other => StoreError::Other(format!("object {key}: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn create_only_and_ranged_reads_on_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStoreBackend::open(&format!("file://{}/objects", dir.path().display())).await.unwrap();
        store.put_create("ab/object-1", Bytes::from_static(b"hello world")).await.unwrap();
        assert_eq!(
            store.put_create("ab/object-1", Bytes::from_static(b"other")).await,
            Err(StoreError::AlreadyExists("ab/object-1".into()))
        );
        assert_eq!(&store.get_range("ab/object-1", 6..11).await.unwrap()[..], b"world");
        assert!(matches!(store.get_range("ab/object-1", 6..12).await, Err(StoreError::Short { got: 5, .. })));
        assert!(matches!(store.get_range("ab/missing", 0..1).await, Err(StoreError::NotFound(_))));
        assert!(dir.path().join("objects/ab/object-1").exists());
    }

    #[tokio::test]
    async fn memory_store_bad_keys_and_bad_urls() {
        let store = ObjectStoreBackend::open("memory://").await.unwrap();
        store.put_create("k", Bytes::from_static(b"0123")).await.unwrap();
        assert_eq!(&store.get_range("k", 1..3).await.unwrap()[..], b"12");
        assert!(matches!(store.get_range("k", 2..9).await, Err(StoreError::Short { got: 2, .. })));
        for bad in ["", "/k", "k/", "a//b", "a/./b", "../x"] {
            assert_eq!(store.put_create(bad, Bytes::from_static(b"x")).await, Err(StoreError::BadKey(bad.into())));
        }
        let err = ObjectStoreBackend::open("ftp://x").await.unwrap_err();
        assert!(err.to_string().contains("file://"), "{err}");
    }
}
