//! Generated values in a request body: `{"$repeat": N, "item": <template>}` becomes a list of N
//! copies of the template, with `{i}` in its strings replaced by the copy's index.
//!
//! Why a generator rather than literal copies: a case about the thousandth operation of a PATCH
//! is one line of intent, and 5,000 lines of copies hide what differs between them (nothing).
//! Why a budget: a case file is input, and `{"$repeat": 1e15}` must be an error, not an
//! allocation. Every value is charged to the budget as it is built, at about the memory it
//! takes, so expansion stops before it holds much more than [`MAX_EXPANDED_BYTES`].

use std::mem::size_of;

use serde_json::{Map, Value};

/// About the most memory one request body may expand to: each value costs `size_of::<Value>()`
/// plus the bytes of its text (a string's, an object's keys). 16 MiB: room for bodies over the
/// engine's default 1 MiB limit, far below what a test machine can hold.
pub const MAX_EXPANDED_BYTES: usize = 16 << 20;

/// The key that makes an object a generator, and the key of its template.
const REPEAT: &str = "$repeat";
const ITEM: &str = "item";
/// Replaced by the copy's index in the strings of a template.
const INDEX: &str = "{i}";

/// `body` with every generator expanded.
pub(super) fn expand(body: &Value) -> Result<Value, String> {
    let mut budget = MAX_EXPANDED_BYTES;
    value(body, None, &mut budget)
}

/// A copy of `v` with its generators expanded; `index` is the innermost generator's copy, if any.
fn value(v: &Value, index: Option<u64>, budget: &mut usize) -> Result<Value, String> {
    let out = match v {
        Value::String(s) => Value::String(match index {
            Some(i) => s.replace(INDEX, &i.to_string()),
            None => s.clone(),
        }),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|x| value(x, index, budget))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) if o.contains_key(REPEAT) => repeat(o, budget)?,
        Value::Object(o) => {
            let mut out = Map::new();
            for (k, x) in o {
                out.insert(k.clone(), value(x, index, budget)?);
            }
            Value::Object(out)
        }
        other => other.clone(),
    };
    charge(budget, cost(&out))?;
    Ok(out)
}

/// What a value built costs, not counting its elements (each is charged as it is built).
fn cost(v: &Value) -> usize {
    let text = match v {
        Value::String(s) => s.len(),
        Value::Object(o) => o.keys().map(|k| size_of::<String>() + k.len()).sum(),
        _ => 0,
    };
    size_of::<Value>() + text
}

/// Expands one generator: `{"$repeat": N, "item": T}` → `[T(0), …, T(N-1)]`.
fn repeat(o: &Map<String, Value>, budget: &mut usize) -> Result<Value, String> {
    let (Some(n), Some(item), 2) = (o.get(REPEAT), o.get(ITEM), o.len()) else {
        return Err(format!(
            "a `{REPEAT}` object has exactly two keys, `{REPEAT}` and `{ITEM}`"
        ));
    };
    let Some(n) = n.as_u64() else {
        return Err(format!("`{REPEAT}` is a whole number of copies, not {n}"));
    };
    // Each copy costs at least one value: refuse a count the budget cannot hold before building.
    if usize::try_from(n).map_or(true, |n| n > *budget / size_of::<Value>()) {
        return Err(over_budget());
    }
    (0..n)
        .map(|i| value(item, Some(i), budget))
        .collect::<Result<_, _>>()
        .map(Value::Array)
}

fn charge(budget: &mut usize, units: usize) -> Result<(), String> {
    *budget = budget.checked_sub(units).ok_or_else(over_budget)?;
    Ok(())
}

fn over_budget() -> String {
    format!("the body expands to more than {MAX_EXPANDED_BYTES} bytes in memory: generate less")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn copies_carry_their_index_in_strings_only() {
        let body = json!({"Operations": {"$repeat": 3, "item": {"path": "/Users/u{i}", "n": 7, "ok": true}}});
        assert_eq!(
            expand(&body).unwrap(),
            json!({"Operations": [
                {"path": "/Users/u0", "n": 7, "ok": true},
                {"path": "/Users/u1", "n": 7, "ok": true},
                {"path": "/Users/u2", "n": 7, "ok": true}
            ]})
        );
    }

    #[test]
    fn outside_a_generator_nothing_changes() {
        let body = json!({"displayName": "{i}", "members": [{"value": "a"}], "$ref": "x"});
        assert_eq!(expand(&body).unwrap(), body);
    }

    #[test]
    fn nested_generators_use_the_innermost_index() {
        let body = json!({"$repeat": 2, "item": {"$repeat": 2, "item": "v{i}"}});
        assert_eq!(expand(&body).unwrap(), json!([["v0", "v1"], ["v0", "v1"]]));
        assert_eq!(
            expand(&json!({"$repeat": 0, "item": 1})).unwrap(),
            json!([])
        );
    }

    #[test]
    fn malformed_generators_are_errors() {
        for bad in [
            json!({"$repeat": 2}),
            json!({"$repeat": 2, "item": 1, "extra": 0}),
            json!({"$repeat": -1, "item": 1}),
            json!({"$repeat": "2", "item": 1}),
            json!({"$repeat": 1.5, "item": 1}),
        ] {
            assert!(expand(&bad).unwrap_err().contains("$repeat"), "{bad}");
        }
    }

    #[test]
    fn expansion_is_bounded() {
        let huge = json!({"$repeat": u64::MAX, "item": 1});
        assert!(expand(&huge).unwrap_err().contains("expands to more than"));
        // Within the count check, nesting multiplies: the budget still stops it, as it builds.
        let nested = json!({"$repeat": 100_000, "item": {"$repeat": 100_000, "item": 1}});
        assert!(expand(&nested)
            .unwrap_err()
            .contains("expands to more than"));
        let long = "x".repeat(10_000);
        let wide = json!({"$repeat": 2_000, "item": long});
        assert!(expand(&wide).unwrap_err().contains("expands to more than"));
        let fits = json!({"$repeat": 1_000, "item": long});
        assert_eq!(expand(&fits).unwrap().as_array().unwrap().len(), 1_000);
    }
}
