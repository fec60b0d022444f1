//! `strata admin status|flush|drain`: asks a running broker's internal gRPC
//! admin service and prints the answer in plain words (or JSON).

use std::time::Duration;

use serde_json::json;
use tonic::transport::Endpoint;

use crate::cli::{AdminAction, AdminArgs};
use crate::grpc::proto::admin_client::AdminClient;
use crate::grpc::proto::{DrainRequest, FlushRequest, StatusRequest, StatusResponse};

/// Why `strata admin` could not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum AdminCliError {
    /// `--addr` is not host:port.
    #[error("--addr {addr:?} is not host:port (the broker's --internal-listen): {reason}")]
    BadAddress { addr: String, reason: String },
    /// Nothing answers there.
    #[error("cannot reach the broker's internal listener at {addr}: {reason}. Is the broker running, and is \
             --addr its --internal-listen (default: its Kafka port + 1)?")]
    Connect { addr: String, reason: String },
    /// The broker answered with an error.
    #[error("the broker at {addr} answered {code:?}: {message}")]
    Refused { addr: String, code: tonic::Code, message: String },
}

/// Runs `strata admin ...` and returns what to print.
pub async fn run(args: &AdminArgs) -> Result<String, AdminCliError> {
    let addr = args.addr.clone();
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| AdminCliError::BadAddress { addr: addr.clone(), reason: e.to_string() })?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_millis(args.timeout_ms));
    let channel = endpoint.connect().await.map_err(|e| AdminCliError::Connect { addr: addr.clone(), reason: source_chain(&e) })?;
    let mut client = AdminClient::new(channel);
    let refused = |s: tonic::Status| AdminCliError::Refused { addr: addr.clone(), code: s.code(), message: s.message().to_owned() };
    Ok(match args.action {
        AdminAction::Status => {
            let s = client.status(StatusRequest {}).await.map_err(refused)?.into_inner();
            if args.json {
                status_json(&s).to_string()
            } else {
                status_text(&s)
            }
        }
        AdminAction::Flush => {
            let f = client.flush(FlushRequest {}).await.map_err(refused)?.into_inner();
            if args.json {
                json!({"objects": f.objects, "applied_revision": f.applied_revision}).to_string()
            } else {
                format!("flushed: {} object(s) committed; applied revision {}", f.objects, f.applied_revision)
            }
        }
        AdminAction::Drain { exit } => {
            let d = client.drain(DrainRequest { exit }).await.map_err(refused)?.into_inner();
            if args.json {
                json!({"objects": d.objects, "applied_revision": d.applied_revision, "exiting": d.exiting}).to_string()
            } else {
                format!(
                    "drained: produce is refused here (clients moved to the other brokers), out of the live set; \
                     {} object(s) committed; applied revision {}; {}",
                    d.objects,
                    d.applied_revision,
                    if d.exiting { "the broker is exiting" } else { "the broker keeps serving fetches until stopped" }
                )
            }
        }
    })
}

/// An error and its sources, one after the other (tonic's transport errors say little at the top).
fn source_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn status_text(s: &StatusResponse) -> String {
    let members: Vec<String> = s
        .members
        .iter()
        .map(|m| {
            let mut t = format!("{} at {}:{}", m.node_id, m.host, m.port);
            if !m.internal_address.is_empty() {
                t.push_str(&format!(" (internal {})", m.internal_address));
            }
            if !m.rack.is_empty() {
                t.push_str(&format!(" rack {}", m.rack));
            }
            t
        })
        .collect();
    let lines = [
        format!(
            "broker {} of cluster {} (strata {}), Kafka at {}, internal at {}",
            s.node_id, s.cluster_id, s.version, s.advertised, s.internal_advertised
        ),
        format!(
            "up {:.1} s; applied revision {}; {}",
            s.uptime_ms as f64 / 1000.0,
            s.applied_revision,
            if s.draining { "DRAINING (produce refused, out of the live set)" } else { "taking produce" }
        ),
        format!("live brokers: {}", members.join(", ")),
        format!("topics {}, partitions {}", s.topics, s.partitions),
        format!(
            "objects: open {} bytes; in flight {} ({} bytes); committed {}, failed {}; held in memory {} ({} bytes)",
            s.open_object_bytes,
            s.inflight_objects,
            s.inflight_object_bytes,
            s.objects_committed,
            s.objects_failed,
            s.recent_objects,
            s.recent_object_bytes
        ),
        format!(
            "reads: from peers {} (missed {}), object-store GETs {}, cache hits {} misses {}; served to peers {} ({} bytes)",
            s.peer_reads_used, s.peer_reads_missed, s.store_gets, s.cache_hits, s.cache_misses, s.peer_reads_served, s.peer_bytes_served
        ),
    ];
    lines.join("\n")
}

fn status_json(s: &StatusResponse) -> serde_json::Value {
    let members: Vec<serde_json::Value> = s
        .members
        .iter()
        .map(|m| {
            json!({
                "node_id": m.node_id, "host": m.host, "port": m.port,
                "rack": if m.rack.is_empty() { None } else { Some(&m.rack) },
                "internal_address": if m.internal_address.is_empty() { None } else { Some(&m.internal_address) },
            })
        })
        .collect();
    json!({
        "node_id": s.node_id,
        "cluster_id": s.cluster_id,
        "version": s.version,
        "advertised": s.advertised,
        "internal_advertised": s.internal_advertised,
        "applied_revision": s.applied_revision,
        "members": members,
        "topics": s.topics,
        "partitions": s.partitions,
        "open_object_bytes": s.open_object_bytes,
        "inflight_objects": s.inflight_objects,
        "inflight_object_bytes": s.inflight_object_bytes,
        "recent_objects": s.recent_objects,
        "recent_object_bytes": s.recent_object_bytes,
        "objects_committed": s.objects_committed,
        "objects_failed": s.objects_failed,
        "peer_reads_served": s.peer_reads_served,
        "peer_bytes_served": s.peer_bytes_served,
        "peer_reads_used": s.peer_reads_used,
        "peer_reads_missed": s.peer_reads_missed,
        "store_gets": s.store_gets,
        "cache_hits": s.cache_hits,
        "cache_misses": s.cache_misses,
        "uptime_ms": s.uptime_ms,
        "draining": s.draining,
    })
}
