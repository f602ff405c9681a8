//! Strict JSON: parse body bytes into a `serde_json::Value`, refusing what upstreams read differently.
//!
//! serde_json keeps the last of duplicate keys silently, while other servers keep the first or
//! fail; SCIM names are case-insensitive, so `op` and `OP` are duplicates too. This parser rejects
//! duplicate keys compared with ASCII case folding, non-ASCII or control characters in keys, a
//! byte-order mark, and nesting deeper than the configured limit.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::error::ScimError;

/// Parses `bytes` as one strict JSON document with at most `max_depth` levels of nesting.
pub fn parse(bytes: &[u8], max_depth: usize) -> Result<Value, ScimError> {
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

/// Parses a JSON document carried inside a string value (Entra sends roles this way).
pub fn parse_str(text: &str, max_depth: usize) -> Result<Value, ScimError> {
    parse(text.as_bytes(), max_depth)
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
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number out of range"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.deeper()?;
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(inner)? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.deeper()?;
        let mut out = Map::new();
        // Small objects (nearly all SCIM objects) compare folded keys by scanning; large ones hash.
        let mut seen: Option<HashSet<String>> = None;
        while let Some(key) = map.next_key::<String>()? {
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
                        out.keys().map(|k| k.to_ascii_lowercase()).collect();
                    let dup = !set.insert(key.to_ascii_lowercase());
                    seen = Some(set);
                    dup
                }
                None => out.keys().any(|k| k.eq_ignore_ascii_case(&key)),
            };
            if duplicate {
                return Err(de::Error::custom(format!(
                    "duplicate key `{key}` (keys are case-insensitive)"
                )));
            }
            let value = map.next_value_seed(inner)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
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
    fn accepts_plain_json() {
        let v = parse(br#"{"a":[1,2.5,"x",null,true],"b":{"c":"\u0061"}}"#, 32).unwrap();
        assert_eq!(v["b"]["c"], "a");
    }
}
