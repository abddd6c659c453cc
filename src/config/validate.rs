//! Checks across fields: unique names, references between sections, addresses, limits.
//!
//! They run on the typed config and point at the YAML nodes the values came from. Sections or
//! items that already failed to deserialize (pruned) are skipped, and names are taken from the
//! YAML itself, so that one mistake is not reported again as a chain of others (a server with
//! a misspelled key is still a known server for the services that name it).

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::de::Pruned;
use super::yaml::{Kind, Location, Node};
use super::{Config, ConfigError};

/// The items of a sequence that deserialized, in order: the i-th is where the i-th typed item
/// came from. Empty for a missing or null node.
pub(crate) fn live_items<'a>(node: Option<&'a Node>, pruned: &Pruned) -> Vec<&'a Node> {
    match node.map(|n| &n.kind) {
        Some(Kind::Seq(items)) => items.iter().filter(|i| !pruned.contains(&i.id)).collect(),
        _ => Vec::new(),
    }
}

pub(crate) fn check(
    config: &Config,
    root: &Node,
    pruned: &Pruned,
    origin: &str,
    errors: &mut Vec<ConfigError>,
) {
    let mut checker = Checker {
        origin,
        pruned,
        errors,
    };
    checker.threads(config, root);
    checker.log(config, root);
    let servers = checker.section(root, "servers", "server");
    let services = checker.section(root, "services", "service");
    let listeners = checker.section(root, "listeners", "listener");
    let server_names = declared_names(root, "servers", pruned);
    let service_names = declared_names(root, "services", pruned);
    let monitor_names = declared_names(root, "monitors", pruned);
    let monitors = live_items(root.get("monitors"), pruned);
    if monitors.len() == config.monitors.len() {
        let mut names = Names::new("monitor");
        for (monitor, item) in config.monitors.iter().zip(monitors) {
            checker.name(&mut names, &monitor.name, item);
            checker.not_empty(&monitor.module, item, "module");
            checker.not_empty(&monitor.user, item, "user");
            checker.service_servers(&monitor.servers, item, server_names.as_deref());
        }
    }
    let filter_names = declared_names(root, "filters", pruned);
    let filters = live_items(root.get("filters"), pruned);
    if filters.len() == config.filters.len() {
        let mut names = Names::new("filter");
        for (filter, item) in config.filters.iter().zip(filters) {
            checker.name(&mut names, &filter.name, item);
            checker.not_empty(&filter.module, item, "module");
        }
    }
    if let (Some(admin), Some(entry)) = (&config.admin, root.entry("admin")) {
        let item = &entry.value;
        let host = checker.address(&admin.address, item).map(|(host, _)| host);
        match (&admin.user, &admin.password) {
            (Some(_), None) => checker.at(None, item, "admin.user needs admin.password"),
            (None, Some(_)) => checker.at(
                item.get("password"),
                item,
                "admin.password needs admin.user",
            ),
            (None, None) if host.as_deref().is_some_and(|h| !is_loopback(h)) => checker.at(
                item.get("address"),
                item,
                "the admin API listens beyond this machine: set admin.user and admin.password, \
                 or listen on a loopback address like 127.0.0.1",
            ),
            _ => {}
        }
    }
    checker.not_zero(config.drain_timeout, root, "drain_timeout");
    checker.not_zero(config.auth_block_time, root, "auth_block_time");

    if let Some(items) = aligned(servers, config.servers.len()) {
        let mut names = Names::new("server");
        for (server, item) in config.servers.iter().zip(items) {
            checker.name(&mut names, &server.name, item);
            checker.address(&server.address, item);
        }
    }

    if let Some(items) = aligned(services, config.services.len()) {
        let mut names = Names::new("service");
        for (service, item) in config.services.iter().zip(items) {
            checker.name(&mut names, &service.name, item);
            checker.not_empty(&service.router, item, "router");
            checker.not_empty(&service.user, item, "user");
            checker.service_servers(&service.servers, item, server_names.as_deref());
            checker.service_filters(&service.filters, item, filter_names.as_deref());
            checker.not_zero(service.connect_timeout, item, "connect_timeout");
            if let (Some(name), Some(known), Some(node)) =
                (&service.monitor, &monitor_names, item.get("monitor"))
            {
                match config.monitors.iter().find(|m| &m.name == name) {
                    None if !known.contains(name) => checker.at(
                        Some(node),
                        item,
                        format!(
                            "unknown monitor '{name}' ({})",
                            known_list(known, "monitors")
                        ),
                    ),
                    None => {}
                    Some(monitor) => {
                        let unmonitored: Vec<&str> = service
                            .servers
                            .iter()
                            .filter(|s| !monitor.servers.contains(s))
                            .map(String::as_str)
                            .collect();
                        if !unmonitored.is_empty() {
                            checker.at(
                                Some(node),
                                item,
                                format!(
                                    "monitor '{name}' does not check {}: add them to its servers",
                                    unmonitored.join(", ")
                                ),
                            );
                        }
                    }
                }
            }
            for (value, key) in [
                (service.max_connections, "max_connections"),
                (service.max_pending_logins, "max_pending_logins"),
                (
                    service.max_pending_logins_per_host,
                    "max_pending_logins_per_host",
                ),
            ] {
                if value == 0 {
                    checker.at(item.get(key), item, "must be at least 1");
                }
            }
        }
    }

    if let Some(items) = aligned(listeners, config.listeners.len()) {
        let mut names = Names::new("listener");
        let mut bound: Vec<(String, u16, &str, Location)> = Vec::new();
        for (listener, item) in config.listeners.iter().zip(items) {
            checker.name(&mut names, &listener.name, item);
            if let (Some(known), Some(node)) = (&service_names, item.get("service")) {
                if !known.contains(&listener.service) {
                    checker.at(
                        Some(node),
                        item,
                        format!(
                            "unknown service '{}' ({})",
                            listener.service,
                            known_list(known, "services")
                        ),
                    );
                }
            }
            let Some((host, port)) = checker.address(&listener.address, item) else {
                continue;
            };
            let clash = bound.iter().find(|(other, other_port, _, _)| {
                *other_port == port && (*other == host || is_wildcard(other) || is_wildcard(&host))
            });
            if let Some((_, _, other, loc)) = clash {
                let message = format!(
                    "address '{}' is already used by listener '{other}' (line {})",
                    listener.address, loc.line
                );
                checker.at(item.get("address"), item, message);
            }
            let loc = item.get("address").map_or(item.loc, |a| a.loc);
            bound.push((host, port, &listener.name, loc));
        }
    }
}

/// The items of a section, when they line up with the typed items (they always should).
fn aligned(items: Option<Vec<&Node>>, len: usize) -> Option<Vec<&Node>> {
    items.filter(|items| items.len() == len)
}

/// The names written in a section, valid or not; `None` when the section itself is unusable
/// (then references to it are not checked).
fn declared_names(root: &Node, key: &str, pruned: &Pruned) -> Option<Vec<String>> {
    let entry = root.entry(key);
    match entry.map(|e| (&e.value.kind, pruned.contains(&e.value.id))) {
        None => Some(Vec::new()),
        Some((_, true)) => None,
        Some((Kind::Seq(items), false)) => {
            let mut names: Vec<String> = Vec::new();
            for item in items {
                if let Some(name) = item.get("name").and_then(Node::as_str) {
                    if !names.iter().any(|n| n == name) {
                        names.push(name.to_string());
                    }
                }
            }
            Some(names)
        }
        Some(_) if entry.is_some_and(|e| e.value.is_null()) => Some(Vec::new()),
        Some(_) => None,
    }
}

fn known_list(names: &[String], what: &str) -> String {
    if names.is_empty() {
        format!("no {what} are defined")
    } else {
        format!("known: {}", names.join(", "))
    }
}

fn is_wildcard(host: &str) -> bool {
    host == "0.0.0.0" || host == "::"
}

/// Names seen so far in one section, to find duplicates.
struct Names {
    what: &'static str,
    seen: HashMap<String, Location>,
}

impl Names {
    fn new(what: &'static str) -> Self {
        Names {
            what,
            seen: HashMap::new(),
        }
    }
}

struct Checker<'a> {
    origin: &'a str,
    pruned: &'a Pruned,
    errors: &'a mut Vec<ConfigError>,
}

impl Checker<'_> {
    /// An error at `node`, or at `fallback` (the enclosing item) when the node is absent.
    fn at(&mut self, node: Option<&Node>, fallback: &Node, message: impl Into<String>) {
        let node = node.unwrap_or(fallback);
        self.errors.push(ConfigError::new(
            self.origin,
            node.loc.line,
            node.loc.column,
            node.path.clone(),
            message,
        ));
    }

    fn threads(&mut self, config: &Config, root: &Node) {
        if config.threads == Some(0) {
            self.at(
                root.get("threads"),
                root,
                "must be at least 1 (leave it out for one thread per core)",
            );
        }
    }

    fn log(&mut self, config: &Config, root: &Node) {
        let level = config.log.level.trim();
        let node = root.get("log").and_then(|log| log.get("level"));
        let is_word = !level.is_empty() && level.chars().all(|c| c.is_ascii_alphabetic());
        let known = ["trace", "debug", "info", "warn", "error", "off"];
        let problem = if level.is_empty() {
            Some("must not be empty; use trace, debug, info, warn, error or off".to_string())
        } else if is_word && !known.contains(&level.to_ascii_lowercase().as_str()) {
            Some(format!(
                "unknown log level '{level}': use trace, debug, info, warn, error or off, \
                 or a directive like `info,switchyard=debug`"
            ))
        } else {
            tracing_subscriber::EnvFilter::builder()
                .parse(level)
                .err()
                .map(|e| format!("invalid log level '{level}': {e}"))
        };
        if let Some(problem) = problem {
            self.at(node, root, problem);
        }
    }

    /// The items of a section, or `None` when it is unusable (already reported). A missing or
    /// empty section is an error: each needs at least one item.
    fn section<'n>(&mut self, root: &'n Node, key: &str, what: &str) -> Option<Vec<&'n Node>> {
        let Some(entry) = root.entry(key) else {
            if matches!(root.kind, Kind::Map(_)) || root.is_null() {
                self.at(
                    None,
                    root,
                    format!("no {what}s are defined: add a `{key}` list with at least one {what}"),
                );
            }
            return Some(Vec::new());
        };
        if self.pruned.contains(&entry.value.id) {
            return None;
        }
        let empty = match &entry.value.kind {
            Kind::Seq(items) => items.is_empty(),
            _ => entry.value.is_null(),
        };
        if empty {
            self.at(
                Some(&entry.value),
                root,
                format!("at least one {what} is required"),
            );
        }
        Some(live_items(Some(&entry.value), self.pruned))
    }

    /// A name: not empty, unique in its section.
    fn name(&mut self, names: &mut Names, name: &str, item: &Node) {
        let node = item.get("name");
        if name.trim().is_empty() {
            self.at(node, item, "must not be empty");
            return;
        }
        let loc = node.map_or(item.loc, |n| n.loc);
        if let Some(first) = names.seen.get(name) {
            let message = format!(
                "duplicate {} name '{name}' (first defined at line {}, column {})",
                names.what, first.line, first.column
            );
            self.at(node, item, message);
        } else {
            names.seen.insert(name.to_string(), loc);
        }
    }

    fn not_empty(&mut self, value: &str, item: &Node, key: &str) {
        if value.trim().is_empty() {
            self.at(item.get(key), item, "must not be empty");
        }
    }

    fn not_zero(&mut self, value: Duration, item: &Node, key: &str) {
        if value.is_zero() {
            self.at(item.get(key), item, "must be greater than zero");
        }
    }

    /// A `host:port` address; returns the host (lowercase) and port when valid.
    fn address(&mut self, address: &str, item: &Node) -> Option<(String, u16)> {
        match parse_host_port(address) {
            Ok(parsed) => Some(parsed),
            Err(reason) => {
                let message = format!(
                    "invalid address '{address}': {reason}; expected host:port, like 127.0.0.1:3306"
                );
                self.at(item.get("address"), item, message);
                None
            }
        }
    }

    /// A service's server list: not empty, each known, none twice.
    fn service_servers(&mut self, servers: &[String], item: &Node, known: Option<&[String]>) {
        let Some(list) = item.get("servers") else {
            return;
        };
        if servers.is_empty() {
            if !matches!(&list.kind, Kind::Seq(items) if !items.is_empty()) {
                self.at(Some(list), item, "a service needs at least one server");
            }
            return;
        }
        let nodes = live_items(Some(list), self.pruned);
        if nodes.len() != servers.len() {
            return;
        }
        let mut seen: Vec<&str> = Vec::new();
        for (name, node) in servers.iter().zip(nodes) {
            if seen.contains(&name.as_str()) {
                self.at(Some(node), item, format!("server '{name}' is listed twice"));
                continue;
            }
            seen.push(name);
            if let Some(known) = known {
                if !known.contains(name) {
                    let message =
                        format!("unknown server '{name}' ({})", known_list(known, "servers"));
                    self.at(Some(node), item, message);
                }
            }
        }
    }
}

impl Checker<'_> {
    /// A service's filter list: each known, none twice.
    fn service_filters(&mut self, filters: &[String], item: &Node, known: Option<&[String]>) {
        let Some(list) = item.get("filters") else {
            return;
        };
        let nodes = live_items(Some(list), self.pruned);
        if nodes.len() != filters.len() {
            return;
        }
        for (i, (name, node)) in filters.iter().zip(nodes).enumerate() {
            if filters[..i].contains(name) {
                self.at(Some(node), item, format!("filter '{name}' is listed twice"));
            } else if let Some(known) = known.filter(|known| !known.contains(name)) {
                let message = format!("unknown filter '{name}' ({})", known_list(known, "filters"));
                self.at(Some(node), item, message);
            }
        }
    }
}

/// Splits and checks `host:port`: the host a name, an IPv4 address or a bracketed IPv6
/// address; the port 1-65535. Returns the host in lowercase (brackets removed) and the port.
pub(crate) fn parse_host_port(address: &str) -> Result<(String, u16), String> {
    if address.trim().is_empty() {
        return Err("it is empty".to_string());
    }
    if address.chars().any(char::is_whitespace) {
        return Err("it contains spaces".to_string());
    }
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let (ip, port) = rest
            .split_once(']')
            .ok_or("missing `]` after the IPv6 address")?;
        if ip.parse::<Ipv6Addr>().is_err() {
            return Err(format!("'{ip}' is not an IPv6 address"));
        }
        let port = port
            .strip_prefix(':')
            .ok_or("missing `:port` after the IPv6 address")?;
        (ip, port)
    } else {
        let (host, port) = address.rsplit_once(':').ok_or("missing `:port`")?;
        if host.contains(':') {
            return Err("an IPv6 address goes in brackets, like [::1]:3306".to_string());
        }
        check_host(host)?;
        (host, port)
    };
    if port.is_empty() {
        return Err("missing port".to_string());
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'{port}' is not a port number"));
    }
    match port.parse::<u32>() {
        Ok(n @ 1..=65535) => Ok((host.to_ascii_lowercase(), n as u16)),
        _ => Err(format!("port {port} is out of range 1-65535")),
    }
}

/// `host` names this machine only: `localhost`, 127.0.0.0/8 or `::1`.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("missing host".to_string());
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return match host.parse::<Ipv4Addr>() {
            Ok(_) => Ok(()),
            Err(_) => Err(format!("'{host}' is not a valid IPv4 address")),
        };
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    let name = host.strip_suffix('.').unwrap_or(host);
    if host.len() <= 253 && name.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(format!("'{host}' is not a valid host name"))
    }
}
