//! The `admin` section of a config file, read on its own for clients of the admin API
//! (`switchyard ctl`). Only that section: the rest of the file may have the very problems
//! `ctl reload` is run to hear about (even a YAML syntax error, when it comes after the
//! section).

use std::path::Path;

use saphyr_parser::{Event, Parser, ScalarStyle};
use serde_json::{Map, Value};

/// The `admin` section of a config file, as far as a client of the admin API needs it.
#[derive(Debug, Default, PartialEq)]
pub struct AdminSection {
    /// The file has an `admin` section.
    pub present: bool,
    pub address: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
}

/// Reads the `admin` section of the config file at `path`.
pub fn admin_section(path: &Path) -> Result<AdminSection, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    admin_section_of(&text, &path.display().to_string())
}

/// [`admin_section`] of a config's text; `origin` names it in messages.
pub fn admin_section_of(text: &str, origin: &str) -> Result<AdminSection, String> {
    let (doc, syntax_error) = yaml_tree(text);
    let Some(admin) = doc.get("admin") else {
        return match syntax_error {
            Some(e) => Err(format!("cannot read the admin settings of {origin}: {e}")),
            None => Ok(AdminSection::default()),
        };
    };
    let field = |key: &str| admin.get(key).and_then(Value::as_str).map(str::to_string);
    Ok(AdminSection {
        present: true,
        address: field("address"),
        user: field("user"),
        password: field("password"),
    })
}

/// A YAML document as JSON with every scalar a string (null scalars and aliases are `null`).
/// A syntax error ends the document where it is, and is returned beside what was read.
fn yaml_tree(text: &str) -> (Value, Option<String>) {
    let mut error = None;
    let mut events = Parser::new_from_str(text).map_while(|r| match r {
        Ok((event, _)) => Some(event),
        Err(e) => {
            let m = e.marker();
            let (line, column) = (m.line(), m.col() + 1);
            error = Some(format!(
                "YAML syntax error at line {line}, column {column}: {}",
                e.info()
            ));
            None
        }
    });
    let mut doc = Value::Null;
    while let Some(event) = events.next() {
        match event {
            Event::StreamStart | Event::DocumentStart(_) | Event::Nothing => {}
            Event::StreamEnd => break,
            event => {
                doc = yaml_node(event, &mut events, 0);
                break;
            }
        }
    }
    drop(events);
    (doc, error)
}

/// The node that starts with `first`; containers end early where the events do.
fn yaml_node<'a>(
    first: Event<'a>,
    events: &mut impl Iterator<Item = Event<'a>>,
    depth: usize,
) -> Value {
    match first {
        Event::Scalar(text, style, ..) => {
            let null = matches!(&*text, "" | "~" | "null" | "Null" | "NULL");
            if style == ScalarStyle::Plain && null {
                Value::Null
            } else {
                Value::String(text.into_owned())
            }
        }
        // Deeper than any config goes: skipped, so that recursion stays bounded.
        Event::SequenceStart(..) | Event::MappingStart(..) if depth >= 32 => {
            let mut open = 1;
            for e in events.by_ref() {
                match e {
                    Event::SequenceStart(..) | Event::MappingStart(..) => open += 1,
                    Event::SequenceEnd | Event::MappingEnd => open -= 1,
                    _ => {}
                }
                if open == 0 {
                    break;
                }
            }
            Value::Null
        }
        Event::SequenceStart(..) => {
            let mut items = Vec::new();
            while let Some(e) = events.next() {
                if matches!(e, Event::SequenceEnd) {
                    break;
                }
                items.push(yaml_node(e, events, depth + 1));
            }
            Value::Array(items)
        }
        Event::MappingStart(..) => {
            let mut map = Map::new();
            while let Some(e) = events.next() {
                if matches!(e, Event::MappingEnd) {
                    break;
                }
                let key = yaml_node(e, events, depth + 1);
                let Some(e) = events.next() else { break };
                let value = yaml_node(e, events, depth + 1);
                if let Value::String(key) = key {
                    map.insert(key, value);
                }
            }
            Value::Object(map)
        }
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_section_is_read_even_from_a_broken_config() {
        let flow = "threadz: 1\nadmin: { address: \"0.0.0.0:9000\", user: ops, password: 12345 }\n";
        let section = admin_section_of(flow, "f.yaml").unwrap();
        assert_eq!(
            section,
            AdminSection {
                present: true,
                address: Some("0.0.0.0:9000".into()),
                user: Some("ops".into()),
                password: Some("12345".into()),
            }
        );
        let block = "servers: [db1]\nadmin:\n  user: 'o p'\n  password: ~\nlisteners: [\n  - : :\n";
        let section = admin_section_of(block, "f.yaml").unwrap();
        assert!(section.present && section.address.is_none() && section.password.is_none());
        assert_eq!(section.user.as_deref(), Some("o p"));
        assert!(admin_section_of("admin:\n", "f.yaml").unwrap().present);
        assert_eq!(
            admin_section_of("servers: []\n", "f.yaml").unwrap(),
            AdminSection::default()
        );
        assert_eq!(
            admin_section_of("", "f.yaml").unwrap(),
            AdminSection::default()
        );
        let e =
            admin_section_of("servers: [\n  - : :\nadmin: { user: a }\n", "f.yaml").unwrap_err();
        assert!(
            e.starts_with("cannot read the admin settings of f.yaml: YAML syntax error at line 2"),
            "{e}"
        );
        // Nesting beyond any config is skipped, not recursed into.
        let deep = format!(
            "a: {}1{}\nadmin: {{ user: u }}\n",
            "[".repeat(200),
            "]".repeat(200)
        );
        assert_eq!(
            admin_section_of(&deep, "f.yaml").unwrap().user.as_deref(),
            Some("u")
        );
    }
}
