//! The simulated object store: a node holding objects in memory, reached over
//! the simulated network, and the client side, [`SimStore`], implementing
//! `object_store::ObjectStore` for the brokers (the runtime wraps it like any
//! other store).
//!
//! Served: puts (create-only and overwrite), gets with ranges and
//! preconditions, heads, deletes and listings. Multipart uploads, copies and
//! conditional updates are `NotImplemented`: the broker uses none of them.
//!
//! Faults: errors (503 on writes, 500 on reads) with nothing done; writes
//! applied whose answer is lost (the client times out: the object exists but
//! the broker fails its requests); slow reads. No missing object on
//! read-after-write: S3 has been strongly consistent for read-after-write
//! (and for listing) since December 2020, as are the S3-compatible stores we
//! target, so the simulator does not invent that fault.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, Error, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

use crate::history::History;
use crate::rpc::{self, RpcClient};
use crate::{chance, Faults};

/// Where the store listens.
pub const STORE_PORT: u16 = 9000;

/// The name this store gives itself in `object_store` errors.
const STORE: &str = "SimStore";

/// One stored object.
struct Entry {
    bytes: Bytes,
    e_tag: u64,
    last_modified: DateTime<Utc>,
}

#[derive(Default)]
struct State {
    /// Ordered, so that listings come out the same on every run.
    map: BTreeMap<String, Entry>,
    next_e_tag: u64,
}

/// The objects (durable; outlive any node).
#[derive(Default)]
pub struct Objects {
    state: Mutex<State>,
}

fn meta(key: &str, e: &Entry) -> ObjectMeta {
    ObjectMeta {
        location: Path::from(key),
        last_modified: e.last_modified,
        size: e.bytes.len() as u64,
        e_tag: Some(format!("\"{}\"", e.e_tag)),
        version: None,
    }
}

impl Objects {
    /// The object at `key`.
    pub fn get(&self, key: &str) -> Option<Bytes> {
        self.state.lock().unwrap().map.get(key).map(|e| e.bytes.clone())
    }

    fn put(&self, key: &str, bytes: Bytes, mode: &PutMode) -> Result<PutResult> {
        let mut st = self.state.lock().unwrap();
        match mode {
            PutMode::Create if st.map.contains_key(key) => {
                return Err(Error::AlreadyExists { path: key.into(), source: "412 Precondition Failed".into() })
            }
            PutMode::Create | PutMode::Overwrite => {}
            PutMode::Update(_) => return Err(not_implemented("put_opts with PutMode::Update")),
        }
        st.next_e_tag += 1;
        let e_tag = st.next_e_tag;
        // Simulated wall time: madsim's clock, the same on every run of a seed.
        st.map.insert(key.to_owned(), Entry { bytes, e_tag, last_modified: Utc::now() });
        Ok(PutResult { e_tag: Some(format!("\"{e_tag}\"")), version: None, extensions: Default::default() })
    }

    fn get_opts(&self, key: &str, options: &GetOptions) -> Result<(ObjectMeta, std::ops::Range<u64>, Bytes)> {
        let st = self.state.lock().unwrap();
        let Some(entry) = st.map.get(key) else {
            return Err(Error::NotFound { path: key.into(), source: "404 NoSuchKey".into() });
        };
        let meta = meta(key, entry);
        options.check_preconditions(&meta)?;
        let range = match &options.range {
            Some(r) => r.as_range(meta.size).map_err(|e| Error::Generic {
                store: STORE,
                source: format!("416 Range Not Satisfiable: {e}").into(),
            })?,
            None => 0..meta.size,
        };
        let bytes = if options.head { Bytes::new() } else { entry.bytes.slice(range.start as usize..range.end as usize) };
        Ok((meta, range, bytes))
    }

    fn list(&self, prefix: &str) -> Vec<ObjectMeta> {
        let st = self.state.lock().unwrap();
        // Prefixes match whole path segments, as object_store's do.
        let within = |k: &str| prefix.is_empty() || k.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'));
        st.map.iter().filter(|(k, _)| within(k)).map(|(k, e)| meta(k, e)).collect()
    }
}

fn not_implemented(operation: &str) -> Error {
    Error::NotImplemented { operation: operation.into(), implementer: STORE.into() }
}

/// What travels to the store node.
pub enum StoreReq {
    /// Write an object (create-only or overwrite).
    Put { key: String, bytes: Bytes, mode: PutMode },
    /// Read an object, or a range of it, or only its metadata.
    Get { key: String, options: GetOptions },
    /// Remove an object.
    Delete { key: String },
    /// Every object under a prefix.
    List { prefix: String },
}

/// What comes back.
pub enum StoreResp {
    /// The written object's version.
    Put(Result<PutResult>),
    /// The object's metadata, the range returned and its bytes.
    Get(Result<(ObjectMeta, std::ops::Range<u64>, Bytes)>),
    /// Done (also when there was nothing to delete).
    Delete(Result<()>),
    /// The objects, in key order.
    List(Result<Vec<ObjectMeta>>),
}

fn server_error(status: &str, what: &str, key: &str) -> Error {
    Error::Generic { store: STORE, source: format!("{what} {key}: {status}").into() }
}

/// Runs the store node's server.
pub async fn run_server(addr: SocketAddr, objects: Arc<Objects>, faults: Arc<Faults>, history: History) {
    rpc::serve(addr, move |req: StoreReq| {
        let objects = objects.clone();
        let faults = faults.clone();
        let history = history.clone();
        async move {
            match req {
                StoreReq::Put { key, bytes, mode } => {
                    if chance(faults.store_error) {
                        history.log("store", format!("put {key}: 503, not written"));
                        return Some(StoreResp::Put(Err(server_error("503 Slow Down", "put", &key))));
                    }
                    let result = objects.put(&key, bytes, &mode);
                    if chance(faults.store_lost_answer) {
                        history.log("store", format!("put {key}: written, answer lost"));
                        return None;
                    }
                    Some(StoreResp::Put(result))
                }
                StoreReq::Get { key, options } => {
                    if chance(faults.store_error) {
                        return Some(StoreResp::Get(Err(server_error("500 Internal Error", "get", &key))));
                    }
                    if chance(faults.store_slow) {
                        let ms = 200 + (madsim::rand::random::<u64>() % 3000);
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                    }
                    let result = objects.get_opts(&key, &options);
                    match &result {
                        Err(Error::NotFound { .. }) => history.log("store", format!("get {key}: not found")),
                        Err(e) => history.log("store", format!("get {key} {:?}: {e}", options.range)),
                        Ok(_) => {}
                    }
                    Some(StoreResp::Get(result))
                }
                StoreReq::Delete { key } => {
                    if chance(faults.store_error) {
                        history.log("store", format!("delete {key}: 503, not deleted"));
                        return Some(StoreResp::Delete(Err(server_error("503 Slow Down", "delete", &key))));
                    }
                    // Like S3: deleting what is not there succeeds.
                    if objects.state.lock().unwrap().map.remove(&key).is_some() {
                        history.log("store", format!("deleted {key}"));
                    }
                    if chance(faults.store_lost_answer) {
                        history.log("store", format!("delete {key}: deleted, answer lost"));
                        return None;
                    }
                    Some(StoreResp::Delete(Ok(())))
                }
                StoreReq::List { prefix } => {
                    if chance(faults.store_error) {
                        return Some(StoreResp::List(Err(server_error("500 Internal Error", "list", &prefix))));
                    }
                    if chance(faults.store_slow) {
                        let ms = 200 + (madsim::rand::random::<u64>() % 3000);
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                    }
                    Some(StoreResp::List(Ok(objects.list(&prefix))))
                }
            }
        }
    })
    .await
}

/// The broker's handle on the simulated store.
#[derive(Clone)]
pub struct SimStore {
    rpc: Arc<RpcClient>,
}

impl std::fmt::Debug for SimStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(STORE)
    }
}

impl std::fmt::Display for SimStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(STORE)
    }
}

const STORE_TIMEOUT: Duration = Duration::from_secs(3);

impl SimStore {
    /// Connects from the current node.
    pub async fn connect(addr: SocketAddr) -> Self {
        SimStore { rpc: RpcClient::new(addr).await.expect("bind a client endpoint") }
    }

    /// One request and its answer; no answer in time is an error whose outcome is unknown.
    async fn call(&self, what: &str, req: StoreReq) -> Result<StoreResp> {
        self.rpc.call::<StoreReq, StoreResp>(req, STORE_TIMEOUT).await.map_err(|e| Error::Generic {
            store: STORE,
            source: format!("{what}: no answer ({e:?}); it may or may not have been carried out").into(),
        })
    }
}

fn odd_answer() -> Error {
    Error::Generic { store: STORE, source: "an answer of the wrong kind".into() }
}

#[async_trait]
impl ObjectStore for SimStore {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        if !opts.attributes.is_empty() {
            return Err(not_implemented("put_opts with attributes"));
        }
        let key = location.to_string();
        let req = StoreReq::Put { key: key.clone(), bytes: Bytes::from(payload), mode: opts.mode };
        match self.call(&format!("put {key}"), req).await? {
            StoreResp::Put(r) => r,
            _ => Err(odd_answer()),
        }
    }

    async fn put_multipart_opts(&self, _location: &Path, _opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        Err(not_implemented("put_multipart_opts"))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let key = location.to_string();
        let (meta, range, bytes) = match self.call(&format!("get {key}"), StoreReq::Get { key: key.clone(), options }).await? {
            StoreResp::Get(r) => r?,
            _ => return Err(odd_answer()),
        };
        Ok(GetResult {
            payload: GetResultPayload::Stream(futures_util::stream::once(futures_util::future::ready(Ok(bytes))).boxed()),
            meta,
            range,
            attributes: Default::default(),
            extensions: Default::default(),
        })
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        let store = self.clone();
        locations
            .and_then(move |location| {
                let store = store.clone();
                async move {
                    let key = location.to_string();
                    match store.call(&format!("delete {key}"), StoreReq::Delete { key: key.clone() }).await? {
                        StoreResp::Delete(r) => r.map(|()| location),
                        _ => Err(odd_answer()),
                    }
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let store = self.clone();
        let prefix = prefix.map(|p| p.to_string()).unwrap_or_default();
        let listed = async move {
            let metas = match store.call(&format!("list {prefix}"), StoreReq::List { prefix: prefix.clone() }).await? {
                StoreResp::List(r) => r?,
                _ => return Err(odd_answer()),
            };
            Ok(futures_util::stream::iter(metas.into_iter().map(Ok)))
        };
        futures_util::stream::once(listed).try_flatten().boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        // One level of the listing: objects right under the prefix, and the
        // "directories" below it.
        let base = prefix.cloned().unwrap_or_default();
        let depth = base.parts().count();
        let mut objects = Vec::new();
        let mut common_prefixes = Vec::new();
        let mut all = self.list(prefix);
        while let Some(meta) = all.try_next().await? {
            let parts: Vec<_> = meta.location.parts().collect();
            if parts.len() == depth + 1 {
                objects.push(meta);
            } else if let Some(dir) = parts.get(depth) {
                let dir = base.clone().join(dir.clone());
                if common_prefixes.last() != Some(&dir) {
                    common_prefixes.push(dir);
                }
            }
        }
        Ok(ListResult { common_prefixes, objects, extensions: Default::default() })
    }

    async fn copy_opts(&self, _from: &Path, _to: &Path, _options: CopyOptions) -> Result<()> {
        Err(not_implemented("copy_opts"))
    }
}
