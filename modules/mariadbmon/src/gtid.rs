//! MariaDB GTID positions (`domain-server-seq` lists such as `0-1-100,1-2-5`) and the distance
//! between two of them. Pure functions; a position that does not parse is `None`, never a panic.

/// One MariaDB global transaction id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gtid {
    /// Replication domain id.
    pub domain: u32,
    /// `server_id` of the server that wrote the transaction.
    pub server_id: u32,
    /// Sequence number within the domain.
    pub seq_no: u64,
}

/// Parses one `domain-server-seq` triple.
pub fn parse_gtid(text: &str) -> Option<Gtid> {
    let mut parts = text.trim().split('-');
    let domain = parts.next()?.trim().parse().ok()?;
    let server_id = parts.next()?.trim().parse().ok()?;
    let seq_no = parts.next()?.trim().parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some(Gtid {
        domain,
        server_id,
        seq_no,
    })
}

/// Parses a GTID list as `@@gtid_current_pos` or `@@gtid_binlog_pos` show it. The empty
/// string is the empty position; any malformed item makes the whole list `None`.
pub fn parse_list(text: &str) -> Option<Vec<Gtid>> {
    let text = text.trim();
    if text.is_empty() {
        return Some(Vec::new());
    }
    text.split(',').map(parse_gtid).collect()
}

/// The highest sequence number of `domain` in `list` (a binlog position may hold one GTID per
/// domain and server id); 0 when the domain is absent.
fn seq_in_domain(list: &[Gtid], domain: u32) -> u64 {
    list.iter()
        .filter(|g| g.domain == domain)
        .map(|g| g.seq_no)
        .max()
        .unwrap_or(0)
}

/// How many transactions `replica` is behind `primary`: for each domain of `primary`, the
/// primary's sequence number minus the replica's (0 when equal or ahead), summed. `None` when
/// either position does not parse.
pub fn behind(primary: &str, replica: &str) -> Option<u64> {
    let primary = parse_list(primary)?;
    let replica = parse_list(replica)?;
    let mut domains: Vec<u32> = primary.iter().map(|g| g.domain).collect();
    domains.sort_unstable();
    domains.dedup();
    Some(domains.into_iter().fold(0u64, |sum, d| {
        sum.saturating_add(seq_in_domain(&primary, d).saturating_sub(seq_in_domain(&replica, d)))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists() {
        assert_eq!(
            parse_list("0-1-100,1-2-5"),
            Some(vec![
                Gtid {
                    domain: 0,
                    server_id: 1,
                    seq_no: 100
                },
                Gtid {
                    domain: 1,
                    server_id: 2,
                    seq_no: 5
                },
            ])
        );
        assert_eq!(parse_list(""), Some(vec![]));
        assert_eq!(parse_list("  "), Some(vec![]));
        assert_eq!(parse_list(" 0-1-7 ,\n1-1-2").map(|l| l.len()), Some(2));
        assert_eq!(
            parse_gtid("4294967295-4294967295-18446744073709551615").map(|g| g.seq_no),
            Some(u64::MAX)
        );
    }

    #[test]
    fn garbage_is_none() {
        for bad in [
            "garbage",
            "0-1",
            "0-1-2-3",
            "0-1-x",
            "-1-1-1",
            "0-1-100,",
            ",",
            "0-1-100,,1-2-3",
            "0–1–100",
            "99999999999-1-1",
            "0-1-100;1-2-3",
        ] {
            assert_eq!(parse_list(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn distance_per_domain() {
        assert_eq!(behind("0-1-100", "0-1-100"), Some(0));
        assert_eq!(behind("0-1-100", "0-1-90"), Some(10));
        // A replica ahead of the primary (sampled a moment apart) is not behind.
        assert_eq!(behind("0-1-100", "0-1-105"), Some(0));
        assert_eq!(behind("0-1-100,1-2-5", "0-1-98,1-2-1"), Some(6));
        // A domain the replica has never seen counts whole.
        assert_eq!(behind("0-1-100,1-2-5", "0-1-100"), Some(5));
        // Domains only the replica has do not count.
        assert_eq!(behind("0-1-100", "0-1-100,7-3-50"), Some(0));
        // A binlog position with two server ids in one domain: the highest counts.
        assert_eq!(behind("0-1-100,0-2-120", "0-2-115"), Some(5));
        assert_eq!(behind("", "0-1-5"), Some(0));
        assert_eq!(behind("0-1-5", ""), Some(5));
        assert_eq!(behind("garbage", "0-1-5"), None);
        assert_eq!(behind("0-1-5", "garbage"), None);
        assert_eq!(
            behind("0-1-18446744073709551615,1-1-18446744073709551615", ""),
            Some(u64::MAX)
        );
    }
}
