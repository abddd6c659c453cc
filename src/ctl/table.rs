//! Tables and `key  value` lines from the API's JSON, for people.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::Kind;

/// How a column gets its cell from a row.
pub(super) enum Get {
    /// A field, as [`text`] writes it.
    Field(&'static str),
    /// Anything else.
    With(fn(&Value) -> String),
}

/// One column of a table.
pub(super) struct Column {
    header: &'static str,
    get: Get,
    /// Right-aligned (numbers).
    right: bool,
}

pub(super) const fn field(header: &'static str, key: &'static str) -> Column {
    Column {
        header,
        get: Get::Field(key),
        right: false,
    }
}

pub(super) const fn number(header: &'static str, key: &'static str) -> Column {
    Column {
        header,
        get: Get::Field(key),
        right: true,
    }
}

pub(super) const fn with(header: &'static str, get: fn(&Value) -> String) -> Column {
    Column {
        header,
        get: Get::With(get),
        right: false,
    }
}

pub(super) const fn number_with(header: &'static str, get: fn(&Value) -> String) -> Column {
    Column {
        header,
        get: Get::With(get),
        right: true,
    }
}

pub(super) const SERVERS: &[Column] = &[
    field("NAME", "name"),
    field("ADDRESS", "address"),
    field("ROLE", "role"),
    with("STATE", server_state),
    number_with("LAG", |s| match s["lag_seconds"].as_u64() {
        Some(n) => format!("{n}s"),
        None => "-".into(),
    }),
    number("GTID_BEHIND", "gtid_behind"),
    number("CONNS", "connections"),
    number("OPS", "operations"),
    number("STATEMENTS", "statements"),
    number_with("RESP_TIME", |s| match s["response_time_us"].as_u64() {
        Some(0) | None => "-".into(),
        Some(us) => micros(us),
    }),
];

pub(super) const SERVICES: &[Column] = &[
    field("NAME", "name"),
    field("ROUTER", "router"),
    field("MONITOR", "monitor"),
    field("SERVERS", "servers"),
    field("FILTERS", "filters"),
    field("LISTENERS", "listeners"),
    number("SESSIONS", "sessions"),
];

pub(super) const LISTENERS: &[Column] = &[
    field("NAME", "name"),
    field("ADDRESS", "address"),
    field("SERVICE", "service"),
    field("STATE", "state"),
    number("SESSIONS", "sessions"),
];

pub(super) const SESSIONS: &[Column] = &[
    number("ID", "id"),
    field("USER", "user"),
    field("CLIENT", "client"),
    field("DB", "db"),
    field("SERVICE", "service"),
    with("BACKENDS", |s| {
        let backends: Vec<String> = s["backends"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| format!("{}({})", text(&b["server"]), text(&b["thread_id"])))
            .collect();
        if backends.is_empty() {
            "-".into()
        } else {
            backends.join(",")
        }
    }),
    field("IN_TXN", "in_transaction"),
    number_with("AGE", |s| s["age_seconds"].as_f64().map_or("-".into(), age)),
];

pub(super) const MONITORS: &[Column] = &[
    field("NAME", "name"),
    field("MODULE", "module"),
    field("SERVERS", "servers"),
    with("PRIMARY", |m| text(&m["state"]["primary"])),
    number_with("TICKS", |m| {
        let ticks = &m["state"]["ticks"];
        text(if ticks.is_null() {
            &m["diagnostics"]["ticks"]
        } else {
            ticks
        })
    }),
    number_with("LAST_CHECK", |m| match m["state"]["updated"].as_u64() {
        Some(ms) => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            format!("{} ago", age(now.saturating_sub(ms) as f64 / 1000.0))
        }
        None => "-".into(),
    }),
    with("PROBLEMS", |m| text(&m["state"]["problems"])),
];

pub(super) const FILTERS: &[Column] = &[
    field("NAME", "name"),
    field("MODULE", "module"),
    field("HEALTH", "health"),
    with("COUNTERS", |f| {
        let counters: Vec<String> = f["diagnostics"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, v)| v.is_u64() || v.is_i64())
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if counters.is_empty() {
            "-".into()
        } else {
            counters.join(" ")
        }
    }),
];

pub(super) const BLOCKED_HOSTS: &[Column] = &[
    field("ADDRESS", "address"),
    number("FAILURES", "failures"),
    field("BLOCKED", "blocked"),
    number_with("EXPIRES_IN", |h| {
        h["expires_in_seconds"].as_f64().map_or("-".into(), age)
    }),
];

pub(super) fn list_table(kind: Kind, rows: &Value) -> String {
    let columns = match kind {
        Kind::Server => SERVERS,
        Kind::Service => SERVICES,
        Kind::Listener => LISTENERS,
        Kind::Session => SESSIONS,
        Kind::Monitor => MONITORS,
        Kind::Filter => FILTERS,
        Kind::BlockedHost => BLOCKED_HOSTS,
    };
    let mut rows: Vec<Value> = rows.as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        return format!("no {}\n", kind.plural());
    }
    if kind == Kind::Session {
        rows.sort_by_key(|s| s["id"].as_u64());
    }
    table(columns, &rows)
}

/// Renders `rows` as an aligned table: a header line, then one line per row; columns two
/// spaces apart, numbers right-aligned, no trailing spaces.
pub(super) fn table(columns: &[Column], rows: &[Value]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|c| match c.get {
                    Get::Field(key) => text(&row[key]),
                    Get::With(f) => f(row),
                })
                .collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([c.header.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for ((cell, c), width) in cells.zip(columns).zip(&widths) {
            if !l.is_empty() {
                l.push_str("  ");
            }
            let pad = " ".repeat(width - cell.chars().count());
            if c.right {
                l.push_str(&pad);
                l.push_str(cell);
            } else {
                l.push_str(cell);
                l.push_str(&pad);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut columns.iter().map(|c| c.header));
    for row in &cells {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// A server's state: `up`/`down` as its monitor sees it, then its flags; `-` unmonitored.
pub(super) fn server_state(s: &Value) -> String {
    let mut state = Vec::new();
    match s["reachable"].as_bool() {
        Some(true) => state.push("up"),
        Some(false) => state.push("down"),
        None => {}
    }
    for (key, word) in [
        ("replication_broken", "replication-broken"),
        ("maintenance", "maintenance"),
        ("drain", "drain"),
    ] {
        if s[key] == Value::Bool(true) {
            state.push(word);
        }
    }
    if state.is_empty() {
        "-".into()
    } else {
        state.join(",")
    }
}

/// A value as one table cell or `show` line: `-` for null or empty, `yes`/`no`, lists joined
/// with commas (`db1,db2`), objects as `{key: value, ...}`.
pub(super) fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) if items.is_empty() => "-".into(),
        Value::Array(items) => {
            let scalars = items.iter().all(|i| !(i.is_array() || i.is_object()));
            let items: Vec<String> = items.iter().map(nested).collect();
            items.join(if scalars { "," } else { ", " })
        }
        Value::Object(_) => nested(v),
    }
}

/// A value inside a list or object: compact, with brackets.
pub(super) fn nested(v: &Value) -> String {
    match v {
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(nested).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}: {}", nested(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::String(s) if s.is_empty() => "\"\"".into(),
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => text(other),
    }
}

/// One object as `key  value` lines, `name` or `id` first; nested objects as dotted keys
/// (`diagnostics.delivered`), lists of scalars on one line, lists of objects one line per
/// item (`state.servers[0]`).
pub(super) fn key_values(item: &Value) -> String {
    let mut lines = Vec::new();
    flatten("", item, &mut lines);
    let first = |k: &String| !matches!(k.as_str(), "name" | "id");
    lines.sort_by_key(|(k, _)| first(k));
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    lines
        .iter()
        .map(|(k, v)| format!("{k:<width$}  {v}").trim_end().to_string() + "\n")
        .collect()
}

pub(super) fn flatten(prefix: &str, v: &Value, lines: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, lines);
            }
        }
        Value::Array(items) if items.iter().any(Value::is_object) => {
            for (i, item) in items.iter().enumerate() {
                lines.push((format!("{prefix}[{i}]"), text(item)));
            }
        }
        other => lines.push((prefix.to_string(), text(other))),
    }
}

/// Microseconds, readably: `850us`, `1.2ms`, `1.50s`.
pub(super) fn micros(us: u64) -> String {
    match us {
        0..=999 => format!("{us}us"),
        1_000..=999_999 => format!("{:.1}ms", us as f64 / 1e3),
        _ => format!("{:.2}s", us as f64 / 1e6),
    }
}

/// Seconds, readably: `4.2s`, `3m12s`, `2h05m`, `3d04h`.
pub(super) fn age(seconds: f64) -> String {
    if seconds < 60.0 {
        return format!("{seconds:.1}s");
    }
    let s = seconds as u64;
    match s {
        0..=3_599 => format!("{}m{:02}s", s / 60, s % 60),
        3_600..=86_399 => format!("{}h{:02}m", s / 3_600, s % 3_600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3_600),
    }
}
