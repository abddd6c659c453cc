//! The session-command history: what changed the session state (SET, USE, PREPARE, ...), kept
//! so that a backend opened later is brought to the same state before it is used.

use bytes::Bytes;
use switchyard_api::HistoryLimit;

/// One session command and whether it succeeded when the client ran it: a replay must end the
/// same way, or the new backend is not in the state the client expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub payload: Bytes,
    pub ok: bool,
}

/// A bounded, de-duplicated history, in commands and in bytes of payload. When a command would
/// exceed either limit, the history is
/// marked incomplete rather than pruned: replaying part of it would leave a backend in a state
/// the client never saw, so an incomplete history opens no new backends.
#[derive(Debug)]
pub struct History {
    entries: Vec<Entry>,
    limit: HistoryLimit,
    bytes: usize,
    complete: bool,
}

impl History {
    pub fn new(limit: HistoryLimit) -> Self {
        History {
            entries: Vec::new(),
            limit,
            bytes: 0,
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
            let bytes = &mut self.bytes;
            self.entries.retain(|e| {
                let keep = e.payload != payload;
                if !keep {
                    *bytes -= e.payload.len();
                }
                keep
            });
        }
        if self.entries.len() >= self.limit.commands
            || self.bytes + payload.len() > self.limit.bytes
        {
            self.complete = false;
            self.entries = Vec::new();
            self.bytes = 0;
            return;
        }
        self.bytes += payload.len();
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
        self.bytes = 0;
        self.complete = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn commands(commands: usize) -> HistoryLimit {
        HistoryLimit {
            commands,
            bytes: usize::MAX,
        }
    }

    #[test]
    fn dedup_keeps_the_latest_position() {
        let mut h = History::new(commands(10));
        h.record(b("SET @a=1"), true, true);
        h.record(b("SET @a=2"), true, true);
        h.record(b("SET @a=1"), true, true);
        let texts: Vec<_> = h.entries().iter().map(|e| e.payload.clone()).collect();
        assert_eq!(texts, vec![b("SET @a=2"), b("SET @a=1")]);
    }

    #[test]
    fn order_dependent_commands_are_all_kept() {
        let mut h = History::new(commands(10));
        h.record(b("SET @a=@a+1"), true, false);
        h.record(b("SET @a=@a+1"), true, false);
        assert_eq!(h.len(), 2);
    }

    #[test]
    fn overflow_marks_the_history_incomplete_until_cleared() {
        let mut h = History::new(commands(2));
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

    #[test]
    fn the_byte_limit_counts_what_is_kept() {
        let mut h = History::new(HistoryLimit {
            commands: 10,
            bytes: 16,
        });
        h.record(b("SET @a='xxxx'"), true, true);
        // Replacing an identical entry frees its bytes first.
        h.record(b("SET @a='xxxx'"), true, true);
        assert!(h.is_complete());
        assert_eq!(h.len(), 1);
        h.record(b("SET @b=1"), true, true);
        assert!(!h.is_complete());
        h.clear();
        h.record(b("SET @b=1"), true, true);
        assert!(h.is_complete());
    }
}
