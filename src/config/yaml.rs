//! A YAML document as a tree of nodes that remember where they were written and their path
//! (`services[0].options`), built from `saphyr-parser` events.
//!
//! Scalars keep their text; what type they are is decided when serde asks for one (see
//! `de.rs`), following the YAML 1.2 core schema, so that `password: 12345` is a string when a
//! string is wanted.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};

use super::ConfigError;

/// Documents with more nodes than this are refused (alias expansion could otherwise make a
/// small file huge).
const MAX_NODES: usize = 100_000;

/// A position in the source; 1-based, 0 when unknown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Location {
    pub line: usize,
    pub column: usize,
}

impl Location {
    fn of(span: &Span) -> Self {
        Location {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

/// One node of the document.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Node {
    /// Unique within one document; lets the deserializer skip nodes that already failed.
    pub id: usize,
    /// Where the node starts.
    pub loc: Location,
    /// Path from the document root, like `servers[1].address`; a key has its map's path.
    pub path: String,
    pub kind: Kind,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Kind {
    /// `plain` is false for quoted and block scalars and `!!str`: always strings.
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entry {
    pub key: Node,
    pub value: Node,
}

/// A scalar's value under the YAML 1.2 core schema.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Scalar<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(&'a str),
}

impl Scalar<'_> {
    /// Resolves a scalar's text; quoted scalars are always strings.
    pub fn resolve(text: &str, plain: bool) -> Scalar<'_> {
        if !plain {
            return Scalar::Str(text);
        }
        match text {
            "" | "~" | "null" | "Null" | "NULL" => return Scalar::Null,
            "true" | "True" | "TRUE" => return Scalar::Bool(true),
            "false" | "False" | "FALSE" => return Scalar::Bool(false),
            ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
                return Scalar::Float(f64::INFINITY)
            }
            "-.inf" | "-.Inf" | "-.INF" => return Scalar::Float(f64::NEG_INFINITY),
            ".nan" | ".NaN" | ".NAN" => return Scalar::Float(f64::NAN),
            _ => {}
        }
        if let Some(hex) = text.strip_prefix("0x") {
            if let Ok(n) = u64::from_str_radix(hex, 16) {
                return Scalar::UInt(n);
            }
        }
        if let Some(oct) = text.strip_prefix("0o") {
            if let Ok(n) = u64::from_str_radix(oct, 8) {
                return Scalar::UInt(n);
            }
        }
        let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(n) = text.parse::<i64>() {
                return Scalar::Int(n);
            }
            if let Ok(n) = text.trim_start_matches('+').parse::<u64>() {
                return Scalar::UInt(n);
            }
            return Scalar::Str(text);
        }
        let float_chars = digits
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
        let starts_well = digits.starts_with(|c: char| c.is_ascii_digit() || c == '.');
        if float_chars && starts_well && digits.bytes().any(|b| b.is_ascii_digit()) {
            if let Ok(f) = text.parse::<f64>() {
                return Scalar::Float(f);
            }
        }
        Scalar::Str(text)
    }
}

impl Node {
    /// The value of `key` in this map, if it is a map and has that key.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|e| &e.value)
    }

    /// The entry of `key` in this map.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        match &self.kind {
            Kind::Map(entries) => entries.iter().find(|e| e.key.as_str() == Some(key)),
            _ => None,
        }
    }

    /// The text of a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// True for an empty plain scalar, `~` or `null`.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { text, plain } if Scalar::resolve(text, *plain) == Scalar::Null)
    }

    /// An empty map at `loc` with `path`, standing for a map the user left out.
    pub fn empty_map(id: usize, loc: Location, path: String) -> Node {
        Node {
            id,
            loc,
            path,
            kind: Kind::Map(Vec::new()),
        }
    }

    /// A plain scalar `text` at `loc` with `path`.
    pub fn scalar(id: usize, loc: Location, path: String, text: &str) -> Node {
        Node {
            id,
            loc,
            path,
            kind: Kind::Scalar {
                text: text.to_string(),
                plain: true,
            },
        }
    }

    /// Same content, wherever it was written, and in whatever order a map's keys were (keys
    /// are unique: duplicates are refused when parsing).
    pub fn same_value(&self, other: &Node) -> bool {
        match (&self.kind, &other.kind) {
            (Kind::Scalar { text: a, plain: pa }, Kind::Scalar { text: b, plain: pb }) => {
                Scalar::resolve(a, *pa) == Scalar::resolve(b, *pb)
            }
            (Kind::Seq(a), Kind::Seq(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.same_value(b))
            }
            (Kind::Map(a), Kind::Map(b)) => {
                a.len() == b.len()
                    && a.iter().all(|a| {
                        b.iter()
                            .any(|b| a.key.same_value(&b.key) && a.value.same_value(&b.value))
                    })
            }
            _ => false,
        }
    }

    /// How many nodes this tree holds, keys included.
    pub fn count(&self) -> usize {
        1 + match &self.kind {
            Kind::Scalar { .. } => 0,
            Kind::Seq(items) => items.iter().map(Node::count).sum(),
            Kind::Map(entries) => entries
                .iter()
                .map(|e| e.key.count() + e.value.count())
                .sum(),
        }
    }

    /// Gives this tree new ids from `next_id` on and paths under `path`, keeping locations.
    pub fn rebase(&mut self, path: String, next_id: &mut usize) {
        self.id = *next_id;
        *next_id += 1;
        match &mut self.kind {
            Kind::Scalar { .. } => {}
            Kind::Seq(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    item.rebase(index_path(&path, i), next_id);
                }
            }
            Kind::Map(entries) => {
                for entry in entries {
                    let child = key_path(&path, &entry.key);
                    entry.key.rebase(path.clone(), next_id);
                    entry.value.rebase(child, next_id);
                }
            }
        }
        self.path = path;
    }
}

/// `servers[2]`
pub(crate) fn index_path(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// `servers[2].address`, or `options["a.b"]` for keys that are not plain words.
pub(crate) fn key_path(parent: &str, key: &Node) -> String {
    let Some(text) = key.as_str() else {
        return format!("{parent}[?]");
    };
    let word = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (word, parent.is_empty()) {
        (true, true) => text.to_string(),
        (true, false) => format!("{parent}.{text}"),
        (false, _) => format!("{parent}[{text:?}]"),
    }
}

/// Parses one YAML document. A syntax error ends the parse (`Err`); other problems (duplicate
/// keys, unsupported tags) are pushed to `errors` and the offending part is left out.
pub(crate) fn parse(
    text: &str,
    origin: &str,
    errors: &mut Vec<ConfigError>,
) -> Result<Node, ConfigError> {
    let mut builder = Builder {
        origin,
        errors,
        stack: Vec::new(),
        anchors: HashMap::new(),
        root: None,
        documents: 0,
        next_id: 0,
    };
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| {
            ConfigError::new(
                origin,
                e.marker().line(),
                e.marker().col() + 1,
                "",
                format!("YAML syntax error: {}", e.info()),
            )
        })?;
        builder.event(event, span)?;
    }
    Ok(builder.root.unwrap_or_else(|| Node {
        id: 0,
        loc: Location { line: 1, column: 1 },
        path: String::new(),
        kind: Kind::Scalar {
            text: String::new(),
            plain: true,
        },
    }))
}

struct Frame {
    node: Node,
    anchor: usize,
    /// For maps: the key read, waiting for its value.
    key: Option<Node>,
}

struct Builder<'a> {
    origin: &'a str,
    errors: &'a mut Vec<ConfigError>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    documents: usize,
    next_id: usize,
}

impl Builder<'_> {
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), ConfigError> {
        let loc = Location::of(&span);
        let is_seq = matches!(event, Event::SequenceStart(..));
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(self.error(
                        loc,
                        String::new(),
                        "a configuration file holds a single YAML document; remove this `---` and what follows",
                    ));
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let path = self.child_path();
                let plain = style == ScalarStyle::Plain;
                let plain = match tag.as_deref() {
                    None => plain,
                    Some(tag) if tag.is_yaml_core_schema() && tag.suffix == "str" => false,
                    Some(tag)
                        if tag.is_yaml_core_schema()
                            && matches!(tag.suffix.as_str(), "null" | "bool" | "int" | "float") =>
                    {
                        true
                    }
                    Some(tag) => {
                        self.unsupported_tag(tag, loc, &path);
                        plain
                    }
                };
                let node = Node {
                    id: self.id()?,
                    loc,
                    path,
                    kind: Kind::Scalar {
                        text: text.into_owned(),
                        plain,
                    },
                };
                self.complete(node, anchor);
            }
            Event::SequenceStart(anchor, tag) | Event::MappingStart(anchor, tag) => {
                let path = self.child_path();
                if let Some(tag) = tag.as_deref() {
                    let expected = if is_seq { "seq" } else { "map" };
                    if !(tag.is_yaml_core_schema() && tag.suffix == expected) {
                        self.unsupported_tag(tag, loc, &path);
                    }
                }
                let kind = if is_seq {
                    Kind::Seq(Vec::new())
                } else {
                    Kind::Map(Vec::new())
                };
                let node = Node {
                    id: self.id()?,
                    loc,
                    path,
                    kind,
                };
                self.stack.push(Frame {
                    node,
                    anchor,
                    key: None,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(frame) = self.stack.pop() {
                    self.complete(frame.node, frame.anchor);
                }
            }
            Event::Alias(anchor) => {
                let path = self.child_path();
                let Some(mut node) = self.anchors.get(&anchor).cloned() else {
                    return Err(self.error(loc, path, "unknown alias"));
                };
                if self.next_id + node.count() > MAX_NODES {
                    return Err(self.too_big(loc));
                }
                node.rebase(path, &mut self.next_id);
                self.complete(node, 0);
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
        Ok(())
    }

    fn id(&mut self) -> Result<usize, ConfigError> {
        if self.next_id >= MAX_NODES {
            return Err(self.too_big(Location::default()));
        }
        self.next_id += 1;
        Ok(self.next_id - 1)
    }

    fn too_big(&self, loc: Location) -> ConfigError {
        self.error(
            loc,
            String::new(),
            format!("the document has more than {MAX_NODES} nodes"),
        )
    }

    fn error(&self, loc: Location, path: String, message: impl Into<String>) -> ConfigError {
        ConfigError::new(self.origin, loc.line, loc.column, path, message)
    }

    fn unsupported_tag(&mut self, tag: &Tag, loc: Location, path: &str) {
        let error = self.error(
            loc,
            path.to_string(),
            format!("unsupported YAML tag `{tag}`"),
        );
        self.errors.push(error);
    }

    /// The path of the node that starts now.
    fn child_path(&self) -> String {
        let Some(frame) = self.stack.last() else {
            return String::new();
        };
        match (&frame.node.kind, &frame.key) {
            (Kind::Seq(items), _) => index_path(&frame.node.path, items.len()),
            (Kind::Map(_), Some(key)) => key_path(&frame.node.path, key),
            // A key: it has its map's path.
            _ => frame.node.path.clone(),
        }
    }

    /// A node is complete: remember it under its anchor and put it in its parent.
    fn complete(&mut self, node: Node, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(node);
            return;
        };
        match &mut frame.node.kind {
            Kind::Seq(items) => items.push(node),
            Kind::Map(entries) => match frame.key.take() {
                None => frame.key = Some(node),
                Some(key) => {
                    let first = entries
                        .iter()
                        .find(|e| key.as_str().is_some() && e.key.as_str() == key.as_str());
                    match first {
                        None => entries.push(Entry { key, value: node }),
                        Some(first) => {
                            let message = format!(
                                "duplicate key `{}` (first at line {}, column {})",
                                key.as_str().unwrap_or_default(),
                                first.key.loc.line,
                                first.key.loc.column
                            );
                            let error = ConfigError::new(
                                self.origin,
                                key.loc.line,
                                key.loc.column,
                                key.path.clone(),
                                message,
                            );
                            self.errors.push(error);
                        }
                    }
                }
            },
            Kind::Scalar { .. } => unreachable!("only collections are pushed on the stack"),
        }
    }
}
