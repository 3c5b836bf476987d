//! Items from types and back, derived with serde: a record type says how it is stored with
//! `#[derive(Serialize, Deserialize)]` and its field attributes, and [`Item::record`] and
//! [`Item::read`] do the rest.
//!
//! The mapping, the one DynamoDB documents for its own SDKs' object mappers:
//!
//! | Rust | Attribute |
//! |---|---|
//! | `String`, `&str`, a unit enum variant | `S` |
//! | integers | `N` |
//! | a decimal (a field with `#[serde(with = "number")]`) | `N`, exactly |
//! | `bool` | `BOOL` |
//! | `None` | `NULL` (or no attribute, with `skip_serializing_if`) |
//! | a sequence | `L` (a tuple is refused) |
//! | a struct, a map with string keys | `M` |
//!
//! Floats are refused: no amount is ever a float. On the way back a missing attribute is `None`
//! for an `Option` (one read through an adapter needs `#[serde(default)]` for that) and an error
//! for anything else, and every error names the attribute it is at (`in_flight.points`), as
//! [`MalformedItem`] does.
//!
//! Field adapters for the shapes the table uses: [`number`] for decimals (points, quantities,
//! rates), [`rfc3339`] and [`date`] for times and days, [`word`] for the domain's enums stored
//! by name. Each has an `optional` form for an `Option` field.

use std::collections::BTreeMap;
use std::fmt;

use rust_decimal::Decimal;
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::ser::{self, Serialize};

use super::item::{Attr, Item, Key, MalformedItem};

/// The newtype name [`number`] serializes a decimal under, as its exact text: the one way a
/// decimal reaches an `N` attribute.
const NUMBER: &str = "$store::number";

impl Item {
    /// The item of a record: its key, its entity type and the record's fields as attributes.
    /// Panics if `record` is not a struct of storable fields (a float, a map with other keys than
    /// strings): a bug in the record's type, found by its first test.
    pub fn record<T: Serialize + ?Sized>(key: &Key, entity_type: &str, record: &T) -> Item {
        Self::record_with(key, entity_type, |s| record.serialize(s))
    }

    /// [`Item::record`] through a serializer of its own: a domain type's, declared in the store
    /// with `#[serde(remote = "...")]` (`|s| PlanDef::serialize(plan, s)`).
    pub fn record_with(
        key: &Key,
        entity_type: &str,
        serialize: impl FnOnce(AttrSerializer) -> Result<Attr, Error>,
    ) -> Item {
        let mut item = Item::new(key, entity_type);
        match serialize(AttrSerializer) {
            Ok(Attr::M(fields)) => item.0.extend(fields),
            Ok(other) => panic!("a record is a struct, not {other:?}"),
            Err(e) => panic!("a record's fields are storable: {e}"),
        }
        item
    }

    /// The record this item holds (its key and entity type are not part of it).
    pub fn read<T: DeserializeOwned>(&self) -> Result<T, MalformedItem> {
        self.read_with(T::deserialize)
    }

    /// [`Item::read`] through a deserializer of its own (`PlanDef::deserialize`).
    pub fn read_with<'a, T>(
        &'a self,
        deserialize: impl FnOnce(AttrsDeserializer<'a>) -> Result<T, Error>,
    ) -> Result<T, MalformedItem> {
        deserialize(AttrsDeserializer(&self.0)).map_err(|e| MalformedItem { key: self.key(), attr: e.attr() })
    }
}

/// A value as one attribute (an entry of a list or a map inside an item).
pub fn to_attr<T: Serialize + ?Sized>(value: &T) -> Result<Attr, Error> {
    value.serialize(AttrSerializer)
}

/// [`to_attr`] through a serializer of its own.
pub fn to_attr_with(serialize: impl FnOnce(AttrSerializer) -> Result<Attr, Error>) -> Result<Attr, Error> {
    serialize(AttrSerializer)
}

/// A value from one attribute, through a deserializer of its own.
pub fn from_attr_with<'a, T>(
    attr: &'a Attr,
    deserialize: impl FnOnce(AttrDeserializer<'a>) -> Result<T, Error>,
) -> Result<T, Error> {
    deserialize(AttrDeserializer(attr))
}

/// Why a value could not be stored or read, and at which attribute.
#[derive(Debug)]
pub struct Error {
    /// Outermost first.
    path: Vec<String>,
    message: String,
}

impl Error {
    fn at(mut self, name: &str) -> Self {
        self.path.insert(0, name.to_owned());
        self
    }

    pub(crate) fn attr(&self) -> String {
        if self.path.is_empty() { self.message.clone() } else { self.path.join(".") }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path.join("."), self.message)
        }
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self { path: vec![], message: msg.to_string() }
    }
}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self { path: vec![], message: msg.to_string() }
    }

    fn missing_field(field: &'static str) -> Self {
        Self { path: vec![field.to_owned()], message: "missing".into() }
    }
}

// ---- to attributes ----------------------------------------------------------------------

/// Turns a value into an [`Attr`].
pub struct AttrSerializer;

fn refused(what: &str) -> Error {
    ser::Error::custom(format!("{what} can't be stored"))
}

/// Integers are `N` attributes.
macro_rules! serialize_integers {
    ($($method:ident $t:ty),*) => {$(
        fn $method(self, v: $t) -> Result<Attr, Error> {
            Ok(Attr::n(v))
        }
    )*};
}

impl ser::Serializer for AttrSerializer {
    type Ok = Attr;
    type Error = Error;
    type SerializeSeq = SeqSerializer;
    type SerializeTuple = ser::Impossible<Attr, Error>;
    type SerializeTupleStruct = ser::Impossible<Attr, Error>;
    type SerializeTupleVariant = ser::Impossible<Attr, Error>;
    type SerializeMap = MapSerializer;
    type SerializeStruct = MapSerializer;
    type SerializeStructVariant = ser::Impossible<Attr, Error>;

    fn serialize_bool(self, v: bool) -> Result<Attr, Error> {
        Ok(Attr::Bool(v))
    }
    serialize_integers!(serialize_i8 i8, serialize_i16 i16, serialize_i32 i32, serialize_i64 i64);
    serialize_integers!(serialize_u8 u8, serialize_u16 u16, serialize_u32 u32, serialize_u64 u64);

    fn serialize_f32(self, _: f32) -> Result<Attr, Error> {
        Err(refused("a float"))
    }
    fn serialize_f64(self, _: f64) -> Result<Attr, Error> {
        Err(refused("a float"))
    }
    fn serialize_char(self, v: char) -> Result<Attr, Error> {
        Ok(Attr::S(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Attr, Error> {
        Ok(Attr::s(v))
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<Attr, Error> {
        Err(refused("bytes"))
    }
    fn serialize_none(self) -> Result<Attr, Error> {
        Ok(Attr::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Attr, Error> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<Attr, Error> {
        Ok(Attr::Null)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Attr, Error> {
        Ok(Attr::Null)
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<Attr, Error> {
        Ok(Attr::s(variant))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, name: &'static str, v: &T) -> Result<Attr, Error> {
        match v.serialize(self)? {
            Attr::S(text) if name == NUMBER => {
                text.parse::<Decimal>().map(Attr::N).map_err(|_| refused("a malformed number"))
            }
            attr => Ok(attr),
        }
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<Attr, Error> {
        Ok(Attr::M(BTreeMap::from([(variant.to_owned(), v.serialize(self)?)])))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqSerializer, Error> {
        Ok(SeqSerializer(Vec::with_capacity(len.unwrap_or(0))))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
        Err(refused("a tuple"))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, Error> {
        Err(refused("a tuple struct"))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(refused("a tuple variant"))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<MapSerializer, Error> {
        Ok(MapSerializer { fields: BTreeMap::new(), key: None })
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<MapSerializer, Error> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(refused("a struct variant"))
    }
}

#[doc(hidden)]
pub struct SeqSerializer(Vec<Attr>);

impl ser::SerializeSeq for SeqSerializer {
    type Ok = Attr;
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.0.push(v.serialize(AttrSerializer)?);
        Ok(())
    }
    fn end(self) -> Result<Attr, Error> {
        Ok(Attr::L(self.0))
    }
}

#[doc(hidden)]
pub struct MapSerializer {
    fields: BTreeMap<String, Attr>,
    key: Option<String>,
}

impl ser::SerializeMap for MapSerializer {
    type Ok = Attr;
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        match key.serialize(AttrSerializer)? {
            Attr::S(name) => {
                self.key = Some(name);
                Ok(())
            }
            _ => Err(refused("a map key other than a string")),
        }
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        let name = self.key.take().expect("serde gives a key before its value");
        let value = v.serialize(AttrSerializer).map_err(|e| e.at(&name))?;
        self.fields.insert(name, value);
        Ok(())
    }
    fn end(self) -> Result<Attr, Error> {
        Ok(Attr::M(self.fields))
    }
}

impl ser::SerializeStruct for MapSerializer {
    type Ok = Attr;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, name: &'static str, v: &T) -> Result<(), Error> {
        let value = v.serialize(AttrSerializer).map_err(|e| e.at(name))?;
        self.fields.insert(name.to_owned(), value);
        Ok(())
    }
    fn end(self) -> Result<Attr, Error> {
        Ok(Attr::M(self.fields))
    }
}

// ---- from attributes --------------------------------------------------------------------

/// Reads a value from an [`Attr`].
pub struct AttrDeserializer<'a>(&'a Attr);

impl AttrDeserializer<'_> {
    fn wrong(&self, expected: &str) -> Error {
        let found = match self.0 {
            Attr::S(_) => "a string",
            Attr::N(_) => "a number",
            Attr::Bool(_) => "a boolean",
            Attr::Null => "null",
            Attr::L(_) => "a list",
            Attr::M(_) => "a map",
        };
        de::Error::custom(format!("{found}, not {expected}"))
    }

    /// The attribute as an integer, if it is a whole number.
    fn integer(&self) -> Option<Decimal> {
        match self.0 {
            Attr::N(n) if n.fract().is_zero() => Some(*n),
            _ => None,
        }
    }
}

macro_rules! integers {
    ($($method:ident $visit:ident $t:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.integer().and_then(|n| <$t>::try_from(n).ok()) {
                Some(v) => visitor.$visit(v),
                None => Err(self.wrong(stringify!($t))),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for AttrDeserializer<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Attr::S(s) => visitor.visit_borrowed_str(s),
            Attr::N(n) => {
                let whole = self.integer();
                if let Some(i) = whole.and_then(|n| i64::try_from(n).ok()) {
                    visitor.visit_i64(i)
                } else if let Some(u) = whole.and_then(|n| u64::try_from(n).ok()) {
                    visitor.visit_u64(u)
                } else {
                    visitor.visit_string(n.to_string())
                }
            }
            Attr::Bool(b) => visitor.visit_bool(*b),
            Attr::Null => visitor.visit_unit(),
            Attr::L(l) => visitor.visit_seq(SeqAccess(l.iter(), 0)),
            Attr::M(m) => visitor.visit_map(MapAccess { entries: m.iter(), value: None }),
        }
    }

    integers! {
        deserialize_i8 visit_i8 i8, deserialize_i16 visit_i16 i16, deserialize_i32 visit_i32 i32,
        deserialize_i64 visit_i64 i64, deserialize_u8 visit_u8 u8, deserialize_u16 visit_u16 u16,
        deserialize_u32 visit_u32 u32, deserialize_u64 visit_u64 u64,
    }

    fn deserialize_f32<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
        Err(de::Error::custom("a float can't be read from a table"))
    }
    fn deserialize_f64<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
        Err(de::Error::custom("a float can't be read from a table"))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Attr::Bool(b) => visitor.visit_bool(*b),
            _ => Err(self.wrong("a boolean")),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Attr::S(s) => visitor.visit_borrowed_str(s),
            _ => Err(self.wrong("a string")),
        }
    }
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }
    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Attr::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Attr::N(n) if name == NUMBER => visitor.visit_string(n.to_string()),
            _ if name == NUMBER => Err(self.wrong("a number")),
            _ => visitor.visit_newtype_struct(self),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Attr::L(l) => visitor.visit_seq(SeqAccess(l.iter(), 0)),
            _ => Err(self.wrong("a list")),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Attr::M(m) => visitor.visit_map(MapAccess { entries: m.iter(), value: None }),
            _ => Err(self.wrong("a map")),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Attr::S(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            _ => Err(self.wrong("a name")),
        }
    }

    serde::forward_to_deserialize_any! {
        bytes byte_buf unit unit_struct tuple tuple_struct struct identifier ignored_any i128 u128
    }
}

/// Reads a record from an item's attributes, without copying them.
pub struct AttrsDeserializer<'a>(&'a BTreeMap<String, Attr>);

impl<'de> de::Deserializer<'de> for AttrsDeserializer<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_map(MapAccess { entries: self.0.iter(), value: None })
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

#[doc(hidden)]
pub struct SeqAccess<'a>(std::slice::Iter<'a, Attr>, usize);

impl<'de> de::SeqAccess<'de> for SeqAccess<'de> {
    type Error = Error;
    fn next_element_seed<T: de::DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        let Some(attr) = self.0.next() else { return Ok(None) };
        let at = self.1;
        self.1 += 1;
        seed.deserialize(AttrDeserializer(attr)).map(Some).map_err(|e| e.at(&format!("[{at}]")))
    }
}

#[doc(hidden)]
pub struct MapAccess<'a> {
    entries: std::collections::btree_map::Iter<'a, String, Attr>,
    value: Option<(&'a str, &'a Attr)>,
}

impl<'de> de::MapAccess<'de> for MapAccess<'de> {
    type Error = Error;
    fn next_key_seed<K: de::DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        let Some((name, attr)) = self.entries.next() else { return Ok(None) };
        self.value = Some((name, attr));
        seed.deserialize(de::value::BorrowedStrDeserializer::new(name)).map(Some)
    }
    fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let (name, attr) = self.value.take().expect("serde asks for a value after its key");
        seed.deserialize(AttrDeserializer(attr)).map_err(|e| e.at(name))
    }
}

// ---- field adapters ---------------------------------------------------------------------

/// A decimal the table holds exactly, in an `N` attribute.
pub trait Numeric: Sized {
    fn to_decimal(&self) -> Decimal;
    fn from_decimal(d: Decimal) -> Result<Self, String>;
}

impl Numeric for Decimal {
    fn to_decimal(&self) -> Decimal {
        *self
    }
    fn from_decimal(d: Decimal) -> Result<Self, String> {
        Ok(d)
    }
}

impl Numeric for domain::Points {
    fn to_decimal(&self) -> Decimal {
        self.as_decimal()
    }
    fn from_decimal(d: Decimal) -> Result<Self, String> {
        domain::Points::from_decimal(d).map_err(|e| e.to_string())
    }
}

impl Numeric for domain::UsageQuantity {
    fn to_decimal(&self) -> Decimal {
        self.as_decimal()
    }
    fn from_decimal(d: Decimal) -> Result<Self, String> {
        domain::UsageQuantity::from_decimal(d).map_err(|e| e.to_string())
    }
}

/// `#[serde(with = "number")]`: a [`Numeric`] as an `N` attribute.
pub mod number {
    use super::*;

    pub fn serialize<T: Numeric, S: ser::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_newtype_struct(NUMBER, &v.to_decimal().to_string())
    }

    pub fn deserialize<'de, T: Numeric, D: de::Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        struct Text;
        impl<'de> Visitor<'de> for Text {
            type Value = String;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
                Ok(v.to_owned())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
                Ok(v.to_string())
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
                Ok(v.to_string())
            }
            // Through serde's buffering (a flattened field), the number comes as what it held.
            fn visit_newtype_struct<D: de::Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
                d.deserialize_any(self)
            }
        }
        let text = d.deserialize_newtype_struct(NUMBER, Text)?;
        let decimal = text.parse::<Decimal>().map_err(de::Error::custom)?;
        T::from_decimal(decimal).map_err(de::Error::custom)
    }

    /// `#[serde(with = "number::optional")]`: `None` is `NULL`.
    pub mod optional {
        use super::*;

        pub fn serialize<T: Numeric, S: ser::Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
            match v {
                Some(v) => super::serialize(v, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, T: Numeric, D: de::Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
            struct Wrapped(Decimal);
            impl<'de> de::Deserialize<'de> for Wrapped {
                fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                    super::deserialize::<Decimal, D>(d).map(Wrapped)
                }
            }
            match <Option<Wrapped> as de::Deserialize>::deserialize(d)? {
                Some(Wrapped(v)) => T::from_decimal(v).map(Some).map_err(de::Error::custom),
                None => Ok(None),
            }
        }
    }
}

/// `#[serde(with = "rfc3339")]`: a time as RFC 3339 text (`2026-05-15T10:30:00Z`).
pub mod rfc3339 {
    use super::*;
    use time::OffsetDateTime;

    pub fn serialize<S: ser::Serializer>(at: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::records::rfc3339(*at))
    }

    pub fn deserialize<'de, D: de::Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = <String as de::Deserialize>::deserialize(d)?;
        OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339).map_err(de::Error::custom)
    }

    /// `#[serde(with = "rfc3339::optional")]`: `None` is `NULL`.
    pub mod optional {
        use super::*;

        pub fn serialize<S: ser::Serializer>(at: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
            match at {
                Some(at) => super::serialize(at, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: de::Deserializer<'de>>(d: D) -> Result<Option<OffsetDateTime>, D::Error> {
            <Option<String> as de::Deserialize>::deserialize(d)?
                .map(|text| OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339))
                .transpose()
                .map_err(de::Error::custom)
        }
    }
}

/// `#[serde(with = "date")]`: a day as `2026-05-31`.
pub mod date {
    use super::*;
    use time::Date;

    pub fn serialize<S: ser::Serializer>(d: &Date, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::records::format_date(*d))
    }

    pub fn deserialize<'de, D: de::Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        let text = <String as de::Deserialize>::deserialize(d)?;
        crate::records::parse_date(&text).map_err(de::Error::custom)
    }
}

/// One of the domain's enums, stored by the name it gives itself.
pub trait Word: Sized {
    fn word(&self) -> &'static str;
    fn from_word(s: &str) -> Option<Self>;
}

impl Word for domain::PlanId {
    fn word(&self) -> &'static str {
        self.as_str()
    }
    fn from_word(s: &str) -> Option<Self> {
        domain::PlanId::parse(s).ok()
    }
}

impl Word for domain::AddonCode {
    fn word(&self) -> &'static str {
        self.as_str()
    }
    fn from_word(s: &str) -> Option<Self> {
        domain::AddonCode::parse(s).ok()
    }
}

impl Word for domain::CheckoutStatus {
    fn word(&self) -> &'static str {
        self.as_str()
    }
    fn from_word(s: &str) -> Option<Self> {
        domain::CheckoutStatus::parse(s)
    }
}

/// `#[serde(with = "word")]`: a [`Word`] as an `S` attribute.
pub mod word {
    use super::*;

    pub fn serialize<T: Word, S: ser::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.word())
    }

    pub fn deserialize<'de, T: Word, D: de::Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        let text = <String as de::Deserialize>::deserialize(d)?;
        T::from_word(&text).ok_or_else(|| de::Error::custom(format!("{text:?} is not a known name")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};
    use time::OffsetDateTime;
    use time::macros::datetime;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        name: String,
        count: u32,
        #[serde(with = "number")]
        points: domain::Points,
        #[serde(default, with = "number::optional")]
        cap: Option<domain::Points>,
        #[serde(with = "rfc3339")]
        at: OffsetDateTime,
        #[serde(with = "rfc3339::optional")]
        until: Option<OffsetDateTime>,
        #[serde(with = "word")]
        plan: domain::PlanId,
        flag: bool,
        tags: Vec<String>,
        inner: Inner,
        #[serde(skip_serializing_if = "Option::is_none")]
        absent: Option<String>,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Inner {
        #[serde(with = "number")]
        exact: Decimal,
    }

    fn sample() -> Sample {
        Sample {
            name: "a".into(),
            count: 3,
            points: domain::Points::parse("12.50").unwrap(),
            cap: None,
            at: datetime!(2026-05-15 10:30 UTC),
            until: Some(datetime!(2026-05-16 0:00 UTC)),
            plan: domain::PlanId::Growth,
            flag: true,
            tags: vec!["x".into()],
            inner: Inner { exact: "0.0350".parse().unwrap() },
            absent: None,
        }
    }

    #[test]
    fn a_record_is_stored_attribute_by_attribute_and_read_back() {
        let key = Key::new("PK#1", "SK");
        let item = Item::record(&key, "sample", &sample());
        assert_eq!(item.key(), Some(key));
        assert_eq!(item.get("count"), Some(&Attr::n(3)));
        assert_eq!(item.get("points"), Some(&Attr::N("12.50".parse().unwrap())));
        assert_eq!(item.get("cap"), Some(&Attr::Null));
        assert_eq!(item.get("at"), Some(&Attr::s("2026-05-15T10:30:00Z")));
        assert_eq!(item.get("plan"), Some(&Attr::s("growth")));
        assert_eq!(item.get("absent"), None, "skipped, not NULL");
        assert_eq!(item.read::<Sample>().unwrap(), sample());
    }

    #[test]
    fn a_bad_attribute_is_named_where_it_is() {
        let key = Key::new("PK#1", "SK");
        let mut item = Item::record(&key, "sample", &sample());
        item.set("inner", Attr::M(BTreeMap::from([("exact".to_owned(), Attr::s("1"))])));
        assert_eq!(item.read::<Sample>().unwrap_err().attr, "inner.exact");
        let mut item = Item::record(&key, "sample", &sample());
        item.0.remove("count");
        assert_eq!(item.read::<Sample>().unwrap_err().attr, "count");
        let mut item = Item::record(&key, "sample", &sample());
        item.set("count", Attr::N("1.5".parse().unwrap()));
        assert_eq!(item.read::<Sample>().unwrap_err().attr, "count", "a fraction is not a count");
        let mut item = Item::record(&key, "sample", &sample());
        item.set("plan", Attr::s("platinum"));
        assert_eq!(item.read::<Sample>().unwrap_err().attr, "plan");
        let mut item = Item::record(&key, "sample", &sample());
        item.set("tags", Attr::L(vec![Attr::s("x"), Attr::n(1)]));
        assert_eq!(item.read::<Sample>().unwrap_err().attr, "tags.[1]");
        let mut item = Item::record(&key, "sample", &sample());
        item.0.remove("cap");
        assert_eq!(item.read::<Sample>().unwrap().cap, None, "a missing optional attribute is None");
    }

    #[test]
    fn floats_are_never_stored() {
        #[derive(Serialize)]
        struct Float {
            x: f64,
        }
        let stored = std::panic::catch_unwind(|| Item::record(&Key::new("a", "b"), "float", &Float { x: 0.1 }));
        assert!(stored.is_err());
    }
}
