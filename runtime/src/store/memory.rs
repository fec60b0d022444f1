//! The in-memory object store (`memory://`, lost at exit): each object is
//! kept as the pieces it was put with (an object's batches as they arrived),
//! not copied into one buffer as `object_store`'s `InMemory` does, so that a
//! record's bytes are copied once on their way in. A ranged read within one
//! piece shares it; one across pieces is copied together.
//!
//! Served: puts (create-only and overwrite), gets with ranges and
//! preconditions, heads, deletes and listings. Multipart uploads, copies and
//! delimited listings are `NotImplemented`: the broker uses none of them.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

/// The name this store gives itself in `object_store` errors.
const STORE: &str = "MemoryStore";

struct Entry {
    payload: PutPayload,
    last_modified: DateTime<Utc>,
}

/// Objects held in memory, by key.
#[derive(Default, Clone)]
pub struct MemoryStore {
    objects: Arc<RwLock<BTreeMap<String, Entry>>>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(STORE)
    }
}

impl std::fmt::Display for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(STORE)
    }
}

fn not_implemented(operation: &str) -> object_store::Error {
    object_store::Error::NotImplemented { operation: operation.into(), implementer: STORE.into() }
}

fn meta_of(key: &str, e: &Entry) -> ObjectMeta {
    ObjectMeta {
        location: ObjectPath::from(key),
        last_modified: e.last_modified,
        size: e.payload.content_length() as u64,
        e_tag: None,
        version: None,
    }
}

/// The pieces of `payload` that hold `range` (trimmed to it).
fn pieces(payload: &PutPayload, range: &std::ops::Range<u64>) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut at = 0u64;
    for part in payload.iter() {
        let end = at + part.len() as u64;
        if end > range.start && at < range.end {
            let from = range.start.saturating_sub(at) as usize;
            let to = (range.end.min(end) - at) as usize;
            out.push(part.slice(from..to));
        }
        at = end;
        if at >= range.end {
            break;
        }
    }
    out
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Entry>> {
        self.objects.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Entry>> {
        self.objects.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl ObjectStore for MemoryStore {
    async fn put_opts(&self, location: &ObjectPath, payload: PutPayload, opts: PutOptions) -> object_store::Result<PutResult> {
        if !opts.attributes.is_empty() {
            return Err(not_implemented("put_opts with attributes"));
        }
        let key = location.to_string();
        let entry = Entry { payload, last_modified: Utc::now() };
        let mut objects = self.write();
        match opts.mode {
            PutMode::Overwrite => {
                objects.insert(key, entry);
            }
            PutMode::Create => {
                if objects.contains_key(&key) {
                    return Err(object_store::Error::AlreadyExists {
                        path: key,
                        source: "create-only put of an existing object".into(),
                    });
                }
                objects.insert(key, entry);
            }
            PutMode::Update(_) => return Err(not_implemented("put_opts with PutMode::Update")),
        }
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
        let (meta, range, chunks) = {
            let objects = self.read();
            let Some(entry) = objects.get(&key) else {
                return Err(object_store::Error::NotFound { path: key, source: "no such object".into() });
            };
            let meta = meta_of(&key, entry);
            options.check_preconditions(&meta)?;
            let range = match &options.range {
                Some(r) => {
                    r.as_range(meta.size).map_err(|e| object_store::Error::Generic { store: STORE, source: Box::new(e) })?
                }
                None => 0..meta.size,
            };
            let chunks = if options.head { Vec::new() } else { pieces(&entry.payload, &range) };
            (meta, range, chunks)
        };
        let payload = futures_util::stream::iter(chunks.into_iter().map(Ok)).boxed();
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
            .map(move |location| {
                let location = location?;
                // Like S3: deleting what is not there succeeds.
                store.write().remove(location.as_ref());
                Ok(location)
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&ObjectPath>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        // A prefix matches whole path segments, as object_store's stores do.
        let prefix = prefix.map(|p| p.to_string()).filter(|p| !p.is_empty());
        let metas: Vec<_> = self
            .read()
            .iter()
            .filter(|(k, _)| match &prefix {
                None => true,
                Some(p) => k.strip_prefix(p.as_str()).is_some_and(|rest| rest.starts_with('/')),
            })
            .map(|(k, e)| Ok(meta_of(k, e)))
            .collect();
        futures_util::stream::iter(metas).boxed()
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
    use futures_util::TryStreamExt;
    use object_store::ObjectStoreExt;

    fn p(key: &str) -> ObjectPath {
        ObjectPath::parse(key).unwrap()
    }

    #[tokio::test]
    async fn pieces_are_kept_and_ranges_read_across_them() {
        let store = MemoryStore::new();
        let first = Bytes::from_static(b"hello ");
        let payload = PutPayload::from_iter([first.clone(), Bytes::from_static(b"big "), Bytes::from_static(b"world")]);
        store.put_opts(&p("objects/ab/o-1"), payload, PutMode::Create.into()).await.unwrap();
        let again = store.put_opts(&p("objects/ab/o-1"), PutPayload::from_static(b"x"), PutMode::Create.into()).await;
        assert!(matches!(again, Err(object_store::Error::AlreadyExists { .. })), "{again:?}");

        let whole = b"hello big world";
        for start in 0..whole.len() as u64 {
            for end in start + 1..=whole.len() as u64 {
                let got = store.get_range(&p("objects/ab/o-1"), start..end).await.unwrap();
                assert_eq!(&got[..], &whole[start as usize..end as usize], "{start}..{end}");
            }
        }
        let shared = store.get_range(&p("objects/ab/o-1"), 1..4).await.unwrap();
        assert_eq!(shared.as_ptr(), first[1..].as_ptr(), "a range inside one piece is not copied");
        assert!(store.get_range(&p("objects/ab/o-1"), 20..30).await.is_err());
        assert!(matches!(store.get(&p("objects/ab/nope")).await, Err(object_store::Error::NotFound { .. })));
        assert_eq!(store.head(&p("objects/ab/o-1")).await.unwrap().size, 15);

        store.put_opts(&p("objects/cd/o-2"), PutPayload::from_static(b"2"), PutMode::Create.into()).await.unwrap();
        store.put_opts(&p("objectsX/o-3"), PutPayload::from_static(b"3"), PutMode::Create.into()).await.unwrap();
        let listed: Vec<String> =
            store.list(Some(&p("objects"))).map_ok(|m| m.location.to_string()).try_collect().await.unwrap();
        assert_eq!(listed, ["objects/ab/o-1", "objects/cd/o-2"]);
        store.delete(&p("objects/ab/o-1")).await.unwrap();
        store.delete(&p("objects/ab/o-1")).await.unwrap();
        assert!(store.head(&p("objects/ab/o-1")).await.is_err());
    }
}
