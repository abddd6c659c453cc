//! A module's own options, kept as located YAML until the module parses them.

use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeOwned, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::de::deserialize_all;
use super::yaml::{Entry, Kind, Location, Node};
use super::{ConfigError, ConfigErrors};

/// The `options` map of a service (or another module's section), left for the module to
/// parse with its own config type through [`ModuleOptions::parse`]. It keeps the raw YAML
/// with the file, line and column of every key and value, so the module's errors are located
/// like every other config error.
#[derive(Clone)]
pub struct ModuleOptions {
    origin: Arc<str>,
    node: Node,
}

impl ModuleOptions {
    /// Options read from `origin`; `node` is the options map (an empty map placed on the
    /// enclosing item when the options were left out).
    pub(crate) fn new(origin: Arc<str>, node: Node) -> Self {
        ModuleOptions { origin, node }
    }

    /// Deserializes the options as a module's own config type (which uses
    /// `deny_unknown_fields`). The error carries the file, line and column of the offending
    /// key or value inside the options map; it is the first of [`ModuleOptions::parse_all`].
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        self.parse_all().map_err(|errors| {
            errors
                .0
                .into_iter()
                .next()
                .unwrap_or_else(|| self.error("invalid options"))
        })
    }

    /// Like [`ModuleOptions::parse`], but reports every problem in the options.
    pub fn parse_all<T: DeserializeOwned>(&self) -> Result<T, ConfigErrors> {
        let mut errors = Vec::new();
        let (value, _) = deserialize_all::<T>(&self.node, &self.origin, &mut errors);
        let mut errors = ConfigErrors(errors);
        errors.sort();
        match value {
            Some(value) if errors.is_empty() => Ok(value),
            _ => Err(errors),
        }
    }

    /// True when no option is set.
    pub fn is_empty(&self) -> bool {
        match &self.node.kind {
            Kind::Map(entries) => entries.is_empty(),
            Kind::Seq(items) => items.is_empty(),
            Kind::Scalar { .. } => self.node.is_null(),
        }
    }

    /// The path of the options, like `services[0].options`.
    pub fn path(&self) -> &str {
        &self.node.path
    }

    /// An error about the options as a whole, at their position (for problems that are not
    /// about one key, such as two options that contradict each other).
    pub fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::new(
            &*self.origin,
            self.node.loc.line,
            self.node.loc.column,
            self.node.path.clone(),
            message,
        )
    }

    /// An error about the option `key`, at its value (or at the options when the key is not
    /// set), for checks a module makes after parsing.
    pub fn error_at(&self, key: &str, message: impl Into<String>) -> ConfigError {
        match self.node.get(key) {
            Some(value) => ConfigError::new(
                &*self.origin,
                value.loc.line,
                value.loc.column,
                value.path.clone(),
                message,
            ),
            None => self.error(message),
        }
    }
}

impl fmt::Debug for ModuleOptions {
    /// The options in YAML flow style, like `{router_options: primary}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_flow(&self.node, f)
    }
}

fn write_flow(node: &Node, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match &node.kind {
        Kind::Scalar { text, plain: true } => f.write_str(text),
        Kind::Scalar { text, plain: false } => write!(f, "{text:?}"),
        Kind::Seq(items) => {
            f.write_str("[")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write_flow(item, f)?;
            }
            f.write_str("]")
        }
        Kind::Map(entries) => {
            f.write_str("{")?;
            for (i, entry) in entries.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write_flow(&entry.key, f)?;
                f.write_str(": ")?;
                write_flow(&entry.value, f)?;
            }
            f.write_str("}")
        }
    }
}

impl PartialEq for ModuleOptions {
    /// Same options, wherever they were written.
    fn eq(&self, other: &Self) -> bool {
        self.node.same_value(&other.node)
    }
}

impl Default for ModuleOptions {
    /// No options.
    fn default() -> Self {
        ModuleOptions {
            origin: Arc::from("<default>"),
            node: Node::empty_map(0, Location::default(), "options".to_string()),
        }
    }
}

/// Accepts a map (or nothing) from any serde format. Read from YAML by this module's loader,
/// the unlocated tree built here is replaced by the located one (see `super::parse`).
impl<'de> Deserialize<'de> for ModuleOptions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OptionsVisitor;

        impl<'de> Visitor<'de> for OptionsVisitor {
            type Value = Node;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of module options")
            }

            fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
                Ok(Node::empty_map(0, Location::default(), String::new()))
            }

            fn visit_none<E: de::Error>(self) -> Result<Node, E> {
                self.visit_unit()
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Node, A::Error> {
                AnyVisitor.visit_map(map)
            }
        }

        let mut node = deserializer.deserialize_map(OptionsVisitor)?;
        node.rebase("options".to_string(), &mut 0);
        Ok(ModuleOptions {
            origin: Arc::from("<options>"),
            node,
        })
    }
}

/// Builds an unlocated [`Node`] from any serde value.
struct AnyVisitor;

fn scalar(text: String, plain: bool) -> Node {
    Node {
        id: 0,
        loc: Location::default(),
        path: String::new(),
        kind: Kind::Scalar { text, plain },
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AnyVisitor)
    }
}

impl<'de> Visitor<'de> for AnyVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(scalar(v.to_string(), true))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(scalar(v.to_string(), true))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(scalar(v.to_string(), true))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        let text = if v.is_nan() {
            ".nan".to_string()
        } else if v.is_infinite() {
            if v > 0.0 { ".inf" } else { "-.inf" }.to_string()
        } else {
            format!("{v:?}")
        };
        Ok(scalar(text, true))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(scalar(v.to_string(), false))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(scalar(String::new(), true))
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Node {
            id: 0,
            loc: Location::default(),
            path: String::new(),
            kind: Kind::Seq(items),
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some((key, value)) = map.next_entry::<Node, Node>()? {
            entries.push(Entry { key, value });
        }
        Ok(Node {
            id: 0,
            loc: Location::default(),
            path: String::new(),
            kind: Kind::Map(entries),
        })
    }
}
