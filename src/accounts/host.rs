//! The `Host` column of an account, matched as the servers match it.

use std::net::IpAddr;

/// A `Host` column value: an address, a pattern with `%` and `_`, a netmask or `localhost`.
#[derive(Debug, Clone)]
pub struct HostPattern {
    pub text: String,
    kind: HostKind,
}

#[derive(Debug, Clone)]
enum HostKind {
    Exact(IpAddr),
    Wildcard,
    Netmask(u32, u32),
    Localhost,
    /// A host name: the proxy does not resolve names, like a server with skip-name-resolve.
    Name,
}

impl HostPattern {
    pub fn parse(text: &str) -> Self {
        Self::parse_for(text, true)
    }

    /// As the servers read it: `localhost` is the loopback address only when they resolve
    /// names; with `skip_name_resolve` it matches socket connections, never a TCP client.
    pub fn parse_for(text: &str, names_resolved: bool) -> Self {
        let lower = text.to_ascii_lowercase();
        let kind = if lower == "localhost" && !names_resolved {
            HostKind::Name
        } else if lower == "localhost" {
            HostKind::Localhost
        } else if let Ok(ip) = lower.parse::<IpAddr>() {
            HostKind::Exact(ip)
        } else if let Some((net, mask)) = lower.split_once('/') {
            match (
                net.parse::<std::net::Ipv4Addr>(),
                mask.parse::<std::net::Ipv4Addr>(),
            ) {
                (Ok(n), Ok(m)) => HostKind::Netmask(u32::from(n), u32::from(m)),
                _ => HostKind::Name,
            }
        } else if lower.is_empty() || lower.contains(['%', '_']) {
            HostKind::Wildcard
        } else {
            HostKind::Name
        };
        HostPattern { text: lower, kind }
    }

    pub fn matches(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match &self.kind {
            HostKind::Exact(a) => a.to_canonical() == ip,
            // What the loopback address resolves to; other 127/8 addresses have other names.
            HostKind::Localhost => {
                ip == IpAddr::from([127, 0, 0, 1])
                    || ip == IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
            }
            HostKind::Netmask(net, mask) => match ip {
                IpAddr::V4(v4) => u32::from(v4) & mask == *net,
                IpAddr::V6(_) => false,
            },
            HostKind::Wildcard => {
                self.text.is_empty() || like(self.text.as_bytes(), ip.to_string().as_bytes())
            }
            HostKind::Name => false,
        }
    }

    /// Higher is more specific.
    pub(super) fn specificity(&self) -> usize {
        match &self.kind {
            HostKind::Exact(_) | HostKind::Localhost | HostKind::Name => usize::MAX,
            HostKind::Netmask(..) => usize::MAX - 1,
            HostKind::Wildcard => self.text.find(['%', '_']).unwrap_or(0),
        }
    }
}

/// SQL `LIKE` matching with `%` and `_` (no escapes: host names have none).
fn like(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'%', rest)) => (0..=text.len()).any(|i| like(rest, &text[i..])),
        Some((b'_', rest)) => !text.is_empty() && like(rest, &text[1..]),
        Some((c, rest)) => {
            text.first().is_some_and(|t| t.eq_ignore_ascii_case(c)) && like(rest, &text[1..])
        }
    }
}
