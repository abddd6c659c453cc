//! The session-command history: what changed the session state (SET, USE, PREPARE, ...), kept
//! so that a backend opened later is brought to the same state before it is used.

use bytes::Bytes;

/// One session command and whether it succeeded when the client ran it: a replay must end the
/// same way, or the new backend is not in the state the client expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub payload: Bytes,
    pub ok: bool,
}

/// A bounded, de-duplicated history. When a command would exceed the limit, the history is
/// marked incomplete rather than pruned: replaying part of it would leave a backend in a state
/// the client never saw, so an incomplete history opens no new backends.
#[derive(Debug, Default)]
pub struct History {
    entries: Vec<Entry>,
    limit: usize,
    complete: bool,
}

impl History {
    pub fn new(limit: usize) -> Self {
        History {
            entries: Vec::new(),
            limit,
            complete: true,
        }
    }

    /// Records a command. With `dedup`, an identical earlier entry is dropped first: its effect
    /// is replaced by this one's.
    pub fn record(&mut self, payload: Bytes, ok: bool, dedup: bool) {
        if !self.complete {
            return;
        }
        if dedup {
            self.entries.retain(|e| e.payload != payload);
        }
        if self.entries.len() >= self.limit {
            self.complete = false;
            self.entries = Vec::new();
            return;
        }
        self.entries.push(Entry { payload, ok });
    }

    /// False once a command did not fit: then only the backends already open are in the
    /// session's state.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Starts afresh (COM_CHANGE_USER, COM_RESET_CONNECTION).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.complete = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn dedup_keeps_the_latest_position() {
        let mut h = History::new(10);
        h.record(b("SET @a=1"), true, true);
        h.record(b("SET @a=2"), true, true);
        h.record(b("SET @a=1"), true, true);
        let texts: Vec<_> = h.entries().iter().map(|e| e.payload.clone()).collect();
        assert_eq!(texts, vec![b("SET @a=2"), b("SET @a=1")]);
    }

    #[test]
    fn order_dependent_commands_are_all_kept() {
        let mut h = History::new(10);
        h.record(b("SET @a=@a+1"), true, false);
        h.record(b("SET @a=@a+1"), true, false);
        assert_eq!(h.len(), 2);
    }

    #[test]
    fn overflow_marks_the_history_incomplete_until_cleared() {
        let mut h = History::new(2);
        h.record(b("SET a=1"), true, true);
        h.record(b("SET b=1"), false, true);
        assert!(h.is_complete());
        h.record(b("SET c=1"), true, true);
        assert!(!h.is_complete());
        assert_eq!(h.len(), 0);
        h.record(b("SET d=1"), true, true);
        assert_eq!(h.len(), 0);
        h.clear();
        assert!(h.is_complete());
        h.record(b("SET d=1"), true, true);
        assert_eq!(h.len(), 1);
    }
}
