//! Older spellings of the config file, still read: each is moved to its place in the tree
//! before the config is deserialized, with a warning that says how to write it now.

use super::yaml::{key_path, Entry, Kind, Node};
use super::ConfigError;

/// The monitor options that were keys of the monitor entry before they moved under its
/// `options:` (they were the `mariadbmon` options).
const MONITOR_KEYS: &[&str] = &["interval", "failcount", "connect_timeout", "read_timeout"];

/// Moves monitor options written beside `name` and `module` into the monitor's `options:`.
/// Returns one warning per moved key; an option written in both places is an error.
pub(crate) fn move_monitor_options(
    root: &mut Node,
    origin: &str,
    errors: &mut Vec<ConfigError>,
) -> Vec<ConfigError> {
    let mut next_id = max_id(root) + 1;
    let mut warnings = Vec::new();
    let Kind::Map(entries) = &mut root.kind else {
        return warnings;
    };
    let Some(Entry {
        value: Node {
            kind: Kind::Seq(monitors),
            ..
        },
        ..
    }) = entries
        .iter_mut()
        .find(|e| e.key.as_str() == Some("monitors"))
    else {
        return warnings;
    };
    for monitor in monitors {
        let (path, loc) = (monitor.path.clone(), monitor.loc);
        let Kind::Map(entries) = &mut monitor.kind else {
            continue;
        };
        let (old, rest): (Vec<Entry>, Vec<Entry>) = std::mem::take(entries)
            .into_iter()
            .partition(|e| e.key.as_str().is_some_and(|k| MONITOR_KEYS.contains(&k)));
        *entries = rest;
        if old.is_empty() {
            continue;
        }
        let at = entries
            .iter()
            .position(|e| e.key.as_str() == Some("options"));
        let at = at.unwrap_or_else(|| {
            let key = Node::scalar(next_id, loc, path.clone(), "options");
            let value = Node::empty_map(next_id + 1, loc, key_path(&path, &key));
            next_id += 2;
            entries.push(Entry { key, value });
            entries.len() - 1
        });
        let Kind::Map(options) = &mut entries[at].value.kind else {
            // `options` is not a map: the deserializer reports that; leave the old keys out.
            continue;
        };
        for entry in old {
            let key = entry.key.as_str().unwrap_or_default().to_string();
            let error = |message: String| {
                ConfigError::new(
                    origin,
                    entry.key.loc.line,
                    entry.key.loc.column,
                    entry.value.path.clone(),
                    message,
                )
            };
            if options.iter().any(|e| e.key.as_str() == Some(&key)) {
                errors.push(error(format!(
                    "`{key}` is set here and under `options:`; keep the one under `options:`"
                )));
                continue;
            }
            warnings.push(error(format!(
                "deprecated: monitor options belong under `options:` now \
                 (`options: {{ {key}: ... }}`); read as before"
            )));
            options.push(entry);
        }
    }
    warnings
}

fn max_id(node: &Node) -> usize {
    node.id.max(match &node.kind {
        Kind::Scalar { .. } => 0,
        Kind::Seq(items) => items.iter().map(max_id).max().unwrap_or(0),
        Kind::Map(entries) => entries
            .iter()
            .map(|e| max_id(&e.key).max(max_id(&e.value)))
            .max()
            .unwrap_or(0),
    })
}
