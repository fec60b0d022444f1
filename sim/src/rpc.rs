//! Request/response over madsim's simulated network (datagrams that a clogged
//! link drops): the transport of the simulated sequencer and object store.
//! A lost request or answer shows as a timeout, whose outcome is unknown.

use std::any::Any;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use madsim::net::Endpoint;

/// Tag of requests at a server.
pub const TAG_REQUEST: u64 = 1;

/// A request as it travels: the tag its answer goes to, and the body.
pub struct Envelope<T> {
    pub reply_tag: u64,
    pub body: T,
}

/// The client side: one endpoint on the calling node.
pub struct RpcClient {
    ep: Endpoint,
    server: SocketAddr,
    next_tag: AtomicU64,
}

/// Why a call has no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// No answer in time: the request may or may not have been carried out.
    Timeout,
    /// The local endpoint could not send.
    Net(String),
}

impl RpcClient {
    /// Binds an endpoint on the current node.
    pub async fn new(server: SocketAddr) -> std::io::Result<Arc<Self>> {
        let ep = Endpoint::bind("0.0.0.0:0").await?;
        // Tags start at random: a restarted node may get its predecessor's port, and
        // a late answer to the predecessor must not match a request of ours.
        let first = madsim::rand::random::<u64>() >> 8;
        Ok(Arc::new(RpcClient { ep, server, next_tag: AtomicU64::new(first) }))
    }

    /// Sends `req` and waits up to `timeout` for the answer.
    pub async fn call<Req, Resp>(&self, req: Req, timeout: Duration) -> Result<Resp, CallError>
    where
        Req: Send + Sync + 'static,
        Resp: Send + Sync + 'static,
    {
        let reply_tag = self.next_tag.fetch_add(1, Ordering::Relaxed);
        let env: Box<dyn Any + Send + Sync> = Box::new(Envelope { reply_tag, body: req });
        // A send to a clogged link or a dead node is simply lost.
        let _ = self.ep.send_to_raw(self.server, TAG_REQUEST, env).await;
        match tokio::time::timeout(timeout, self.ep.recv_from_raw(reply_tag)).await {
            Ok(Ok((_, from))) if from != self.server => Err(CallError::Net(format!("answer from {from}"))),
            Ok(Ok((payload, _))) => match payload.downcast::<Resp>() {
                Ok(resp) => Ok(*resp),
                Err(_) => Err(CallError::Net("answer of the wrong type".into())),
            },
            Ok(Err(e)) => Err(CallError::Net(e.to_string())),
            Err(_) => Err(CallError::Timeout),
        }
    }
}

/// Serves requests of type `Req` on `addr` (on the current node) with `handle`,
/// one task per request; `handle` returns `None` to drop the answer.
pub async fn serve<Req, Resp, F, Fut>(addr: SocketAddr, handle: F)
where
    Req: Send + Sync + 'static,
    Resp: Send + Sync + 'static,
    F: Fn(Req) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Option<Resp>> + Send + 'static,
{
    let ep = Arc::new(Endpoint::bind(addr).await.expect("bind a simulated server"));
    let handle = Arc::new(handle);
    loop {
        let Ok((payload, from)) = ep.recv_from_raw(TAG_REQUEST).await else { continue };
        let Ok(env) = payload.downcast::<Envelope<Req>>() else { continue };
        let ep = ep.clone();
        let handle = handle.clone();
        tokio::spawn(async move {
            let Envelope { reply_tag, body } = *env;
            if let Some(resp) = handle(body).await {
                let resp: Box<dyn Any + Send + Sync> = Box::new(resp);
                let _ = ep.send_to_raw(from, reply_tag, resp).await;
            }
        });
    }
}
