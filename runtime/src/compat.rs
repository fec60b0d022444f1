//! The few places where tokio and madsim (the simulator, `--cfg madsim`)
//! differ in API. In a normal build these are tokio's own types.

use tokio::net::TcpStream;

#[cfg(not(madsim))]
pub use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
#[cfg(not(madsim))]
pub use tokio::task::JoinSet;

/// The read half of a split TCP stream.
#[cfg(madsim)]
pub type OwnedReadHalf = tokio::io::ReadHalf<TcpStream>;
/// The write half of a split TCP stream.
#[cfg(madsim)]
pub type OwnedWriteHalf = tokio::io::WriteHalf<TcpStream>;

/// Splits a TCP stream into independently owned halves.
pub fn split(stream: TcpStream) -> (OwnedReadHalf, OwnedWriteHalf) {
    #[cfg(not(madsim))]
    {
        stream.into_split()
    }
    #[cfg(madsim)]
    {
        tokio::io::split(stream)
    }
}

#[cfg(madsim)]
pub use sim_join_set::JoinSet;

/// madsim has no `JoinSet`: the listener's use of it (spawn, join_next, len,
/// shutdown) over plain tasks. A panicking task panics the simulation anyway.
#[cfg(madsim)]
mod sim_join_set {
    use std::future::Future;
    use tokio::sync::mpsc;
    use tokio::task::{JoinError, JoinHandle};

    /// A set of `()` tasks.
    pub struct JoinSet {
        handles: Vec<JoinHandle<()>>,
        done_tx: mpsc::UnboundedSender<()>,
        done_rx: mpsc::UnboundedReceiver<()>,
        live: usize,
    }

    impl Default for JoinSet {
        fn default() -> Self {
            Self::new()
        }
    }

    impl JoinSet {
        /// An empty set.
        pub fn new() -> Self {
            let (done_tx, done_rx) = mpsc::unbounded_channel();
            JoinSet { handles: Vec::new(), done_tx, done_rx, live: 0 }
        }

        /// Spawns `fut` into the set.
        pub fn spawn<F: Future<Output = ()> + Send + 'static>(&mut self, fut: F) {
            self.handles.retain(|h| !h.is_finished());
            let tx = self.done_tx.clone();
            self.handles.push(tokio::spawn(async move {
                fut.await;
                let _ = tx.send(());
            }));
            self.live += 1;
        }

        /// Waits for one task to finish; `None` when the set is empty.
        pub async fn join_next(&mut self) -> Option<Result<(), JoinError>> {
            if self.live == 0 {
                return None;
            }
            self.done_rx.recv().await?;
            self.live -= 1;
            Some(Ok(()))
        }

        /// True when no task is running.
        pub fn is_empty(&self) -> bool {
            self.live == 0
        }

        /// Tasks running.
        pub fn len(&self) -> usize {
            self.live
        }

        /// Aborts every task.
        pub async fn shutdown(&mut self) {
            for h in self.handles.drain(..) {
                h.abort();
            }
            self.live = 0;
        }
    }
}

/// `tokio::select!` for the server's tasks. Under madsim the branches are
/// polled in order (`biased`): tokio picks the first branch at random from a
/// process-wide seed the simulation cannot control, which would make a seed
/// replay differently. In a normal build it is `tokio::select!` itself.
#[cfg(not(madsim))]
#[macro_export]
macro_rules! det_select {
    ($($t:tt)*) => { ::tokio::select! { $($t)* } };
}

/// See the normal build's `det_select!`.
#[cfg(madsim)]
#[macro_export]
macro_rules! det_select {
    ($($t:tt)*) => { ::tokio::select! { biased; $($t)* } };
}
