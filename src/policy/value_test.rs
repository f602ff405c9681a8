//! Tests on values: equals, any-of, regex (`regex-lite`), boolean, numeric.
//!
//! A value test on an array matches when any element matches; on an object (a complex value such as
//! `{"value":"admin","display":"Admin"}`) when any of its member values matches, so a rule on
//! `roles` sees the role whichever sub-attribute carries it. Strings that read as booleans
//! (`"False"`, `"true"`) satisfy boolean tests, as lenient upstreams coerce them.

use regex_lite::Regex;
use serde_json::Value;

use crate::scim::json::{self, Json};

#[derive(Debug, Clone)]
pub enum ValueTest {
    /// Equal to the JSON value; strings compare case-insensitively.
    Equals(Value),
    AnyOf(Vec<Value>),
    Matches(Regex),
    Is(bool),
    Gt(f64),
    Gte(f64),
    Lt(f64),
    Lte(f64),
}

impl ValueTest {
    /// Whether `value` (or, for arrays and objects, any member of it) satisfies the test.
    pub fn matches(&self, value: &Json<'_>) -> bool {
        self.matches_depth(value, 0)
    }

    fn matches_depth(&self, value: &Json<'_>, depth: usize) -> bool {
        match value {
            Json::Array(items) if depth < 4 => {
                items.iter().any(|v| self.matches_depth(v, depth + 1))
            }
            Json::Object(members) if depth < 4 => members
                .iter()
                .any(|(_, v)| self.matches_depth(v, depth + 1)),
            _ => self.matches_scalar(value),
        }
    }

    fn matches_scalar(&self, value: &Json<'_>) -> bool {
        match self {
            ValueTest::Equals(expected) => scalar_eq(expected, value),
            ValueTest::AnyOf(list) => list.iter().any(|e| scalar_eq(e, value)),
            ValueTest::Matches(re) => value.as_str().is_some_and(|s| re.is_match(s)),
            ValueTest::Is(b) => as_bool(value) == Some(*b),
            ValueTest::Gt(n) => as_number(value).is_some_and(|v| v > *n),
            ValueTest::Gte(n) => as_number(value).is_some_and(|v| v >= *n),
            ValueTest::Lt(n) => as_number(value).is_some_and(|v| v < *n),
            ValueTest::Lte(n) => as_number(value).is_some_and(|v| v <= *n),
        }
    }
}

fn scalar_eq(expected: &Value, value: &Json<'_>) -> bool {
    match (expected, value) {
        (Value::String(a), Json::Str(b)) => a.eq_ignore_ascii_case(b),
        (Value::Bool(a), v) => as_bool(v) == Some(*a),
        (Value::Number(a), v) => a.as_f64().is_some_and(|a| as_number(v) == Some(a)),
        (a, b) => json::equals_value(a, b),
    }
}

/// A boolean, or a string that lenient upstreams read as one (`"True"`, `"false"`).
pub fn as_bool(value: &Json<'_>) -> Option<bool> {
    match value {
        Json::Bool(b) => Some(*b),
        Json::Str(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Json::Str(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn as_number(value: &Json<'_>) -> Option<f64> {
    match value {
        Json::Number(n) => n.as_f64(),
        Json::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn matches(t: &ValueTest, v: Value) -> bool {
        t.matches(&Json::from_value(v))
    }

    #[test]
    fn complex_values_match_by_member() {
        let t = ValueTest::Matches(Regex::new("(?i)admin").unwrap());
        assert!(matches(&t, json!({"value": "GlobalAdmin", "display": "x"})));
        assert!(matches(
            &t,
            json!([{"value": "reader"}, {"value": "admin"}])
        ));
        assert!(!matches(&t, json!({"value": "reader"})));
    }

    #[test]
    fn string_booleans() {
        assert!(matches(&ValueTest::Is(false), json!("False")));
        assert!(matches(&ValueTest::Equals(json!(true)), json!("TRUE")));
        assert!(!matches(&ValueTest::Is(true), json!(1)));
    }
}
