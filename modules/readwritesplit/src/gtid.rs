//! MariaDB GTID positions (`domain-server-sequence`, comma-separated, one per domain) and the
//! one question causal reads ask of them: has a server's position reached the session's last
//! write? Allocation-free, as it runs for each replica a causal read considers.

/// One `domain-server-sequence` triple; the server id plays no part in ordering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Gtid {
    domain: u32,
    sequence: u64,
}

fn parse_one(text: &str) -> Option<Gtid> {
    let mut parts = text.trim().split('-');
    let domain = parts.next()?.parse().ok()?;
    let _server: u32 = parts.next()?.parse().ok()?;
    let sequence = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some(Gtid { domain, sequence })
}

fn entries(pos: &str) -> impl Iterator<Item = Option<Gtid>> + '_ {
    pos.split(',')
        .filter(|e| !e.trim().is_empty())
        .map(parse_one)
}

/// True if `pos` (a server's `gtid_current_pos`) has, in every domain of `target`, a sequence
/// number at least `target`'s. A malformed `target` is never reached, so that a read that
/// cannot be checked goes to the primary; malformed entries of `pos` are ignored.
pub(crate) fn reached(pos: &str, target: &str) -> bool {
    entries(target).all(|t| {
        let Some(t) = t else { return false };
        entries(pos)
            .flatten()
            .any(|p| p.domain == t.domain && p.sequence >= t.sequence)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_triples() {
        assert_eq!(
            parse_one(" 0-1-42 "),
            Some(Gtid {
                domain: 0,
                sequence: 42
            })
        );
        assert_eq!(parse_one("0-1"), None);
        assert_eq!(parse_one("0-1-2-3"), None);
        assert_eq!(parse_one("a-1-2"), None);
        assert_eq!(parse_one("0-1--2"), None);
    }

    #[test]
    fn compares_per_domain() {
        assert!(reached("0-1-42", "0-1-42"));
        assert!(reached("0-1-43", "0-1-42"));
        assert!(!reached("0-1-41", "0-1-42"));
        // The server id does not matter: after a failover the sequence goes on.
        assert!(reached("0-2-50", "0-1-42"));
        // Every domain of the target must be reached; other domains of the position do not
        // matter.
        assert!(reached("1-1-5,0-1-42", "0-1-40"));
        assert!(reached("0-1-42, 1-1-7", "0-1-42,1-1-7"));
        assert!(!reached("0-1-42,1-1-6", "0-1-42,1-1-7"));
        assert!(!reached("1-1-100", "0-1-1"));
        assert!(!reached("", "0-1-1"));
        // A target with nothing to wait for is reached.
        assert!(reached("0-1-1", ""));
        // Malformed: targets are never reached; bad position entries are skipped.
        assert!(!reached("0-1-42", "x"));
        assert!(reached("junk,0-1-42", "0-1-42"));
        // Large sequence numbers.
        assert!(reached(
            "0-1-18446744073709551615",
            "0-1-18446744073709551614"
        ));
    }
}
