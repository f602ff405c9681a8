//! The port between a `Session` and whatever runs it: state shared across requests (learned group
//! names, the deprovision storm, actor risk), host facts read only when a step needs them, the clock,
//! audit ids and counters. The proxy-wasm filter implements it over shared data and properties;
//! `MemoryHost` implements it in memory for `cargo test`, `scimguard test` and the playground.
//!
//! Why a port and not values: these are read lazily and conditionally (a property read is a
//! host↔VM crossing; most requests need none), and state updates use compare-and-swap, which needs
//! a read and a conditional write at the moment of the decision. The pattern is wasm-shim's
//! `AttributeResolver` and rustls' `TimeProvider`: the core asks, the shell answers.

use std::collections::BTreeMap;

use super::counts::Count;

/// A host call failed. The host has already counted and logged it; the session only chooses its
/// posture (skip an optional step, or fail closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failed;

/// A value in shared state and its version (for `Host::store`'s compare-and-swap).
pub type Versioned = (Option<Vec<u8>>, Option<u32>);

/// What a session asks of its host.
pub trait Host {
    /// The value under `key` (shared by every worker of the process) and its version.
    fn load(&mut self, key: &str) -> Result<Versioned, Failed>;
    /// Stores `value` under `key` if it is still at `version` (`None`: unconditionally).
    /// `Ok(false)`: another writer came first.
    fn store(&mut self, key: &str, value: &[u8], version: Option<u32>) -> Result<bool, Failed>;
    /// A host property (e.g. `["source", "address"]`), as bytes.
    fn property(&mut self, path: &[&str]) -> Result<Option<Vec<u8>>, Failed>;
    /// The wall clock, in nanoseconds since the epoch.
    fn now_ns(&mut self) -> Result<u64, Failed>;
    /// A fresh audit id (unique per request).
    fn audit_id(&mut self) -> String;
    /// Adds `n` to a counter.
    fn count(&mut self, count: Count, n: u64);
    /// Who this host is (Envoy's node id): the `source` of notifications.
    fn node(&self) -> &str;
    /// A diagnostic for the operator's log (never request data, never a secret).
    fn warn(&mut self, message: &str);
}

/// An in-memory host: shared state in a map, properties and the clock set by the caller, ids
/// numbered, counters readable. Deterministic, so a sequence of requests can be replayed as data.
#[derive(Debug, Clone, Default)]
pub struct MemoryHost {
    state: BTreeMap<String, (Vec<u8>, u32)>,
    /// Properties by dotted path (`source.address`), encoded as the host encodes them.
    pub properties: BTreeMap<String, Vec<u8>>,
    pub now_ns: u64,
    ids: u64,
    counts: BTreeMap<Count, u64>,
    /// Diagnostics the session logged.
    pub warnings: Vec<String>,
    /// The properties read, by dotted path, in order (what a host call count would see).
    pub reads: Vec<String>,
}

impl MemoryHost {
    /// A host whose clock reads `now_ns`.
    pub fn at(now_ns: u64) -> MemoryHost {
        MemoryHost {
            now_ns,
            ..MemoryHost::default()
        }
    }

    /// Every counter that moved, by its metric name.
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        self.counts.iter().map(|(c, n)| (c.name(), *n)).collect()
    }

    /// Sets (or with `None`, removes) a string property.
    pub fn set_property(&mut self, path: &str, value: Option<&str>) {
        match value {
            Some(v) => self
                .properties
                .insert(path.to_string(), v.as_bytes().to_vec()),
            None => self.properties.remove(path),
        };
    }

    /// Sets an integer property (`response.code`, `request.time` in ns) as 8-byte little-endian.
    pub fn set_int(&mut self, path: &str, value: i64) {
        self.properties
            .insert(path.to_string(), value.to_le_bytes().to_vec());
    }
}

impl Host for MemoryHost {
    fn load(&mut self, key: &str) -> Result<Versioned, Failed> {
        Ok(match self.state.get(key) {
            Some((v, version)) => (Some(v.clone()), Some(*version)),
            None => (None, None),
        })
    }

    fn store(&mut self, key: &str, value: &[u8], version: Option<u32>) -> Result<bool, Failed> {
        let current = self.state.get(key).map(|(_, v)| *v);
        if version.is_some() && version != current {
            return Ok(false);
        }
        let next = current.unwrap_or(0).wrapping_add(1);
        self.state.insert(key.to_string(), (value.to_vec(), next));
        Ok(true)
    }

    fn property(&mut self, path: &[&str]) -> Result<Option<Vec<u8>>, Failed> {
        let key = path.join(".");
        let value = self.properties.get(&key).cloned();
        self.reads.push(key);
        Ok(value)
    }

    fn now_ns(&mut self) -> Result<u64, Failed> {
        Ok(self.now_ns)
    }

    fn audit_id(&mut self) -> String {
        self.ids = self.ids.wrapping_add(1);
        format!("00000000-0000-4000-8000-{:012x}", self.ids)
    }

    fn count(&mut self, count: Count, n: u64) {
        let c = self.counts.entry(count).or_insert(0);
        *c = c.saturating_add(n);
    }

    fn node(&self) -> &str {
        "scimguard-memory"
    }

    fn warn(&mut self, message: &str) {
        self.warnings.push(message.to_string());
    }
}
