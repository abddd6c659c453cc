//! The serde access types over the located tree: the live items of a sequence, the live
//! entries of a map, and the variant of an enum.

use serde::de::{
    self, DeserializeSeed, EnumAccess, MapAccess, SeqAccess, Unexpected, VariantAccess, Visitor,
};

use super::{DeError, NodeDe, Pruned};
use crate::config::yaml::{Entry, Node};

/// The live items of a sequence.
pub(super) struct Items<'a> {
    items: std::slice::Iter<'a, Node>,
    pruned: &'a Pruned,
}

impl<'a> Items<'a> {
    pub(super) fn new(items: &'a [Node], pruned: &'a Pruned) -> Self {
        Items {
            items: items.iter(),
            pruned,
        }
    }
}

impl<'a> SeqAccess<'a> for Items<'a> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'a>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let pruned = self.pruned;
        let Some(item) = self.items.find(|item| !pruned.contains(&item.id)) else {
            return Ok(None);
        };
        let de = NodeDe {
            node: item,
            pruned,
            prune: item.id,
        };
        seed.deserialize(de).map(Some).map_err(|e| de.locate(e))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(
            self.items
                .clone()
                .filter(|item| !self.pruned.contains(&item.id))
                .count(),
        )
    }
}

/// The live entries of a map.
pub(super) struct Entries<'a> {
    entries: std::slice::Iter<'a, Entry>,
    pruned: &'a Pruned,
    value: Option<&'a Node>,
}

impl<'a> Entries<'a> {
    pub(super) fn new(entries: &'a [Entry], pruned: &'a Pruned) -> Self {
        Entries {
            entries: entries.iter(),
            pruned,
            value: None,
        }
    }
}

impl<'a> MapAccess<'a> for Entries<'a> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'a>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let pruned = self.pruned;
        let Some(entry) = self.entries.find(|e| !pruned.contains(&e.value.id)) else {
            return Ok(None);
        };
        self.value = Some(&entry.value);
        let de = NodeDe {
            node: &entry.key,
            pruned,
            prune: entry.value.id,
        };
        seed.deserialize(de).map(Some).map_err(|e| de.locate(e))
    }

    fn next_value_seed<V: DeserializeSeed<'a>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let value = self
            .value
            .take()
            .ok_or_else(|| <DeError as de::Error>::custom("value requested before its key"))?;
        let de = NodeDe {
            node: value,
            pruned: self.pruned,
            prune: value.id,
        };
        // Errors raised after the value was read (an untagged enum that matched no variant)
        // still belong to the value.
        seed.deserialize(de).map_err(|e| de.locate(e))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(
            self.entries
                .clone()
                .filter(|e| !self.pruned.contains(&e.value.id))
                .count(),
        )
    }
}

/// An enum written as `variant` or `{ variant: value }`.
pub(super) struct Variant<'a> {
    pub(super) key: NodeDe<'a>,
    pub(super) value: Option<NodeDe<'a>>,
}

impl<'a> EnumAccess<'a> for Variant<'a> {
    type Error = DeError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'a>>(self, seed: V) -> Result<(V::Value, Self), DeError> {
        let key = self.key;
        let variant = seed.deserialize(key).map_err(|e| key.locate(e))?;
        Ok((variant, self))
    }
}

impl<'a> VariantAccess<'a> for Variant<'a> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        match self.value {
            Some(value) if !value.node.is_null() => Err(value.locate(de::Error::invalid_type(
                Unexpected::Other("a value"),
                &"nothing after a unit variant",
            ))),
            _ => Ok(()),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'a>>(self, seed: T) -> Result<T::Value, DeError> {
        match self.value {
            Some(value) => seed.deserialize(value).map_err(|e| value.locate(e)),
            None => Err(self.key.locate(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"a variant with a value",
            ))),
        }
    }

    fn tuple_variant<V: Visitor<'a>>(self, len: usize, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Some(value) => de::Deserializer::deserialize_tuple(value, len, visitor),
            None => Err(self.key.locate(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"a variant with a list",
            ))),
        }
    }

    fn struct_variant<V: Visitor<'a>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.value {
            Some(value) => de::Deserializer::deserialize_struct(value, "", fields, visitor),
            None => Err(self.key.locate(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"a variant with a map",
            ))),
        }
    }
}
