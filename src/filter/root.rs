//! The root context: compiles the policy from the plugin configuration once per VM, defines the
//! counters, and hands both (behind an `Rc`) to every HTTP context.
//!
//! An invalid policy makes `on_configure` return false: at startup Envoy refuses to start, on an xDS
//! update it rejects the new configuration and keeps the old one. The log line lists every error.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel};

use super::host::{self, HostError};
use super::metrics::{Metrics, FLUSH_PERIOD};
use super::ship::{self, Kind, Sinks};
use super::stream::Stream;
use crate::engine::Count;
use crate::engine::Engine;

/// What every request on this VM shares.
#[derive(Debug)]
pub struct Shared {
    pub engine: Engine,
    /// The VM's counters: the same ones across reconfigurations, so no count is lost when a new
    /// policy replaces this one while its streams finish.
    pub metrics: Rc<Metrics>,
    pub ids: AuditIds,
    /// This VM's queues to the collector and the webhook receiver (flushed by the root's tick).
    pub sinks: Sinks,
    /// Envoy's node id (the CloudEvents `source` of notifications).
    pub node: String,
}

impl Shared {
    /// Counts and logs a failed host call (never with request data in the message).
    pub fn host_error(&self, e: HostError) {
        self.metrics.count(Count::HostErrors);
        host::log(LogLevel::Error, &format!("scimguard: {e}"));
    }
}

pub struct Root {
    context_id: u32,
    shared: Option<Rc<Shared>>,
    /// Defined by the first `on_configure`, published on every tick.
    metrics: Option<Rc<Metrics>>,
    /// Calls out (`dispatch_http_call` from `on_tick`) and the sink each belongs to.
    calls: Vec<(u32, Kind)>,
}

impl Root {
    pub fn new(context_id: u32) -> Root {
        Root {
            context_id,
            shared: None,
            metrics: None,
            calls: Vec::new(),
        }
    }
}

impl Context for Root {
    /// The VM is going away (shutdown, or a new plugin version): publish what was counted.
    fn on_done(&mut self) -> bool {
        if let Some(metrics) = &self.metrics {
            metrics.flush();
        }
        true
    }

    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        _body_size: usize,
        _trailers: usize,
    ) {
        if let Some(shared) = &self.shared {
            ship::answer(shared, &mut self.calls, token);
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        let bytes = match host::buffer(BufferType::PluginConfiguration, plugin_configuration_size) {
            Ok(b) => b,
            Err(e) => {
                host::log(
                    LogLevel::Error,
                    &format!("scimguard: cannot read the plugin configuration: {e}"),
                );
                return false;
            }
        };
        let Ok(text) = std::str::from_utf8(&bytes) else {
            host::log(
                LogLevel::Error,
                "scimguard: invalid policy: the plugin configuration is not UTF-8",
            );
            return false;
        };
        let engine = match Engine::from_json(text) {
            Ok(engine) => engine,
            Err(errors) => {
                // One line, so that log collectors keep the whole list together.
                let list: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
                let n = list.len();
                host::log(
                    LogLevel::Error,
                    &format!(
                        "scimguard: invalid policy: {n} error{}: {}",
                        if n == 1 { "" } else { "s" },
                        list.join("; ")
                    ),
                );
                return false;
            }
        };
        let metrics = Rc::clone(
            self.metrics
                .get_or_insert_with(|| Rc::new(Metrics::define())),
        );
        let ids = AuditIds::new(self.context_id);
        let rules = engine.policy().rules.len();
        let s = &engine.policy().settings;
        let sinks = match Sinks::new(s.audit.collector.as_ref(), s.notify.as_ref()) {
            Ok(sinks) => sinks,
            Err(e) => {
                host::log(
                    LogLevel::Error,
                    &format!("scimguard: invalid configuration: {e}"),
                );
                return false;
            }
        };
        // Clusters may not be ready yet: sending starts on the first tick, never here. The tick
        // also publishes the counters, so it runs without sinks too.
        let period = sinks
            .tick_period()
            .map_or(FLUSH_PERIOD, |p| p.min(FLUSH_PERIOD));
        if let Err(e) = host::set_tick_period(period) {
            host::log(
                LogLevel::Error,
                &format!(
                    "scimguard: no tick: counters, audit shipping and notifications are off: {e}"
                ),
            );
        }
        let node = host::property_string(&["xds", "node", "id"])
            .ok()
            .flatten()
            .filter(|n| !n.is_empty());
        let node = node.unwrap_or_else(|| "unknown".to_string());
        let shipping = format!(
            "collector {}, webhook {}",
            on_off(sinks.has_collector()),
            on_off(sinks.has_webhook())
        );
        self.shared = Some(Rc::new(Shared {
            engine,
            metrics,
            ids,
            sinks,
            node,
        }));
        host::log(
            LogLevel::Info,
            &format!("scimguard: policy loaded ({rules} rules; {shipping})"),
        );
        true
    }

    fn on_tick(&mut self) {
        if let Some(shared) = &self.shared {
            ship::tick(shared, &mut self.calls);
        }
        if let Some(metrics) = &self.metrics {
            metrics.flush();
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream::new(self.shared.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

/// Audit ids: UUID-shaped, unique per request without asking the host for anything.
///
/// Why this construction: the core has no clock and we add no crates. `RandomState` keys SipHash with
/// 128 random bits from WASI `random_get` (once per VM); a per-VM counter and the configure time make
/// every input distinct. Two VMs (workers) differ in their keys, so ids do not collide across them.
#[derive(Debug)]
pub struct AuditIds {
    keys: RandomState,
    salt: u64,
    counter: Cell<u64>,
}

impl AuditIds {
    fn new(context_id: u32) -> AuditIds {
        let now = host::now_ns().unwrap_or(0);
        AuditIds {
            keys: RandomState::new(),
            salt: now ^ u64::from(context_id),
            counter: Cell::new(0),
        }
    }

    pub fn next(&self) -> String {
        let n = self.counter.get().wrapping_add(1);
        self.counter.set(n);
        let hi = self.keys.hash_one((self.salt, n, 1u8));
        let lo = self.keys.hash_one((self.salt, n, 2u8));
        uuid_v4(hi, lo)
    }
}

/// Formats 128 bits as an RFC 9562 version-4 UUID (version and variant bits set). Hex digits are
/// written directly: this runs for every judged write, and `format!` is slow in the VM.
fn uuid_v4(hi: u64, lo: u64) -> String {
    let hi = (hi & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
    let lo = (lo & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    let bits = (u128::from(hi) << 64) | u128::from(lo);
    let mut out = String::with_capacity(36);
    for i in 0..32 {
        if matches!(i, 8 | 12 | 16 | 20) {
            out.push('-');
        }
        let nibble = (bits >> (124 - 4 * i)) & 0xf;
        out.push(char::from_digit(nibble as u32, 16).unwrap_or('0'));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn audit_ids_are_version_4_uuids() {
        let id = uuid_v4(u64::MAX, 0);
        assert_eq!(id, "ffffffff-ffff-4fff-8000-000000000000");
        let id = uuid_v4(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
    }

    #[test]
    fn audit_ids_differ() {
        let ids = AuditIds {
            keys: RandomState::new(),
            salt: 7,
            counter: Cell::new(0),
        };
        let all: std::collections::BTreeSet<String> = (0..1000).map(|_| ids.next()).collect();
        assert_eq!(all.len(), 1000);
    }
}
