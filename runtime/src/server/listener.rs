//! The accept loop: one task per connection, numbered from 1. On shutdown it
//! stops accepting, lets the connections answer what they read (bounded by
//! the drain timeout), then returns.

use std::sync::Arc;
use std::time::Duration;

use strata_core::io::ConnId;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::connection::{run_connection, stopping, ConnConfig};
use crate::compat::JoinSet;

/// Accepts connections until `stop` turns true, then drains them.
pub async fn run_listener(
    listener: TcpListener,
    cfg: Arc<ConnConfig>,
    stop: watch::Receiver<bool>,
    drain_timeout: Duration,
) {
    let mut conns = JoinSet::new();
    let mut next_conn: ConnId = 1;
    let mut stop_wait = stop.clone();
    loop {
        crate::det_select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
                    }
                    let conn = next_conn;
                    next_conn += 1;
                    conns.spawn(run_connection(conn, stream, peer, cfg.clone(), stop.clone()));
                }
                Err(e) => {
                    // Typically out of file descriptors: wait a little rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection (raise the open-files limit, ulimit -n, if this repeats)");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(done) = conns.join_next(), if !conns.is_empty() => log_join(done),
            () = stopping(&mut stop_wait) => break,
        }
    }
    drop(listener);
    if conns.is_empty() {
        return;
    }
    tracing::info!(connections = conns.len(), "waiting for in-flight requests to be answered");
    let deadline = tokio::time::sleep(drain_timeout);
    tokio::pin!(deadline);
    loop {
        crate::det_select! {
            done = conns.join_next() => match done {
                Some(done) => log_join(done),
                None => break,
            },
            () = &mut deadline => {
                tracing::warn!(
                    connections = conns.len(),
                    "requests still in flight after {} ms; closing their connections unanswered",
                    drain_timeout.as_millis()
                );
                conns.shutdown().await;
                break;
            }
        }
    }
}

fn log_join(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        if e.is_panic() {
            tracing::error!(error = %e, "a connection task panicked");
        }
    }
}
