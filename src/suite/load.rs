//! The loader: case-file text → [`Suite`]. Merges the file's `defaults` into each case, expands
//! generated values in the body, then reads the request and the facts with the engine's own
//! types (`HttpRequest`, `Facts`), so a case written with defaults and generators is, value for
//! value, the case written out in full.
//!
//! Why merge as JSON before reading: the merge then needs no copy of the request's or the facts'
//! fields, and a field the engine adds to either can be defaulted without touching this file.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{expand, Case, Expect, Suite};

/// Reads a case file. Errors name the case and what is wrong with it.
pub fn load(text: &str) -> Result<Suite, String> {
    let file: FileDoc = serde_json::from_str(text).map_err(|e| format!("not a case file: {e}"))?;
    if file.cases.is_empty() && file.sequences.is_empty() {
        return Err("the file has no cases".into());
    }
    let cases = file
        .cases
        .into_iter()
        .map(|c| {
            let name = c.name.clone();
            case(&file.defaults, c).map_err(|e| format!("case `{name}`: {e}"))
        })
        .collect::<Result<_, _>>()?;
    Ok(Suite {
        policy: file.policy,
        cases,
        sequences: file.sequences,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    #[expect(
        dead_code,
        reason = "for readers of the file; read only to check it is a string"
    )]
    description: Option<String>,
    policy: String,
    #[serde(default)]
    defaults: Defaults,
    #[serde(default)]
    cases: Vec<CaseDoc>,
    #[serde(default)]
    sequences: Vec<super::sequence::Sequence>,
}

/// What every case of the file has unless it says otherwise.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Defaults {
    #[serde(default)]
    request: RequestDefaults,
    #[serde(default)]
    facts: Map<String, Value>,
}

/// The parts of a request a file may default: never the body, which is what a case is about.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestDefaults {
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    headers: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseDoc {
    name: String,
    request: Map<String, Value>,
    #[serde(default)]
    facts: Map<String, Value>,
    expect: Expect,
}

fn case(defaults: &Defaults, c: CaseDoc) -> Result<Case, String> {
    let request = request(&defaults.request, c.request)?;
    let facts = merge(&defaults.facts, c.facts, str::eq);
    Ok(Case {
        name: c.name,
        request: serde_json::from_value(Value::Object(request))
            .map_err(|e| format!("request: {e}"))?,
        facts: serde_json::from_value(Value::Object(facts)).map_err(|e| format!("facts: {e}"))?,
        expect: c.expect,
    })
}

/// The case's request with the defaults merged in and the body's generators expanded.
fn request(
    defaults: &RequestDefaults,
    mut r: Map<String, Value>,
) -> Result<Map<String, Value>, String> {
    for (key, default) in [("method", &defaults.method), ("path", &defaults.path)] {
        if let Some(d) = default {
            r.entry(key).or_insert_with(|| Value::String(d.clone()));
        }
    }
    let headers = match r.remove("headers") {
        None => Map::new(),
        Some(Value::Object(h)) => h,
        Some(_) => return Err("request.headers: expected an object".into()),
    };
    let headers = merge(&defaults.headers, headers, |a, b| a.eq_ignore_ascii_case(b));
    if !headers.is_empty() {
        r.insert("headers".into(), Value::Object(headers));
    }
    if let Some(body) = r.get_mut("body") {
        *body = expand::expand(body).map_err(|e| format!("request.body: {e}"))?;
    }
    Ok(r)
}

/// `case` over `default`: the default's keys the case does not name (as `same` compares names),
/// then the case's own; a case's `null` removes the key.
fn merge(
    default: &Map<String, Value>,
    case: Map<String, Value>,
    same: fn(&str, &str) -> bool,
) -> Map<String, Value> {
    let mut out: Map<String, Value> = default
        .iter()
        .filter(|(k, _)| !case.keys().any(|c| same(c, k)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.extend(case.into_iter().filter(|(_, v)| !v.is_null()));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const FILE: &str = r#"{
      "policy": "p.json",
      "defaults": {
        "request": {"method": "PATCH", "path": "/scim/v2/Groups/g1",
                    "headers": {"content-type": "application/scim+json", "user-agent": "idp"}},
        "facts": {"actor": "alice", "group_names": {"g1": "Admins"}}
      },
      "cases": [
        {"name": "all defaults", "request": {"body": {}}, "expect": {"decision": "allow"}},
        {"name": "the case wins",
         "request": {"method": "POST", "path": "/scim/v2/Users",
                     "headers": {"Content-Type": "text/plain", "user-agent": null, "x-a": "1"}},
         "facts": {"group_names": {"g2": "Eng"}, "actor": null},
         "expect": {"decision": "block"}}
      ]
    }"#;

    #[test]
    fn defaults_fill_what_a_case_leaves_out() {
        let s = load(FILE).unwrap();
        let c = &s.cases[0];
        assert_eq!(
            (c.request.method.as_str(), c.request.path.as_str()),
            ("PATCH", "/scim/v2/Groups/g1")
        );
        assert_eq!(c.request.headers.len(), 2);
        assert_eq!(c.facts.actor.as_deref(), Some("alice"));
        assert_eq!(c.facts.group_names["g1"], "Admins");
    }

    #[test]
    fn case_values_win_headers_by_name_in_any_case_and_null_removes() {
        let c = &load(FILE).unwrap().cases[1];
        assert_eq!(
            (c.request.method.as_str(), c.request.path.as_str()),
            ("POST", "/scim/v2/Users")
        );
        let headers: Vec<(&str, &str)> = c
            .request
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(headers, [("Content-Type", "text/plain"), ("x-a", "1")]);
        assert_eq!(c.facts.actor, None);
        assert_eq!(c.facts.group_names.keys().collect::<Vec<_>>(), ["g2"]);
        assert_eq!(c.request.body, None);
    }

    #[test]
    fn errors_name_the_case() {
        let bad = FILE.replace(r#""body": {}"#, r#""bdy": {}"#);
        let e = load(&bad).unwrap_err();
        assert!(
            e.starts_with("case `all defaults`: request: unknown field `bdy`"),
            "{e}"
        );
        let bad = FILE.replace(r#""body": {}"#, r#""body": {"$repeat": 1}"#);
        assert!(load(&bad)
            .unwrap_err()
            .contains("case `all defaults`: request.body: a `$repeat`"));
        let bad = FILE.replace(r#""actor": "alice""#, r#""actr": "alice""#);
        assert!(load(&bad)
            .unwrap_err()
            .contains("facts: unknown field `actr`"));
        let bad = FILE.replace(r#""method": "PATCH","#, r#""body": {},"#);
        assert!(load(&bad)
            .unwrap_err()
            .starts_with("not a case file: unknown field `body`"));
        assert_eq!(
            load(r#"{"policy": "p", "cases": []}"#).unwrap_err(),
            "the file has no cases"
        );
    }
}
