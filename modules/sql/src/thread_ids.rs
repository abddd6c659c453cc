//! What a statement does with connection ids. The ids a client sees are the proxy's own, so a
//! KILL of one is translated to the backend's thread id, and results that show them are
//! rewritten (see `switchyard_protocol::thread_ids`).

use crate::kill;

/// A statement's dealings with connection ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadIds {
    /// Whether it is a KILL of a connection id.
    pub kill: kill::Parsed,
    /// Whether its results may show connection ids ([`reads_thread_ids`]).
    pub read: bool,
}

/// What `sql` does with connection ids.
#[inline]
pub fn thread_ids(sql: &[u8]) -> ThreadIds {
    ThreadIds {
        kill: kill::parse(sql),
        read: reads_thread_ids(sql),
    }
}

/// True if `sql` mentions `PROCESSLIST` (SHOW PROCESSLIST, information_schema.PROCESSLIST,
/// performance_schema's PROCESSLIST_ID) or `CONNECTION_ID`, in any case, anywhere: a mention
/// in a string or comment only costs a look at the result's column definitions.
///
/// This runs for every statement and nearly none has either word, so it looks only where the
/// SIMD search for a rare byte stops: an `L` (`processL`) or a `_` (`connection_`).
pub fn reads_thread_ids(sql: &[u8]) -> bool {
    memchr::memchr3_iter(b'l', b'L', b'_', sql).any(|at| {
        let before =
            |word: &[u8]| at >= word.len() && sql[at - word.len()..at].eq_ignore_ascii_case(word);
        if sql[at] == b'_' {
            before(b"connection")
                && sql
                    .get(at + 1..at + 3)
                    .is_some_and(|id| id.eq_ignore_ascii_case(b"id"))
        } else {
            before(b"process")
                && sql
                    .get(at + 1..at + 4)
                    .is_some_and(|w| w.eq_ignore_ascii_case(b"ist"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions() {
        assert!(reads_thread_ids(b"SHOW FULL PROCESSLIST"));
        assert!(reads_thread_ids(
            b"select id from information_schema.processlist"
        ));
        assert!(reads_thread_ids(b"SELECT Connection_Id()"));
        assert!(!reads_thread_ids(b"SELECT c FROM sbtest1 WHERE id = 5"));
        assert!(!reads_thread_ids(b"SELECT connection"));
        assert!(!reads_thread_ids(b"SELECT connection_"));
        assert!(!reads_thread_ids(b"SELECT processl FROM l_"));
        assert!(reads_thread_ids(b"SELECT 1 FROM ProcessList"));
    }
}
