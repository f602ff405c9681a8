//! The request model shared by test fixtures, the CLI and every shell: method, path, headers and body.
//!
//! `HttpRequest` is the owned, serialisable form (`{"method","path","headers","body","raw_body"}`);
//! `RequestView` is the borrowed form the engine works on, so the filter never copies the body.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An owned request, as written in test fixtures and read by `scimguard eval`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body as JSON. Ignored when `raw_body` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// The exact body bytes (as UTF-8 text), for inputs JSON values cannot express (duplicate keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_body: Option<String>,
}

impl HttpRequest {
    /// The body bytes the engine sees: `raw_body` verbatim, else `body` serialised, else none.
    pub fn body_bytes(&self) -> Option<Vec<u8>> {
        if let Some(raw) = &self.raw_body {
            return Some(raw.as_bytes().to_vec());
        }
        match &self.body {
            None | Some(Value::Null) => None,
            Some(v) => serde_json::to_vec(v).ok(),
        }
    }

    pub fn headers(&self) -> Headers {
        Headers::from_pairs(self.headers.iter().map(|(k, v)| (k.clone(), v.clone())))
    }
}

/// Request headers with lower-cased names, in arrival order. Repeated names are kept.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub fn from_pairs<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        Headers(
            pairs
                .into_iter()
                .map(|(mut k, v)| {
                    k.make_ascii_lowercase();
                    (k, v)
                })
                .collect(),
        )
    }

    /// The first value of `name` (lower-case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// How many times `name` (lower-case) appears.
    pub fn count(&self, name: &str) -> usize {
        self.0.iter().filter(|(k, _)| k == name).count()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// A borrowed view of one HTTP request: what the engine judges.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a str,
    /// The `:path` as received, query included.
    pub path: &'a str,
    pub headers: &'a Headers,
    /// The complete body, or `None` when the request has none.
    pub body: Option<&'a [u8]>,
}
