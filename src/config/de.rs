//! A serde `Deserializer` over the located YAML tree, and the loop that finds every error.
//!
//! An error raised while a node is being deserialized takes that node's location and path: a
//! bad value points at the value, an unknown key at the key, a missing field at the enclosing
//! map. To report more than the first error, [`deserialize_all`] records the error, marks the
//! offending map entry or sequence item as pruned, and deserializes again without it, until the
//! document deserializes or the root itself is at fault. Pruned parts keep their indices in
//! paths (`servers[2]` stays `servers[2]` when `servers[1]` is pruned).

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Unexpected, Visitor};

use super::yaml::{Entry, Kind, Location, Node, Scalar};
use super::ConfigError;

mod access;
use access::{Entries, Items, Variant};

/// Deserialization errors reported at most for one document (or one module's options).
const MAX_ERRORS: usize = 100;

/// Ids of the nodes (map values standing for their entry, or sequence items) to skip.
pub(crate) type Pruned = HashSet<usize>;

/// Deserializes `root` as a `T`, pushing every error found to `errors`. Returns the value
/// when one could be built (possibly without the pruned parts, in which case there are
/// errors) and the set of pruned nodes.
pub(crate) fn deserialize_all<T: DeserializeOwned>(
    root: &Node,
    origin: &str,
    errors: &mut Vec<ConfigError>,
) -> (Option<T>, Pruned) {
    let mut pruned = Pruned::new();
    // Each pass prunes one more node, so this ends; the bound keeps a file full of mistakes
    // from taking quadratic time.
    for pass in 0.. {
        if pass == MAX_ERRORS {
            errors.push(ConfigError::new(
                origin,
                root.loc.line,
                root.loc.column,
                root.path.clone(),
                "too many errors; the rest of the file was not checked",
            ));
            break;
        }
        let de = NodeDe {
            node: root,
            pruned: &pruned,
            prune: root.id,
        };
        match T::deserialize(de) {
            Ok(value) => return (Some(value), pruned),
            Err(error) => {
                let at = error.at.unwrap_or(At {
                    loc: root.loc,
                    path: root.path.clone(),
                    prune: root.id,
                    suppressed: false,
                });
                if !at.suppressed {
                    errors.push(ConfigError::new(
                        origin,
                        at.loc.line,
                        at.loc.column,
                        at.path,
                        error.message,
                    ));
                }
                if at.prune == root.id || !pruned.insert(at.prune) {
                    break;
                }
            }
        }
    }
    (None, pruned)
}

/// The error type of [`NodeDe`].
#[derive(Debug)]
pub(crate) struct DeError {
    message: String,
    missing_field: bool,
    at: Option<At>,
}

#[derive(Debug)]
struct At {
    loc: Location,
    path: String,
    /// The node to prune so that the next pass gets past this error.
    prune: usize,
    /// A missing field in a map that had entries pruned: most likely the misspelled or
    /// invalid entry already reported, so not reported again.
    suppressed: bool,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            missing_field: false,
            at: None,
        }
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::custom(format_args!(
            "expected {}, found {}",
            expected(exp),
            found(&unexp)
        ))
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::invalid_type(unexp, exp)
    }

    fn missing_field(field: &'static str) -> Self {
        DeError {
            message: format!("missing field `{field}`"),
            missing_field: true,
            at: None,
        }
    }
}

/// What serde expected, in the user's terms rather than Rust's (`usize`, `struct Config`).
fn expected(exp: &dyn de::Expected) -> String {
    let exp = exp.to_string();
    let plain = match exp.as_str() {
        "usize" | "u64" | "u128" => "a whole number (0 or more)",
        "u32" => "a whole number from 0 to 4294967295",
        "u16" => "a whole number from 0 to 65535",
        "u8" => "a whole number from 0 to 255",
        "isize" | "i64" | "i128" | "i32" | "i16" | "i8" => "a whole number",
        "f64" | "f32" => "a number",
        "a sequence" => "a list",
        "a character" => "a single character",
        _ if exp.starts_with("struct ") => "a map",
        _ => return exp,
    };
    plain.to_string()
}

/// What was found instead, in YAML terms.
fn found(unexp: &Unexpected<'_>) -> String {
    match unexp {
        Unexpected::Unit => "an empty value".to_string(),
        Unexpected::Seq => "a list".to_string(),
        Unexpected::Map => "a map".to_string(),
        Unexpected::Str(s) => format!("'{s}'"),
        Unexpected::Signed(n) => n.to_string(),
        Unexpected::Unsigned(n) => n.to_string(),
        Unexpected::Float(f) => f.to_string(),
        Unexpected::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

/// Deserializes one node. `prune` is the node whose removal gets past an error here: the node
/// itself, or for a key, its value (which stands for the whole entry).
#[derive(Clone, Copy)]
pub(crate) struct NodeDe<'a> {
    node: &'a Node,
    pruned: &'a Pruned,
    prune: usize,
}

impl<'a> NodeDe<'a> {
    fn child(&self, node: &'a Node) -> NodeDe<'a> {
        NodeDe {
            node,
            pruned: self.pruned,
            prune: node.id,
        }
    }

    /// Gives an error raised here this node's location, unless it already has one.
    fn locate(&self, mut error: DeError) -> DeError {
        if error.at.is_none() {
            let suppressed = error.missing_field
                && matches!(&self.node.kind, Kind::Map(entries)
                    if entries.iter().any(|e| self.pruned.contains(&e.value.id)));
            error.at = Some(At {
                loc: self.node.loc,
                path: self.node.path.clone(),
                prune: self.prune,
                suppressed,
            });
        }
        error
    }

    fn scalar(&self) -> Option<Scalar<'a>> {
        match &self.node.kind {
            Kind::Scalar { text, plain } => Some(Scalar::resolve(text, *plain)),
            _ => None,
        }
    }

    fn any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            Kind::Scalar { text, plain } => match Scalar::resolve(text, *plain) {
                Scalar::Null => visitor.visit_unit(),
                Scalar::Bool(b) => visitor.visit_bool(b),
                Scalar::Int(n) => visitor.visit_i64(n),
                Scalar::UInt(n) => visitor.visit_u64(n),
                Scalar::Float(f) => visitor.visit_f64(f),
                Scalar::Str(s) => visitor.visit_borrowed_str(s),
            },
            Kind::Seq(items) => visitor.visit_seq(Items::new(items, self.pruned)),
            Kind::Map(entries) => visitor.visit_map(Entries::new(entries, self.pruned)),
        }
    }

    fn str<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            // A plain `12345` or `true` is fine where a string is wanted.
            Kind::Scalar { text, .. } if !self.node.is_null() => visitor.visit_borrowed_str(text),
            _ => self.any(visitor),
        }
    }

    fn seq<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            return visitor.visit_seq(Items::new(&[], self.pruned));
        }
        self.any(visitor)
    }

    fn map<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            return visitor.visit_map(Entries::new(&[], self.pruned));
        }
        self.any(visitor)
    }

    fn option<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn bool<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.scalar() {
            Some(Scalar::Bool(b)) => visitor.visit_bool(b),
            _ => self.any(visitor),
        }
    }

    fn enumeration<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            Kind::Scalar { .. } if !self.node.is_null() => visitor.visit_enum(Variant {
                key: self,
                value: None,
            }),
            Kind::Map(entries) => {
                let live: Vec<&Entry> = entries
                    .iter()
                    .filter(|e| !self.pruned.contains(&e.value.id))
                    .collect();
                match live.as_slice() {
                    [entry] => visitor.visit_enum(Variant {
                        key: NodeDe {
                            node: &entry.key,
                            pruned: self.pruned,
                            prune: entry.value.id,
                        },
                        value: Some(self.child(&entry.value)),
                    }),
                    _ => Err(de::Error::invalid_value(
                        Unexpected::Map,
                        &"a map with a single key",
                    )),
                }
            }
            _ => self.any(visitor),
        }
    }
}

macro_rules! located {
    ($($method:ident => $how:ident,)*) => {
        $(
            fn $method<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
                self.$how(visitor).map_err(|e| self.locate(e))
            }
        )*
    };
}

impl<'a> de::Deserializer<'a> for NodeDe<'a> {
    type Error = DeError;

    located! {
        deserialize_any => any,
        deserialize_bool => bool,
        deserialize_i8 => any,
        deserialize_i16 => any,
        deserialize_i32 => any,
        deserialize_i64 => any,
        deserialize_i128 => any,
        deserialize_u8 => any,
        deserialize_u16 => any,
        deserialize_u32 => any,
        deserialize_u64 => any,
        deserialize_u128 => any,
        deserialize_f32 => any,
        deserialize_f64 => any,
        deserialize_char => str,
        deserialize_str => str,
        deserialize_string => str,
        deserialize_bytes => any,
        deserialize_byte_buf => any,
        deserialize_option => option,
        deserialize_unit => any,
        deserialize_seq => seq,
        deserialize_map => map,
        deserialize_identifier => str,
    }

    fn deserialize_unit_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.any(visitor).map_err(|e| self.locate(e))
    }

    fn deserialize_newtype_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor
            .visit_newtype_struct(self)
            .map_err(|e| self.locate(e))
    }

    fn deserialize_tuple<V: Visitor<'a>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.seq(visitor).map_err(|e| self.locate(e))
    }

    fn deserialize_tuple_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.seq(visitor).map_err(|e| self.locate(e))
    }

    fn deserialize_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if let Kind::Seq(_) = self.node.kind {
            // serde would take a list of field values; a config map is always a map.
            let error = de::Error::invalid_type(Unexpected::Seq, &visitor);
            return Err(self.locate(error));
        }
        self.map(visitor).map_err(|e| self.locate(e))
    }

    fn deserialize_enum<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.enumeration(visitor).map_err(|e| self.locate(e))
    }

    fn deserialize_ignored_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

impl<'a> IntoDeserializer<'a, DeError> for NodeDe<'a> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}
