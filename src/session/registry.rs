//! The live sessions of the process, by the connection id their clients see. Touched when a
//! session starts, changes backend or ends, and by `KILL`; never on the statement path.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use switchyard_api::Server;

/// What `KILL <id>` needs to know of a session.
#[derive(Debug, Clone)]
pub struct SessionEntry {
    pub user: String,
    /// The backend servers and the thread id the session has on each.
    pub backends: Vec<(Arc<Server>, u32)>,
}

#[derive(Debug, Default)]
pub struct SessionRegistry {
    next_id: AtomicU32,
    sessions: Mutex<HashMap<u32, SessionEntry>>,
}

impl SessionRegistry {
    /// A new connection id; ids start at 1 and skip 0 when they wrap.
    pub fn next_id(&self) -> u32 {
        loop {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
            if id != 0 {
                return id;
            }
        }
    }

    pub fn set(&self, id: u32, entry: SessionEntry) {
        self.lock().insert(id, entry);
    }

    pub fn get(&self, id: u32) -> Option<SessionEntry> {
        self.lock().get(&id).cloned()
    }

    pub fn remove(&self, id: u32) {
        self.lock().remove(&id);
    }

    /// How many sessions are live.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, SessionEntry>> {
        // A panic while holding this lock cannot leave the map inconsistent: take it anyway.
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Removes a session from the registry when the session ends, however it ends.
pub struct Registration {
    pub registry: Arc<SessionRegistry>,
    pub id: u32,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.remove(self.id);
    }
}
