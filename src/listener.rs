//! A listener: accepts client connections and hands each to a session worker.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::{error, info};

use crate::session::ListenerContext;
use crate::workers::Workers;

/// A listener accepting.
pub struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Running {
    /// Stops accepting; the socket is closed when this returns.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        if let Err(e) = self.task.await {
            error!(error = %e, "a listener task failed");
        }
    }
}

/// Starts accepting on `listener`; each session goes to a worker with the context in force.
pub fn spawn(
    listener: TcpListener,
    ctx: Arc<ArcSwap<ListenerContext>>,
    workers: Arc<Workers>,
) -> Running {
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(run(listener, ctx, workers, stopped));
    Running { stop, task }
}

/// Accepts clients until told to stop, then closes the socket. Each session gets the context
/// in force when it is accepted (a reload replaces it). Accept errors (such as running out of
/// file descriptors) are logged and retried with a growing pause instead of ending the
/// listener.
async fn run(
    listener: TcpListener,
    ctx: Arc<ArcSwap<ListenerContext>>,
    workers: Arc<Workers>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut backoff = Duration::from_millis(5);
    let name = ctx.load().listener.clone();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut stop => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(5);
                workers.hand(stream, peer, ctx.load_full());
            }
            Err(e) => {
                error!(listener = %name, error = %e, "accept failed; pausing {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
    info!(listener = %name, "listener stopped");
}
