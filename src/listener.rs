//! A listener: accepts client connections and starts a session task for each.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{error, info};

use crate::session::{self, ListenerContext};

/// Accepts clients until `shutdown` turns true. Accept errors (such as running out of file
/// descriptors) are logged and retried with a growing pause instead of ending the listener.
pub async fn run(
    listener: TcpListener,
    ctx: Arc<ListenerContext>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(5);
                tokio::spawn(session::run(stream, peer, ctx.clone()));
            }
            Err(e) => {
                error!(listener = %ctx.listener, error = %e, "accept failed; pausing {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
    info!(listener = %ctx.listener, "listener stopped");
}
