//! Client address patterns for module options that include or exclude clients: an IP address
//! (`10.1.2.3`, `::1`) or a network in CIDR notation (`10.0.0.0/8`, `fd00::/8`).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// An IP address or a network; matches client addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPattern {
    network: IpAddr,
    prefix: u8,
}

impl AddressPattern {
    /// True if `ip` is the address or lies in the network. An IPv4 client seen through an
    /// IPv6 socket (`::ffff:10.1.2.3`) matches IPv4 patterns.
    pub fn matches(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                prefix_eq(u32::from(n).into(), u32::from(a).into(), self.prefix, 32)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                prefix_eq(u128::from(n), u128::from(a), self.prefix, 128)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: u128, b: u128, prefix: u8, bits: u8) -> bool {
    let shift = bits - prefix;
    shift >= bits || (a >> shift) == (b >> shift)
}

impl FromStr for AddressPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let network: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("'{s}' is not an IP address or a network like 10.0.0.0/8"))?;
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(p) => match p.trim().parse::<u8>() {
                Ok(p) if p <= bits => p,
                _ => return Err(format!("'{s}': the prefix length must be 0-{bits}")),
            },
        };
        Ok(AddressPattern { network, prefix })
    }
}

impl fmt::Display for AddressPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl<'de> Deserialize<'de> for AddressPattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, ip: &str) -> bool {
        pattern
            .parse::<AddressPattern>()
            .unwrap()
            .matches(ip.parse().unwrap())
    }

    #[test]
    fn addresses_and_networks() {
        assert!(m("10.1.2.3", "10.1.2.3"));
        assert!(!m("10.1.2.3", "10.1.2.4"));
        assert!(m("10.0.0.0/8", "10.200.1.1"));
        assert!(!m("10.0.0.0/8", "11.0.0.1"));
        assert!(m("0.0.0.0/0", "192.168.1.1"));
        assert!(m("127.0.0.1", "::ffff:127.0.0.1"));
        assert!(m("fd00::/8", "fd12::1"));
        assert!(!m("fd00::/8", "10.0.0.1"));
        assert!(m("::/0", "::1"));
        assert!(m("192.168.1.130/25", "192.168.1.255"));
        assert!(!m("192.168.1.130/25", "192.168.1.127"));
        assert!(!m("0.0.0.0/0", "fe80::1"));
        assert!(m("2001:db8:abcd:12::/63", "2001:db8:abcd:13::9"));
        assert!(!m("2001:db8:abcd:12::/63", "2001:db8:abcd:14::9"));
    }

    #[test]
    fn bad_patterns() {
        for bad in ["", "10.0.0", "10.0.0.0/33", "host", "::1/129", "10.0.0.0/x"] {
            assert!(bad.parse::<AddressPattern>().is_err(), "{bad}");
        }
    }
}
