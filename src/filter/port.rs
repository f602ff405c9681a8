//! The engine's `Host` port over proxy-wasm: shared data (with CAS), properties, the clock, this
//! VM's audit ids and counters. Every failed call is counted and logged here (`Shared::host_error`);
//! the session only chooses its posture.

use proxy_wasm::types::LogLevel;

use super::host;
use super::root::Shared;
use crate::engine::{Count, Failed, Host, Versioned};

/// The port for one callback.
pub struct Port<'a>(pub &'a Shared);

impl Port<'_> {
    fn check<T>(&self, r: host::HostResult<T>) -> Result<T, Failed> {
        r.map_err(|e| {
            self.0.host_error(e);
            Failed
        })
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
