//! The JSON tree the normaliser walks: strings borrowed from the body, objects as member lists.
//!
//! `Json<'a>` is read from the body in one strict pass (`strict_json::read`). Objects are vectors of
//! `(key, value)` in document order, not maps: SCIM objects are small, keys are already unique (the
//! strict reader refuses duplicates), and a 100-member group PATCH is 100 of them, so a hash map per
//! object was most of the cost of reading one. Strings borrow from the body unless they hold escapes.
//! The values a change keeps outlive the body: `into_owned` gives them the `'static` lifetime, and
//! they serialise exactly as a `serde_json::Value` with `preserve_order` would (`Serialize`,
//! `Display`). Does not: parse (see `strict_json`), or offer mutation beyond taking values apart.

use std::borrow::Cow;
use std::fmt;

use serde::ser::{Serialize, Serializer};
use serde_json::{Number, Value};

/// One JSON value whose strings borrow from `'a` (or are owned when they held escapes).
#[derive(Debug, Clone, PartialEq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    Number(Number),
    Str(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Members<'a>),
}

/// An object's members in document order; keys are unique under ASCII case folding.
pub type Members<'a> = Vec<(Cow<'a, str>, Json<'a>)>;

impl<'a> Json<'a> {
    /// A string's text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    /// An array's items.
    pub fn as_array(&self) -> Option<&[Json<'a>]> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }

    /// An object's members.
    pub fn as_object(&self) -> Option<&[(Cow<'a, str>, Json<'a>)]> {
        match self {
            Json::Object(members) => Some(members),
            _ => None,
        }
    }

    pub fn is_array(&self) -> bool {
        matches!(self, Json::Array(_))
    }

    pub fn is_object(&self) -> bool {
        matches!(self, Json::Object(_))
    }

    /// The member named exactly `key`, if this is an object that has it.
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.as_object()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The same value, owning its strings. Well-known SCIM keys stay borrowed from static text.
    pub fn into_owned(self) -> Json<'static> {
        match self {
            Json::Null => Json::Null,
            Json::Bool(b) => Json::Bool(b),
            Json::Number(n) => Json::Number(n),
            Json::Str(s) => Json::Str(Cow::Owned(s.into_owned())),
            Json::Array(items) => Json::Array(items.into_iter().map(Json::into_owned).collect()),
            Json::Object(members) => Json::Object(
                members
                    .into_iter()
                    .map(|(k, v)| (owned_key(k), v.into_owned()))
                    .collect(),
            ),
        }
    }

    /// The same value as a `serde_json::Value` (for readers that keep `Value`: the policy document,
    /// filter comparison values).
    pub fn into_value(self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(b),
            Json::Number(n) => Value::Number(n),
            Json::Str(s) => Value::String(s.into_owned()),
            Json::Array(items) => Value::Array(items.into_iter().map(Json::into_value).collect()),
            Json::Object(members) => {
                let mut map = serde_json::Map::with_capacity(members.len());
                for (k, v) in members {
                    map.insert(k.into_owned(), v.into_value());
                }
                Value::Object(map)
            }
        }
    }

    /// A `serde_json::Value` as an owned `Json` (test fixtures, values built in code).
    pub fn from_value(value: Value) -> Json<'static> {
        match value {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(b),
            Value::Number(n) => Json::Number(n),
            Value::String(s) => Json::Str(Cow::Owned(s)),
            Value::Array(items) => Json::Array(items.into_iter().map(Json::from_value).collect()),
            Value::Object(map) => Json::Object(
                map.into_iter()
                    .map(|(k, v)| (Cow::Owned(k), Json::from_value(v)))
                    .collect(),
            ),
        }
    }

    /// An owned string value.
    pub fn string(s: impl Into<String>) -> Json<'static> {
        Json::Str(Cow::Owned(s.into()))
    }
}

/// An owned key; the keys every member or multi-valued entry repeats stay static text instead of
/// one allocation each.
fn owned_key(k: Cow<'_, str>) -> Cow<'static, str> {
    match k.as_ref() {
        "value" => Cow::Borrowed("value"),
        "display" => Cow::Borrowed("display"),
        "$ref" => Cow::Borrowed("$ref"),
        "type" => Cow::Borrowed("type"),
        "primary" => Cow::Borrowed("primary"),
        _ => Cow::Owned(k.into_owned()),
    }
}

impl PartialEq<str> for Json<'_> {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == Some(other)
    }
}

impl PartialEq<&str> for Json<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == Some(*other)
    }
}

/// Whether `actual` equals `expected` as JSON values (objects compared as maps, as `Value` does).
pub fn equals_value(expected: &Value, actual: &Json<'_>) -> bool {
    match (expected, actual) {
        (Value::Null, Json::Null) => true,
        (Value::Bool(a), Json::Bool(b)) => a == b,
        (Value::Number(a), Json::Number(b)) => a == b,
        (Value::String(a), Json::Str(b)) => a == b,
        (Value::Array(a), Json::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| equals_value(x, y))
        }
        (Value::Object(a), Json::Object(b)) => {
            a.len() == b.len()
                && b.iter()
                    .all(|(k, v)| a.get(&**k).is_some_and(|x| equals_value(x, v)))
        }
        _ => false,
    }
}

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Number(n) => n.serialize(s),
            Json::Str(t) => s.serialize_str(t),
            Json::Array(items) => s.collect_seq(items),
            Json::Object(members) => s.collect_map(members.iter().map(|(k, v)| (k, v))),
        }
    }
}

/// Compact JSON text, as `serde_json::Value` prints it.
/// Read back as a `serde_json::Value` would be (the report reads audit records' values this way).
impl<'de> serde::Deserialize<'de> for Json<'static> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(Json::from_value)
    }
}

impl fmt::Display for Json<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serialises_as_value_does() {
        let v =
            json!({"b": [1, -2, 2.5, "x\"y", null, true], "a": {"z": {}, "c": []}, "value": "v"});
        let j = Json::from_value(v.clone());
        assert_eq!(j.to_string(), v.to_string());
        assert_eq!(serde_json::to_string(&j).unwrap(), v.to_string());
        assert_eq!(j.clone().into_owned().into_value(), v);
        assert!(equals_value(&v, &j));
        assert!(!equals_value(&json!({"b": 1}), &j));
    }

    #[test]
    fn accessors() {
        let j = Json::from_value(json!({"value": "a", "list": [1]}));
        assert_eq!(j.get("value").and_then(Json::as_str), Some("a"));
        assert_eq!(j.get("Value"), None);
        assert_eq!(
            j.get("list").and_then(Json::as_array).map(<[_]>::len),
            Some(1)
        );
        assert!(j.is_object() && !j.is_array());
        assert!(*j.get("value").unwrap() == "a");
    }
}
