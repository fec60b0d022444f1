//! The object store: where record data lives (DESIGN.md, "Object layout").
//!
//! The seam is the `object_store` crate's [`ObjectStore`] trait: every store
//! the broker can use implements it — [`LocalDirStore`] (`file://`, a local
//! directory: objects appended to segment files, one sync each),
//! [`MemoryStore`] (`memory://`, objects kept in the pieces they were put with), its `AmazonS3` (`s3://`, in real
//! builds; not under the simulator) and the simulator's store.
//! [`ObjectStoreBackend`] wraps any of them as the two operations the broker
//! needs — a create-only put and an exact ranged read — with typed errors.
//! [`BlockCache`] is the byte-bounded read cache in front of it.

mod cache;
mod local;
mod memory;
#[cfg(not(madsim))]
mod s3;

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use strata_core::io::ListedObject;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutPayload};

pub use cache::BlockCache;

/// The most objects one listing returns: a bound on the memory a pass takes.
pub const MAX_LISTED: usize = 1_000_000;
pub use local::LocalDirStore;
pub use memory::MemoryStore;

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

/// A secret flag value (an S3 secret key): shown as `***` by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

/// Settings of an `s3://` object store. Those left unset come from the
/// standard AWS environment variables (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
/// `AWS_ENDPOINT_URL`, ...), else AWS's defaults.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// Endpoint URL of an S3-compatible store (MinIO, R2, moto); unset: AWS S3.
    pub endpoint: Option<String>,
    /// The bucket's region.
    pub region: Option<String>,
    /// Allow a plain-HTTP endpoint (local test stores).
    pub allow_http: bool,
    /// Access key id.
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<Secret>,
}

impl S3Options {
    /// The `strata serve` flag of the first setting given, if any.
    fn first_flag_set(&self) -> Option<&'static str> {
        [
            (self.endpoint.is_some(), "--s3-endpoint (STRATA_S3_ENDPOINT)"),
            (self.region.is_some(), "--s3-region (STRATA_S3_REGION)"),
            (self.allow_http, "--s3-allow-http (STRATA_S3_ALLOW_HTTP)"),
            (self.access_key_id.is_some(), "--s3-access-key-id (STRATA_S3_ACCESS_KEY_ID)"),
            (self.secret_access_key.is_some(), "--s3-secret-access-key (STRATA_S3_SECRET_ACCESS_KEY)"),
        ]
        .into_iter()
        .find_map(|(set, flag)| set.then_some(flag))
    }
}

/// How to open the object store, beyond its URL (the `strata serve` flags).
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// A local directory leaves the last this many bytes of objects it wrote
    /// in the OS page cache (see [`LocalDirStore`]).
    pub page_cache_bytes: u64,
    /// Settings of an `s3://` store.
    pub s3: S3Options,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { page_cache_bytes: DEFAULT_PAGE_CACHE_BYTES, s3: S3Options::default() }
    }
}

/// Why an objects URL could not be opened. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum OpenStoreError {
    /// The scheme is not one this build serves.
    #[error(
        "objects URL {url:?} has a scheme this build does not support; use file:///some/dir \
         (a local directory), {s3}or memory:// (lost at exit, for tests)",
        s3 = if cfg!(madsim) { "" } else { "s3://BUCKET/PREFIX (S3 or an S3-compatible store), " }
    )]
    UnsupportedScheme {
        /// The URL given.
        url: String,
    },
    /// An S3 setting was given for a store that is not S3.
    #[error(
        "{flag} only applies to an S3 object store, but the objects URL is {url}; \
         pass --objects s3://BUCKET/PREFIX, or drop {flag}"
    )]
    S3SettingWithoutS3 {
        /// The flag given.
        flag: &'static str,
        /// The objects URL.
        url: String,
    },
    /// The S3 settings do not make a usable store.
    #[error("{0}")]
    S3Config(String),
    /// The S3 store answered the start-up check with an error.
    #[error("{what}\n  (the store said: {source})")]
    S3Check {
        /// What is wrong and what to do.
        what: String,
        /// The store's answer.
        #[source]
        source: object_store::Error,
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
    /// `s3://bucket[/prefix]` (checked with one read before it is used), or
    /// `memory://`.
    pub async fn open_with(url: &str, opts: &StoreOptions) -> Result<Self, OpenStoreError> {
        let is_s3 = url.starts_with("s3://");
        if !is_s3 {
            if let Some(flag) = opts.s3.first_flag_set() {
                return Err(OpenStoreError::S3SettingWithoutS3 { flag, url: url.into() });
            }
        }
        if url == "memory://" || url == "memory:" || url == "memory:///" {
            return Ok(Self::memory());
        }
        if is_s3 {
            #[cfg(not(madsim))]
            return s3::open(url, &opts.s3).await;
            #[cfg(madsim)]
            return Err(OpenStoreError::UnsupportedScheme { url: url.into() });
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
        let store = LocalDirStore::open(abs, page_cache_bytes).map_err(|source| OpenStoreError::Dir { dir: dir.into(), source })?;
        let url = store.url().to_owned();
        Ok(Self::new(Arc::new(store), url))
    }

    /// An in-memory store (tests).
    pub fn memory() -> Self {
        Self::new(Arc::new(MemoryStore::new()), "memory://")
    }

    /// The store itself, for everything beyond puts and ranged reads.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Writes `bytes` (one buffer, or the pieces of an object) at `key` unless
    /// an object is already there ([`StoreError::AlreadyExists`] then).
    /// Resolves once the object is durable.
    pub async fn put_create(&self, key: &str, bytes: impl Into<PutPayload>) -> Result<(), StoreError> {
        let path = object_path(key)?;
        self.store
            .put_opts(&path, bytes.into(), PutMode::Create.into())
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

    /// The objects under the folder `prefix` (`objects/`), with when each was
    /// written; at most [`MAX_LISTED`] of them (a later listing sees the rest
    /// once these are gone).
    pub async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>, StoreError> {
        let folder = prefix.trim_end_matches('/');
        let path = object_path(folder)?;
        let mut stream = self.store.list(Some(&path));
        let mut listed = Vec::new();
        while let Some(meta) = stream.next().await {
            let meta = meta.map_err(|e| map_error(folder, e))?;
            let last_modified_ms = u64::try_from(meta.last_modified.timestamp_millis()).unwrap_or(0);
            listed.push(ListedObject { key: meta.location.to_string(), last_modified_ms });
            if listed.len() >= MAX_LISTED {
                break;
            }
        }
        Ok(listed)
    }

    /// The whole object at `key` (snapshots).
    pub async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let path = object_path(key)?;
        let got = self.store.get(&path).await.map_err(|e| map_error(key, e))?;
        got.bytes().await.map_err(|e| map_error(key, e))
    }

    /// Deletes the object at `key`; one already gone is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = object_path(key)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(map_error(key, e)),
        }
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
        // In a segment of the directory, not a file of its own.
        assert!(!dir.path().join("objects/ab/object-1").exists());
        assert_eq!(std::fs::read_dir(dir.path().join("objects/segments")).unwrap().count(), 1);
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

    #[tokio::test]
    async fn s3_settings_without_an_s3_url_are_refused_in_plain_words() {
        let opts = StoreOptions {
            s3: S3Options { endpoint: Some("http://127.0.0.1:9000".into()), ..S3Options::default() },
            ..StoreOptions::default()
        };
        let err = ObjectStoreBackend::open_with("memory://", &opts).await.unwrap_err().to_string();
        assert!(err.contains("--s3-endpoint") && err.contains("s3://BUCKET/PREFIX"), "{err}");
        assert_eq!(format!("{:?}", Secret("hunter2".into())), "***");
    }
}
