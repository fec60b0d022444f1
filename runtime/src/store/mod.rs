//! The object store: where record data lives (DESIGN.md, "Object layout").
//!
//! The server talks to it through [`ObjectStoreClient`], a two-method seam
//! (create-only put, ranged get) so the simulator can swap in a simulated
//! store. [`ObjectStoreBackend`] is the real one, on the `object_store` crate:
//! `memory://` for now; `file://` (a local directory, synced) is
//! [`LocalDirStore`], which does the fewest syncs that make an object durable.
//! [`BlockCache`] is the byte-bounded read cache in front of it.

mod cache;
mod local;

use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::pin::Pin;
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

/// A boxed future, so that [`ObjectStoreClient`] can be used as a trait object.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// What an object-store operation can fail with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// A create-only put found an object already there.
    AlreadyExists(String),
    /// No object at that key.
    NotFound(String),
    /// Anything else (I/O, network, bad key), described.
    Other(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::AlreadyExists(k) => write!(f, "object {k} already exists"),
            StoreError::NotFound(k) => write!(f, "object {k} not found"),
            StoreError::Other(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for StoreError {}

/// The two things the broker asks of an object store.
pub trait ObjectStoreClient: Send + Sync + 'static {
    /// Writes `bytes` at `key` unless an object is already there
    /// ([`StoreError::AlreadyExists`] then). Resolves once the object is durable.
    fn put_create(&self, key: &str, bytes: Bytes) -> StoreFuture<'_, ()>;

    /// Reads `range` of the object at `key`.
    fn get_range(&self, key: &str, range: Range<u64>) -> StoreFuture<'_, Bytes>;

    /// Where the objects are, for logs and the startup banner.
    fn describe(&self) -> String;
}

/// The real object store: a local directory ([`LocalDirStore`]), or one of
/// the `object_store` crate's.
#[derive(Debug, Clone)]
pub struct ObjectStoreBackend {
    inner: Inner,
    url: String,
}

#[derive(Debug, Clone)]
enum Inner {
    Local(LocalDirStore),
    Crate(Arc<dyn ObjectStore>),
}

/// Why an objects URL could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenStoreError {
    /// The scheme is not one this build serves.
    #[error(
        "objects URL {url:?} has a scheme this build does not support; use file:///some/dir \
         (a local directory) or memory:// (lost at exit, for tests)"
    )]
    UnsupportedScheme { url: String },
    /// The local directory could not be created or opened.
    #[error("cannot use {dir} for objects: {source}. Check that the directory can be created and written, or pass --objects")]
    Dir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The `object_store` crate refused the configuration.
    #[error("cannot open object store {url}: {source}")]
    Store {
        url: String,
        #[source]
        source: object_store::Error,
    },
}

impl ObjectStoreBackend {
    /// Opens the store named by `url`: `file:///abs/dir`, `file://rel/dir`, a
    /// plain path, or `memory://`. A local directory is created if missing and
    /// written with fsync, so an object is durable before the commit naming it.
    pub fn open(url: &str) -> Result<Self, OpenStoreError> {
        Self::open_with(url, DEFAULT_PAGE_CACHE_BYTES)
    }

    /// Like [`open`](Self::open); a local directory leaves only the last
    /// `page_cache_bytes` of objects it wrote in the OS page cache (see [`LocalDirStore`]).
    pub fn open_with(url: &str, page_cache_bytes: u64) -> Result<Self, OpenStoreError> {
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
        Self::open_dir_with(&dir, page_cache_bytes)
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
        Ok(ObjectStoreBackend { url: store.describe(), inner: Inner::Local(store) })
    }

    /// An in-memory store (tests).
    pub fn memory() -> Self {
        ObjectStoreBackend { inner: Inner::Crate(Arc::new(InMemory::new())), url: "memory://".into() }
    }
}

fn object_path(key: &str) -> Result<ObjectPath, StoreError> {
    ObjectPath::parse(key).map_err(|e| StoreError::Other(format!("bad object key {key:?}: {e}")))
}

fn map_error(key: &str, e: object_store::Error) -> StoreError {
    match e {
        object_store::Error::AlreadyExists { .. } => StoreError::AlreadyExists(key.into()),
        object_store::Error::NotFound { .. } => StoreError::NotFound(key.into()),
        other => StoreError::Other(format!("object {key}: {other}")),
    }
}

impl ObjectStoreClient for ObjectStoreBackend {
    fn put_create(&self, key: &str, bytes: Bytes) -> StoreFuture<'_, ()> {
        let inner = match &self.inner {
            Inner::Local(local) => return local.put_create(key, bytes),
            Inner::Crate(inner) => inner,
        };
        let key = key.to_owned();
        Box::pin(async move {
            let path = object_path(&key)?;
            inner
                .put_opts(&path, PutPayload::from(bytes), PutMode::Create.into())
                .await
                .map(|_| ())
                .map_err(|e| map_error(&key, e))
        })
    }

    fn get_range(&self, key: &str, range: Range<u64>) -> StoreFuture<'_, Bytes> {
        let inner = match &self.inner {
            Inner::Local(local) => return local.get_range(key, range),
            Inner::Crate(inner) => inner,
        };
        let key = key.to_owned();
        Box::pin(async move {
            let path = object_path(&key)?;
            if range.start >= range.end {
                return Ok(Bytes::new());
            }
            inner.get_range(&path, range).await.map_err(|e| map_error(&key, e))
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
    async fn create_only_and_ranged_reads_on_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStoreBackend::open(&format!("file://{}/objects", dir.path().display())).unwrap();
        store.put_create("ab/object-1", Bytes::from_static(b"hello world")).await.unwrap();
        assert_eq!(
            store.put_create("ab/object-1", Bytes::from_static(b"other")).await,
            Err(StoreError::AlreadyExists("ab/object-1".into()))
        );
        assert_eq!(&store.get_range("ab/object-1", 6..11).await.unwrap()[..], b"world");
        assert!(matches!(store.get_range("ab/missing", 0..1).await, Err(StoreError::NotFound(_))));
        assert!(dir.path().join("objects/ab/object-1").exists());
    }

    #[tokio::test]
    async fn memory_store_and_bad_schemes() {
        let store = ObjectStoreBackend::open("memory://").unwrap();
        store.put_create("k", Bytes::from_static(b"0123")).await.unwrap();
        assert_eq!(&store.get_range("k", 1..3).await.unwrap()[..], b"12");
        let err = ObjectStoreBackend::open("ftp://x").unwrap_err();
        assert!(err.to_string().contains("file://"), "{err}");
    }
}
