//! The simulated object store: a node holding objects in memory, reached over
//! the simulated network, and the client side implementing the runtime's
//! `ObjectStoreClient` for the brokers.
//!
//! Faults: errors (503 on put, 500 on get) with nothing done; puts applied
//! whose answer is lost (the broker times out: the object exists but the
//! broker fails its requests); slow reads. No missing object on
//! read-after-write: S3 has been strongly consistent for read-after-write
//! (and for listing) since December 2020, as are the S3-compatible stores we
//! target, so the simulator does not invent that fault.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use strata_runtime::store::{ObjectStoreClient, StoreError, StoreFuture};

use crate::history::History;
use crate::rpc::{self, RpcClient};
use crate::{chance, Faults};

/// Where the store listens.
pub const STORE_PORT: u16 = 9000;

/// The objects (durable; outlive any node).
#[derive(Default)]
pub struct Objects {
    map: Mutex<HashMap<String, Bytes>>,
}

impl Objects {
    /// The object at `key`.
    pub fn get(&self, key: &str) -> Option<Bytes> {
        self.map.lock().unwrap().get(key).cloned()
    }
}

pub enum StoreReq {
    Put(String, Bytes),
    Get(String, Range<u64>),
}

pub enum StoreResp {
    Put(Result<(), StoreError>),
    Get(Result<Bytes, StoreError>),
}

/// Runs the store node's server.
pub async fn run_server(addr: SocketAddr, objects: Arc<Objects>, faults: Arc<Faults>, history: History) {
    rpc::serve(addr, move |req: StoreReq| {
        let objects = objects.clone();
        let faults = faults.clone();
        let history = history.clone();
        async move {
            match req {
                StoreReq::Put(key, bytes) => {
                    if chance(faults.store_error) {
                        history.log("store", format!("put {key}: 503, not written"));
                        return Some(StoreResp::Put(Err(StoreError::Other(format!("object {key}: 503 Slow Down")))));
                    }
                    let result = {
                        let mut map = objects.map.lock().unwrap();
                        if map.contains_key(&key) {
                            Err(StoreError::AlreadyExists(key.clone()))
                        } else {
                            map.insert(key.clone(), bytes);
                            Ok(())
                        }
                    };
                    if chance(faults.store_lost_answer) {
                        history.log("store", format!("put {key}: written, answer lost"));
                        return None;
                    }
                    Some(StoreResp::Put(result))
                }
                StoreReq::Get(key, range) => {
                    if chance(faults.store_error) {
                        return Some(StoreResp::Get(Err(StoreError::Other(format!("object {key}: 500 Internal Error")))));
                    }
                    if chance(faults.store_slow) {
                        let ms = 200 + (madsim::rand::random::<u64>() % 3000);
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                    }
                    let result = match objects.get(&key) {
                        None => {
                            history.log("store", format!("get {key}: not found"));
                            Err(StoreError::NotFound(key))
                        }
                        Some(b) => {
                            let end = range.end.min(b.len() as u64);
                            if range.start > end || range.end > b.len() as u64 {
                                history.log("store", format!("get {key} {range:?}: beyond the object's {} bytes", b.len()));
                                Err(StoreError::Other(format!("object {key}: 416 range not satisfiable")))
                            } else {
                                Ok(b.slice(range.start as usize..end as usize))
                            }
                        }
                    };
                    Some(StoreResp::Get(result))
                }
            }
        }
    })
    .await
}

/// The broker's handle on the simulated store.
pub struct SimStore {
    rpc: Arc<RpcClient>,
}

const STORE_TIMEOUT: Duration = Duration::from_secs(3);

impl SimStore {
    /// Connects from the current node.
    pub async fn connect(addr: SocketAddr) -> Self {
        SimStore { rpc: RpcClient::new(addr).await.expect("bind a client endpoint") }
    }
}

impl ObjectStoreClient for SimStore {
    fn put_create(&self, key: &str, bytes: Bytes) -> StoreFuture<'_, ()> {
        let key = key.to_owned();
        Box::pin(async move {
            match self.rpc.call::<StoreReq, StoreResp>(StoreReq::Put(key.clone(), bytes), STORE_TIMEOUT).await {
                Ok(StoreResp::Put(r)) => r,
                Ok(_) => Err(StoreError::Other("odd answer".into())),
                Err(e) => Err(StoreError::Other(format!("put {key}: {e:?}"))),
            }
        })
    }

    fn get_range(&self, key: &str, range: Range<u64>) -> StoreFuture<'_, Bytes> {
        let key = key.to_owned();
        Box::pin(async move {
            match self.rpc.call::<StoreReq, StoreResp>(StoreReq::Get(key.clone(), range), STORE_TIMEOUT).await {
                Ok(StoreResp::Get(r)) => r,
                Ok(_) => Err(StoreError::Other("odd answer".into())),
                Err(e) => Err(StoreError::Other(format!("get {key}: {e:?}"))),
            }
        })
    }

    fn describe(&self) -> String {
        "sim://store".into()
    }
}
