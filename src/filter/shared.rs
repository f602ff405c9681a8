//! What every stream of a VM shares (the compiled engine, counters, audit ids, shipping queues),
//! and the engine's `Host` port over proxy-wasm: shared data (with CAS), properties, the clock, ids
//! and counters. Every failed host call is counted and logged here; the session only chooses its
//! posture.

use std::cell::RefCell;
use std::rc::Rc;

use proxy_wasm::types::LogLevel;

use super::host::{self, HostError};
use super::metrics::Metrics;
use crate::engine::{AuditIds, Count, Engine, Failed, Host, Shipping, Versioned};

/// What every request on this VM shares.
#[derive(Debug)]
pub struct Shared {
    pub engine: Engine,
    /// The VM's counters: the same ones across reconfigurations, so no count is lost when a new
    /// policy replaces this one while its streams finish.
    pub metrics: Rc<Metrics>,
    pub ids: AuditIds,
    /// This VM's queues to the collector and the webhook receiver (sent by the root's tick).
    pub shipping: RefCell<Shipping>,
    /// Envoy's node id (the CloudEvents `source` of notifications).
    pub node: String,
}

impl Shared {
    /// A host call's value, or `None` once its failure is counted and logged.
    pub fn ok<T>(&self, result: host::HostResult<T>) -> Option<T> {
        result.map_err(|e| self.host_error(e)).ok()
    }

    /// Counts and logs a failed host call (never with request data in the message).
    pub fn host_error(&self, e: HostError) {
        self.metrics.count(Count::HostErrors);
        host::log(LogLevel::Error, &format!("scimguard: {e}"));
    }
}

/// The port for one callback.
pub struct Port<'a>(pub &'a Shared);

impl Port<'_> {
    fn check<T>(&self, r: host::HostResult<T>) -> Result<T, Failed> {
        self.0.ok(r).ok_or(Failed)
    }
}

impl Host for Port<'_> {
    fn load(&mut self, key: &str) -> Result<Versioned, Failed> {
        self.check(host::shared_data_cas(key))
    }

    fn store(&mut self, key: &str, value: &[u8], version: Option<u32>) -> Result<bool, Failed> {
        self.check(host::set_shared_data(key, value, version))
    }

    fn property(&mut self, path: &[&str]) -> Result<Option<Vec<u8>>, Failed> {
        self.check(host::property_bytes(path))
    }

    fn now_ns(&mut self) -> Result<u64, Failed> {
        self.check(host::now_ns())
    }

    fn audit_id(&mut self) -> String {
        self.0.ids.next()
    }

    fn count(&mut self, count: Count, n: u64) {
        self.0.metrics.add(count, n);
    }

    fn node(&self) -> &str {
        &self.0.node
    }

    fn warn(&mut self, message: &str) {
        host::log(LogLevel::Warn, message);
    }
}
