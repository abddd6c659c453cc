//! The live sessions of the process, by the connection id their clients see. Touched when a
//! session starts, changes backend or ends, by `KILL` and by the admin API; on the statement
//! path only through [`LiveState`]'s atomics.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwapOption;
use switchyard_api::{Server, ServerName, SessionId};

/// What `KILL <id>` and the admin API need to know of a session.
#[derive(Debug, Clone)]
pub struct SessionEntry {
    pub user: String,
    pub client: SocketAddr,
    pub service: Arc<str>,
    pub listener: Arc<str>,
    pub started: SystemTime,
    /// The backend servers and the thread id the session has on each.
    pub backends: Vec<(Arc<Server>, u32)>,
    pub live: Arc<LiveState>,
}

/// What changes as a session runs, kept where the admin API can read it without a lock.
#[derive(Debug, Default)]
pub struct LiveState {
    /// The server status flags of the last reply.
    status: AtomicU16,
    /// The default database.
    db: ArcSwapOption<String>,
}

impl LiveState {
    pub fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::Relaxed);
    }

    pub fn in_transaction(&self) -> bool {
        self.status.load(Ordering::Relaxed) & switchyard_protocol::caps::SERVER_STATUS_IN_TRANS != 0
    }

    pub fn set_db(&self, db: Option<&str>) {
        self.db.store(db.map(|d| Arc::new(d.to_string())));
    }

    pub fn db(&self) -> Option<String> {
        self.db.load().as_deref().cloned()
    }
}

#[derive(Debug, Default)]
pub struct SessionRegistry {
    next_id: AtomicU32,
    sessions: Mutex<HashMap<SessionId, SessionEntry>>,
}

impl SessionRegistry {
    /// A new connection id; ids start at 1 and skip 0 when they wrap.
    pub fn next_id(&self) -> SessionId {
        loop {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
            if id != 0 {
                return SessionId(id);
            }
        }
    }

    pub fn set(&self, id: SessionId, entry: SessionEntry) {
        self.lock().insert(id, entry);
    }

    pub fn get(&self, id: SessionId) -> Option<SessionEntry> {
        self.lock().get(&id).cloned()
    }

    pub fn remove(&self, id: SessionId) {
        self.lock().remove(&id);
    }

    /// Every live session, by id.
    pub fn list(&self) -> Vec<(SessionId, SessionEntry)> {
        let mut all: Vec<_> = self.lock().iter().map(|(id, e)| (*id, e.clone())).collect();
        all.sort_by_key(|(id, _)| *id);
        all
    }

    /// The thread ids sessions have on `server`, each with the id of its session.
    pub fn threads_on(&self, server: &ServerName) -> HashMap<u64, u64> {
        let sessions = self.lock();
        let threads = sessions.iter().flat_map(|(id, e)| {
            e.backends
                .iter()
                .filter(|(s, _)| &s.name == server)
                .map(|(_, thread)| (u64::from(*thread), u64::from(id.0)))
        });
        threads.collect()
    }

    /// How many sessions are live.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, SessionEntry>> {
        // A panic while holding this lock cannot leave the map inconsistent: take it anyway.
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Removes a session from the registry when the session ends, however it ends.
pub struct Registration {
    pub registry: Arc<SessionRegistry>,
    pub id: SessionId,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.remove(self.id);
    }
}
