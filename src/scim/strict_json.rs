//! Strict JSON: read body bytes into a borrowed `Json` tree (or a `serde_json::Value`), refusing
//! what upstreams read differently.
//!
//! serde_json keeps the last of duplicate keys silently, while other servers keep the first or
//! fail; SCIM names are case-insensitive, so `op` and `OP` are duplicates too. This parser rejects
//! duplicate keys compared with ASCII case folding, non-ASCII or control characters in keys, a
//! byte-order mark, and nesting deeper than the configured limit, all in the one serde pass that
//! builds the tree (strings borrowed from `bytes` unless they hold escapes).

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

use super::error::ScimError;
use super::json::{Json, Members};

/// Parses `bytes` as one strict JSON document with at most `max_depth` levels of nesting, as a
/// `serde_json::Value` (for readers that keep one: the policy document, filter values, responses).
pub fn parse(bytes: &[u8], max_depth: usize) -> Result<Value, ScimError> {
    read(bytes, max_depth).map(Json::into_value)
}

/// Reads `bytes` as one strict JSON document with at most `max_depth` levels of nesting, borrowing
/// its strings from `bytes`.
pub fn read(bytes: &[u8], max_depth: usize) -> Result<Json<'_>, ScimError> {
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Err(ScimError::syntax(
            "a byte-order mark is not accepted before JSON",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = Strict {
        depth: 0,
        max_depth,
    }
    .deserialize(&mut de)
    .map_err(|e| ScimError::syntax(format!("the body is not valid JSON: {e}")))?;
    de.end()
        .map_err(|e| ScimError::syntax(format!("trailing data after the JSON body: {e}")))?;
    Ok(value)
}

/// Reads a JSON document carried inside a string value (Entra sends roles this way).
pub fn read_str(text: &str, max_depth: usize) -> Result<Json<'_>, ScimError> {
    read(text.as_bytes(), max_depth)
}

#[derive(Clone, Copy)]
struct Strict {
    depth: usize,
    max_depth: usize,
}

impl Strict {
    fn deeper<E: de::Error>(self) -> Result<Strict, E> {
        if self.depth >= self.max_depth {
            return Err(E::custom(format!(
                "nesting deeper than {} levels",
                self.max_depth
            )));
        }
        Ok(Strict {
            depth: self.depth + 1,
            max_depth: self.max_depth,
        })
    }
}

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Json<'de>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Json<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json<'de>, E> {
        Number::from_f64(v)
            .map(Json::Number)
            .ok_or_else(|| E::custom("a number out of range"))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let inner = self.deeper()?;
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element_seed(inner)? {
            items.push(v);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let inner = self.deeper()?;
        let mut out: Members<'de> = Vec::new();
        // Small objects (nearly all SCIM objects) compare folded keys by scanning; large ones hash.
        let mut seen: Option<HashSet<String>> = None;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            if !key.is_ascii() || key.chars().any(|c| c.is_ascii_control()) {
                return Err(de::Error::custom(format!(
                    "the key `{}` has non-ASCII or control characters",
                    key.escape_default()
                )));
            }
            let duplicate = match seen.as_mut() {
                Some(set) => !set.insert(key.to_ascii_lowercase()),
                None if out.len() >= 16 => {
                    let mut set: HashSet<String> =
                        out.iter().map(|(k, _)| k.to_ascii_lowercase()).collect();
                    let dup = !set.insert(key.to_ascii_lowercase());
                    seen = Some(set);
                    dup
                }
                None => out.iter().any(|(k, _)| k.eq_ignore_ascii_case(&key)),
            };
            if duplicate {
                return Err(de::Error::custom(format!(
                    "duplicate key `{key}` (keys are case-insensitive)"
                )));
            }
            let value = map.next_value_seed(inner)?;
            out.push((key, value));
        }
        Ok(Json::Object(out))
    }
}

/// An object key, borrowed from the input unless it holds escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn rejects_ambiguity() {
        assert!(parse(br#"{"op":"add","op":"remove"}"#, 32).is_err());
        assert!(parse(br#"{"op":"add","OP":"remove"}"#, 32).is_err());
        assert!(parse(br#"{"a":{"x":1,"X":2}}"#, 32).is_err());
        assert!(parse(b"\xEF\xBB\xBF{}", 32).is_err());
        assert!(parse(br#"{"\u017fa":1}"#, 32).is_err());
        assert!(parse(br#"{} {}"#, 32).is_err());
        assert!(parse(br#"[[[[1]]]]"#, 3).is_err());
        assert!(parse(br#"[[[1]]]"#, 3).is_ok());
        assert!(parse(br#"1e400"#, 3).is_err());
    }

    #[test]
    fn strings_borrow_unless_escaped() {
        let bytes = br#"{"a":"plain","b\u0063":"x\u0079"}"#;
        let Json::Object(members) = read(bytes, 4).unwrap() else {
            panic!()
        };
        assert!(matches!(&members[0].0, Cow::Borrowed("a")));
        assert!(matches!(&members[0].1, Json::Str(Cow::Borrowed("plain"))));
        assert!(matches!(&members[1].0, Cow::Owned(k) if k == "bc"));
        assert!(matches!(&members[1].1, Json::Str(Cow::Owned(v)) if v == "xy"));
    }

    #[test]
    fn errors_name_the_problem() {
        let detail = |b: &[u8], d| read(b, d).unwrap_err().detail;
        assert!(detail(br#"{"op":1,"OP":2}"#, 4)
            .contains("duplicate key `OP` (keys are case-insensitive)"));
        assert!(detail(br#"[[1]]"#, 1).contains("nesting deeper than 1 levels"));
        assert!(detail(b"\xEF\xBB\xBF{}", 4).contains("byte-order mark"));
        assert!(detail(br#"{"\u00e9":1}"#, 4).contains("non-ASCII or control characters"));
        let many: String = (0..40).map(|i| format!("\"k{i}\":1,")).collect();
        assert!(detail(format!("{{{many}\"K39\":2}}").as_bytes(), 4).contains("duplicate key"));
    }

    #[test]
    fn accepts_plain_json() {
        let v = parse(br#"{"a":[1,2.5,"x",null,true],"b":{"c":"\u0061"}}"#, 32).unwrap();
        assert_eq!(v["b"]["c"], "a");
    }
}
