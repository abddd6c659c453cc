//! Session workers, one thread per core (MaxScale's routing workers, HAProxy's threads): each
//! runs a current-thread runtime with an event loop of its own, and a session lives on one
//! worker with all its backend connections, so that relaying a statement wakes no other thread.
//! Listeners accept on the main runtime and hand each connection to the worker with the fewest
//! sessions.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::error;

use crate::session::{self, ListenerContext};

/// A connection on its way to a worker.
struct Job {
    stream: std::net::TcpStream,
    peer: SocketAddr,
    ctx: Arc<ListenerContext>,
}

struct Worker {
    jobs: mpsc::UnboundedSender<Job>,
    /// Its sessions, open or being handed over.
    sessions: Arc<AtomicUsize>,
}

/// The session workers. Dropped, they stop: each thread ends, and its sessions with it.
pub struct Workers {
    workers: Vec<Worker>,
}

impl Workers {
    /// Starts `n` workers (at least one), or one per core.
    pub fn start(n: Option<usize>) -> io::Result<Workers> {
        let n = n.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        let mut workers = Vec::new();
        for i in 0..n.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (jobs, queue) = mpsc::unbounded_channel();
            let sessions = Arc::new(AtomicUsize::new(0));
            let count = sessions.clone();
            std::thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || runtime.block_on(serve(queue, count)))?;
            workers.push(Worker { jobs, sessions });
        }
        Ok(Workers { workers })
    }

    /// Runs a session for a connection a listener accepted, on the least busy worker.
    pub fn hand(&self, stream: TcpStream, peer: SocketAddr, ctx: Arc<ListenerContext>) {
        // The socket leaves the main runtime's event loop for the worker's.
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                error!(client = %peer, error = %e, "cannot hand a connection to a worker");
                return;
            }
        };
        let Some(worker) = self
            .workers
            .iter()
            .min_by_key(|w| w.sessions.load(Ordering::Relaxed))
        else {
            return;
        };
        worker.sessions.fetch_add(1, Ordering::Relaxed);
        if worker.jobs.send(Job { stream, peer, ctx }).is_err() {
            worker.sessions.fetch_sub(1, Ordering::Relaxed);
            error!(client = %peer, "a session worker has stopped; the connection is closed");
        }
    }

    /// The sessions on each worker, open or being handed over.
    pub fn sessions(&self) -> Vec<usize> {
        self.workers
            .iter()
            .map(|w| w.sessions.load(Ordering::Relaxed))
            .collect()
    }
}

/// A worker's loop: starts a session for each connection handed to it.
async fn serve(mut queue: mpsc::UnboundedReceiver<Job>, sessions: Arc<AtomicUsize>) {
    while let Some(Job { stream, peer, ctx }) = queue.recv().await {
        let counted = Counted(sessions.clone());
        tokio::spawn(async move {
            match TcpStream::from_std(stream) {
                Ok(stream) => session::run(stream, peer, ctx).await,
                Err(e) => error!(client = %peer, error = %e, "cannot take on a connection"),
            }
            drop(counted);
        });
    }
}

/// One of a worker's sessions, however its task ends.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
