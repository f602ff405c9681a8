//! The root context: compiles the policy from the plugin configuration once per VM, defines the
//! counters, and hands what streams share (behind an `Rc`) to every HTTP context.
//!
//! An invalid policy makes `on_configure` return false: at startup Envoy refuses to start, on an xDS
//! update it rejects the new configuration and keeps the old one. The log line lists every error.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel};

use std::cell::RefCell;
use std::collections::hash_map::RandomState;

use super::host;
use super::metrics::{Metrics, FLUSH_PERIOD};
use super::shared::Shared;
use super::ship;
use super::stream::{Stream, Unconfigured};
use crate::engine::{AuditIds, Engine, Offload, Shipping, Sink};

pub struct Root {
    context_id: u32,
    shared: Option<Rc<Shared>>,
    /// Defined by the first `on_configure`, published on every tick.
    metrics: Option<Rc<Metrics>>,
    /// Calls out (`dispatch_http_call` from `on_tick`) and the sink each belongs to.
    calls: Vec<(u32, Sink)>,
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

    /// The plugin configuration → what every stream of this VM shares, or why it is refused.
    fn configure(&mut self, size: usize) -> Result<Shared, String> {
        let bytes = host::buffer(BufferType::PluginConfiguration, size)
            .map_err(|e| format!("cannot read the plugin configuration: {e}"))?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| "invalid policy: the plugin configuration is not UTF-8".to_string())?;
        let env = |name: &str| std::env::var(name).ok();
        let offload = Offload::from_env(env).map_err(|e| format!("invalid configuration: {e}"))?;
        let engine = Engine::from_json(text)
            .map_err(|e| e.one_line())?
            .with_offload(offload);
        let shipping = Shipping::for_policy(&engine.policy().settings, env)
            .map_err(|e| format!("invalid configuration: {e}"))?;
        // Clusters may not be ready yet: sending starts on the first tick, never here. The tick
        // also publishes the counters, so it runs without sinks too.
        let period = match shipping.has_collector() || shipping.has_webhook() {
            true => ship::TICK.min(FLUSH_PERIOD),
            false => FLUSH_PERIOD,
        };
        if let Err(e) = host::set_tick_period(period) {
            let off = "counters, audit shipping and notifications are off";
            host::log(LogLevel::Error, &format!("scimguard: no tick: {off}: {e}"));
        }
        let node = host::property_string(&["xds", "node", "id"]).ok().flatten();
        let salt = host::now_ns().unwrap_or(0) ^ u64::from(self.context_id);
        Ok(Shared {
            engine,
            metrics: Rc::clone(
                self.metrics
                    .get_or_insert_with(|| Rc::new(Metrics::define())),
            ),
            ids: AuditIds::new(RandomState::new(), salt),
            shipping: RefCell::new(shipping),
            node: node
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "unknown".to_string()),
        })
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
        match self.configure(plugin_configuration_size) {
            Ok(shared) => {
                let s = &shared.engine.policy().settings;
                let rules = shared.engine.policy().rules.len();
                let (c, w) = (s.audit.collector.is_some(), s.notify.is_some());
                self.shared = Some(Rc::new(shared));
                let on_off = |on: bool| if on { "on" } else { "off" };
                let loaded = format!(
                    "scimguard: policy loaded ({rules} rules; collector {}, webhook {})",
                    on_off(c),
                    on_off(w)
                );
                host::log(LogLevel::Info, &loaded);
                true
            }
            Err(reason) => {
                host::log(LogLevel::Error, &format!("scimguard: {reason}"));
                false
            }
        }
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
        Some(match &self.shared {
            Some(shared) => Box::new(Stream::new(Rc::clone(shared))),
            None => Box::new(Unconfigured),
        })
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
