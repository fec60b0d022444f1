//! The `Admin` service: status, flush and drain of this broker, for operators
//! (`strata admin`). Each asks the driver, which owns the core.

use std::sync::Arc;

use tokio::sync::oneshot;
use tonic::{Request, Response, Status};

use super::proto::admin_server::{Admin, AdminServer};
use super::proto::{DrainRequest, DrainResponse, FlushRequest, FlushResponse, Member, StatusRequest, StatusResponse};
use super::InternalContext;
use crate::server::admin::{AdminRequest, Flushed};
use crate::server::driver::DriverMsg;

/// The service.
pub fn service(ctx: Arc<InternalContext>) -> AdminServer<AdminService> {
    AdminServer::new(AdminService { ctx })
}

/// Status, flush and drain of this broker.
#[derive(Debug)]
pub struct AdminService {
    ctx: Arc<InternalContext>,
}

fn stopping() -> Status {
    Status::unavailable("the broker is stopping")
}

impl AdminService {
    /// Sends `request` (made with a fresh reply channel) to the driver and waits for the answer.
    async fn ask<T>(&self, request: impl FnOnce(oneshot::Sender<T>) -> AdminRequest) -> Result<T, Status> {
        let (reply, answer) = oneshot::channel();
        self.ctx.driver.send(DriverMsg::Admin(request(reply))).await.map_err(|_| stopping())?;
        answer.await.map_err(|_| stopping())
    }
}

/// An error when objects failed while flushing (their producers were told to retry).
fn check_flushed(f: &Flushed) -> Result<(), Status> {
    if f.failed > 0 {
        return Err(Status::unavailable(format!(
            "{} object(s) failed to be written or committed while flushing (their producers were told to retry); \
             check the object store and the sequencer, then flush again",
            f.failed
        )));
    }
    Ok(())
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn status(&self, _request: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        let core = self.ask(AdminRequest::Status).await?;
        let counts = self.ctx.counters.snapshot();
        let (cache_hits, cache_misses) = self.ctx.cache.lock().unwrap_or_else(|p| p.into_inner()).stats();
        let directory = self.ctx.directory.borrow().clone();
        let members = core
            .members
            .iter()
            .map(|p| Member {
                node_id: p.node_id,
                host: p.host.clone(),
                port: u32::try_from(p.port).unwrap_or(0),
                rack: p.rack.clone().unwrap_or_default(),
                internal_address: if p.node_id == core.node_id {
                    self.ctx.internal_advertised.clone()
                } else {
                    directory.get(&p.node_id).cloned().unwrap_or_default()
                },
            })
            .collect();
        let f = core.flush;
        Ok(Response::new(StatusResponse {
            node_id: core.node_id,
            cluster_id: core.cluster_id,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            advertised: self.ctx.advertised.clone(),
            internal_advertised: self.ctx.internal_advertised.clone(),
            applied_revision: core.applied_revision,
            members,
            topics: core.topics as u64,
            partitions: core.partitions as u64,
            open_object_bytes: f.open_bytes as u64,
            inflight_objects: f.inflight_objects as u64,
            inflight_object_bytes: f.inflight_bytes,
            recent_objects: f.recent_objects as u64,
            recent_object_bytes: f.recent_bytes as u64,
            peer_reads_served: counts.peer_reads_served,
            peer_bytes_served: counts.peer_bytes_served,
            peer_reads_used: counts.peer_reads_used,
            peer_reads_missed: counts.peer_reads_missed,
            store_gets: counts.store_gets,
            cache_hits,
            cache_misses,
            uptime_ms: self.ctx.started.elapsed().as_millis() as u64,
            draining: core.draining,
            objects_committed: f.committed,
            objects_failed: f.failed,
        }))
    }

    async fn flush(&self, _request: Request<FlushRequest>) -> Result<Response<FlushResponse>, Status> {
        let f = self.ask(AdminRequest::Flush).await?;
        check_flushed(&f)?;
        Ok(Response::new(FlushResponse { objects: f.objects, applied_revision: f.applied_revision }))
    }

    async fn drain(&self, request: Request<DrainRequest>) -> Result<Response<DrainResponse>, Status> {
        let exit = request.into_inner().exit;
        let (reply, answer) = oneshot::channel();
        self.ctx.driver.send(DriverMsg::Admin(AdminRequest::Drain(reply))).await.map_err(|_| stopping())?;
        // The core has stopped taking produce and left itself out of the set
        // it names leaders from; now leave the set the other brokers watch.
        self.ctx.leave.send_replace(true);
        tracing::info!("draining: produce refused with NOT_LEADER_OR_FOLLOWER, leaving the live set, flushing");
        let f = answer.await.map_err(|_| stopping())?;
        check_flushed(&f)?;
        tracing::info!(objects = f.objects, revision = f.applied_revision, exit, "drained");
        if exit {
            // The graceful shutdown that follows still answers this request.
            self.ctx.exit.send_replace(true);
        }
        Ok(Response::new(DrainResponse { objects: f.objects, applied_revision: f.applied_revision, exiting: exit }))
    }
}
