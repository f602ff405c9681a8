//! Shipping from the root context: audit records to the collector, signed notifications to the
//! webhook receiver. HTTP contexts only push into in-VM queues (no host call); the root context's
//! tick sends batches with `dispatch_http_call` and its `on_http_call_response` settles them.
//!
//! Why the root context: a call sent from an HTTP context is cancelled with its stream, and
//! nothing here may delay a request. Each worker VM has its own queues (there is no cross-VM
//! queue in proxy-wasm without host round trips); the counters aggregate per process.
//!
//! The collector gets `application/x-ndjson`: one record (or OCSF event) per line, at most
//! `batch_max` lines, `idempotency-key` the same on every retry of a batch. The webhook gets one
//! CloudEvent per POST (`application/cloudevents+json`) with Standard Webhooks headers, signed
//! again per attempt (fresh `webhook-timestamp`), the same `webhook-id` on every retry.
//!
//! Host calls: a tick with nothing queued makes none; otherwise `get_current_time`, and per batch
//! sent `dispatch_http_call`; per answer `get_map` of the response headers (plus the counters).

use std::cell::RefCell;
use std::time::Duration;

use proxy_wasm::types::{LogLevel, MapType};

use super::host;
use super::metrics::Gauge;
use super::root::Shared;
use crate::audit::batch::{Failure, Outbox};
use crate::audit::notify::{parse_secret, webhook_headers, WebhookKey};
use crate::engine::Count;
use crate::policy::settings::SecretSource;
use crate::policy::{CollectorSettings, NotifySettings};

/// How often the root context looks at its queues (a partial batch waits for `flush_interval_ms`,
/// measured in ticks).
const TICK_MS: u64 = 100;

/// The queues of one VM, one per configured sink.
#[derive(Debug, Default)]
pub struct Sinks {
    collector: Option<Sink<String>>,
    webhook: Option<Webhook>,
}

#[derive(Debug)]
struct Sink<T> {
    outbox: RefCell<Outbox<T>>,
}

#[derive(Debug)]
struct Webhook {
    sink: Sink<Notice>,
    key: WebhookKey,
}

/// One notification: its id (the audit id) and the exact JSON body that is signed.
#[derive(Debug, Clone)]
pub struct Notice {
    pub id: String,
    pub body: String,
}

/// The signing key from the policy, or from the VM's environment (`notify.secret_env`: Envoy's
/// `vm_config.environment_variables`), which keeps it out of `/config_dump`.
fn webhook_key(source: &SecretSource) -> Result<WebhookKey, String> {
    match source {
        SecretSource::Key(k) => {
            WebhookKey::from_bytes(k.expose()).map_err(|e| format!("notify.secret: {e}"))
        }
        SecretSource::Env(name) => {
            let text = std::env::var(name).map_err(|_| {
                format!("notify.secret_env: the environment variable `{name}` is not set for the Wasm VM (vm_config.environment_variables)")
            })?;
            parse_secret(&text).map_err(|e| format!("notify.secret_env `{name}`: {e}"))
        }
    }
}

/// Which sink a call out belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Collector,
    Webhook,
}

impl Sinks {
    /// The configured sinks. Fails (and so refuses the configuration) when the webhook key
    /// cannot be had; the message never holds the key.
    pub fn new(
        collector: Option<&CollectorSettings>,
        notify: Option<&NotifySettings>,
    ) -> Result<Sinks, String> {
        let collector = collector.map(|c| Sink {
            outbox: RefCell::new(Outbox::new(c.delivery)),
        });
        let webhook = match notify {
            Some(n) => Some(Webhook {
                sink: Sink {
                    outbox: RefCell::new(Outbox::new(n.delivery)),
                },
                key: webhook_key(&n.secret)?,
            }),
            None => None,
        };
        Ok(Sinks { collector, webhook })
    }

    /// The tick period the sinks need, if any (none configured: no tick at all).
    pub fn tick_period(&self) -> Option<Duration> {
        (self.collector.is_some() || self.webhook.is_some())
            .then_some(Duration::from_millis(TICK_MS))
    }

    pub fn has_collector(&self) -> bool {
        self.collector.is_some()
    }

    pub fn has_webhook(&self) -> bool {
        self.webhook.is_some()
    }
}

/// Queues a line for the collector (no host call but the counters).
pub fn record(shared: &Shared, line: String) {
    let Some(sink) = &shared.sinks.collector else {
        return;
    };
    let dropped = sink.outbox.borrow_mut().push(line);
    count_push(shared, Kind::Collector, dropped);
}

/// Queues a notification.
pub fn notify(shared: &Shared, notice: Notice) {
    let Some(w) = &shared.sinks.webhook else {
        return;
    };
    let dropped = w.sink.outbox.borrow_mut().push(notice);
    count_push(shared, Kind::Webhook, dropped);
}

/// The root context's tick: send what is due.
pub fn tick(shared: &Shared, calls: &mut Vec<(u32, Kind)>) {
    let idle = |k: Kind| match k {
        Kind::Collector => shared
            .sinks
            .collector
            .as_ref()
            .is_none_or(|s| s.outbox.borrow().is_idle()),
        Kind::Webhook => shared
            .sinks
            .webhook
            .as_ref()
            .is_none_or(|w| w.sink.outbox.borrow().is_idle()),
    };
    if idle(Kind::Collector) && idle(Kind::Webhook) {
        return;
    }
    let now_ms = match host::now_ns() {
        Ok(ns) => ns / 1_000_000,
        Err(e) => return shared.host_error(e),
    };
    if let (Some(sink), Some(c)) = (
        &shared.sinks.collector,
        &shared.engine.policy().settings.audit.collector,
    ) {
        send_collector(shared, sink, c, now_ms, calls);
    }
    if let (Some(w), Some(n)) = (
        &shared.sinks.webhook,
        &shared.engine.policy().settings.notify,
    ) {
        send_webhook(shared, w, n, now_ms, calls);
    }
}

/// The root context's `on_http_call_response` for a call of ours; false if the token is not ours.
pub fn answer(shared: &Shared, calls: &mut Vec<(u32, Kind)>, token: u32) -> bool {
    let Some(i) = calls.iter().position(|(t, _)| *t == token) else {
        return false;
    };
    let (_, kind) = calls.swap_remove(i);
    // No `:status` (timeout, reset, connection refused) is a failure.
    let status = host::headers(MapType::HttpCallResponseHeaders)
        .map_err(|e| shared.host_error(e))
        .ok()
        .and_then(|h| h.into_iter().find(|(k, _)| k == ":status"))
        .and_then(|(_, v)| v.parse::<u16>().ok());
    let ok = status.is_some_and(|s| (200..300).contains(&s));
    let (m, g) = metrics_of(kind);
    if ok {
        let n = with_outbox(shared, kind, |o| o.delivered());
        shared.metrics.add(m.delivered, n as u64);
        shared.metrics.gauge(g, -(n as i64));
        return true;
    }
    let now_ms = host::now_ns().map(|ns| ns / 1_000_000).unwrap_or(0);
    let what = match kind {
        Kind::Collector => "audit collector",
        Kind::Webhook => "webhook receiver",
    };
    host::log(
        LogLevel::Warn,
        &format!(
            "scimguard: {what} answered {}",
            status.map_or("nothing".to_string(), |s| s.to_string())
        ),
    );
    failed(shared, kind, now_ms);
    true
}

fn send_collector(
    shared: &Shared,
    sink: &Sink<String>,
    c: &CollectorSettings,
    now_ms: u64,
    calls: &mut Vec<(u32, Kind)>,
) {
    let mut outbox = sink.outbox.borrow_mut();
    let Some(batch) = outbox.poll(now_ms, || shared.ids.next()) else {
        return;
    };
    if batch.attempt > 0 {
        shared.metrics.count(Count::AuditRetries);
    }
    let mut body = batch.items.join("\n");
    body.push('\n');
    let (key, n, attempt) = (
        batch.key.clone(),
        batch.items.len().to_string(),
        batch.attempt.to_string(),
    );
    let e = &c.endpoint;
    let headers = [
        (":method", "POST"),
        (":path", e.path.as_str()),
        (":authority", e.authority.as_str()),
        ("content-type", "application/x-ndjson"),
        ("idempotency-key", key.as_str()),
        ("x-scimguard-records", n.as_str()),
        ("x-scimguard-attempt", attempt.as_str()),
    ];
    let sent = host::dispatch(
        &e.cluster,
        &headers,
        Some(body.as_bytes()),
        Duration::from_millis(e.timeout_ms),
    );
    drop(outbox);
    settle_send(shared, Kind::Collector, sent, now_ms, calls);
}

fn send_webhook(
    shared: &Shared,
    w: &Webhook,
    n: &NotifySettings,
    now_ms: u64,
    calls: &mut Vec<(u32, Kind)>,
) {
    let mut outbox = w.sink.outbox.borrow_mut();
    let Some(batch) = outbox.poll(now_ms, || shared.ids.next()) else {
        return;
    };
    if batch.attempt > 0 {
        shared.metrics.count(Count::NotifyRetries);
    }
    let Some(notice) = batch.items.first().cloned() else {
        return;
    };
    drop(outbox);
    let signed = match webhook_headers(&w.key, &notice.id, now_ms / 1000, &notice.body) {
        Ok(h) => h,
        Err(e) => {
            host::log(
                LogLevel::Error,
                &format!("scimguard: notification not signed: {e}"),
            );
            return failed(shared, Kind::Webhook, now_ms);
        }
    };
    let e = &n.endpoint;
    let mut headers = vec![
        (":method", "POST"),
        (":path", e.path.as_str()),
        (":authority", e.authority.as_str()),
        ("content-type", "application/cloudevents+json"),
    ];
    headers.extend(signed.iter().map(|(k, v)| (*k, v.as_str())));
    let sent = host::dispatch(
        &e.cluster,
        &headers,
        Some(notice.body.as_bytes()),
        Duration::from_millis(e.timeout_ms),
    );
    settle_send(shared, Kind::Webhook, sent, now_ms, calls);
}

fn settle_send(
    shared: &Shared,
    kind: Kind,
    sent: host::HostResult<u32>,
    now_ms: u64,
    calls: &mut Vec<(u32, Kind)>,
) {
    match sent {
        Ok(token) => calls.push((token, kind)),
        Err(e) => {
            // E.g. an unknown cluster (BadArgument): a failed attempt like any other.
            shared.host_error(e);
            failed(shared, kind, now_ms);
        }
    }
}

fn failed(shared: &Shared, kind: Kind, now_ms: u64) {
    let (m, g) = metrics_of(kind);
    if let Some(Failure::GaveUp { items }) = with_outbox(shared, kind, |o| Some(o.failed(now_ms))) {
        host::log(
            LogLevel::Warn,
            &format!("scimguard: gave up delivering {items} item(s) after the last retry"),
        );
        shared.metrics.add(m.failed, items as u64);
        shared.metrics.gauge(g, -(items as i64));
    }
}

fn count_push(shared: &Shared, kind: Kind, dropped: usize) {
    let (m, g) = metrics_of(kind);
    shared.metrics.count(m.enqueued);
    shared.metrics.add(m.dropped, dropped as u64);
    shared.metrics.gauge(g, 1 - dropped as i64);
}

/// Runs `f` on a sink's outbox (the default value when the sink is not configured).
fn with_outbox<R: Default>(shared: &Shared, kind: Kind, f: impl FnOnce(&mut dyn Settle) -> R) -> R {
    match kind {
        Kind::Collector => shared
            .sinks
            .collector
            .as_ref()
            .map(|s| f(&mut *s.outbox.borrow_mut()))
            .unwrap_or_default(),
        Kind::Webhook => shared
            .sinks
            .webhook
            .as_ref()
            .map(|w| f(&mut *w.sink.outbox.borrow_mut()))
            .unwrap_or_default(),
    }
}

/// What settling a call needs of an outbox, whatever its items.
trait Settle {
    fn delivered(&mut self) -> usize;
    fn failed(&mut self, now_ms: u64) -> Failure;
}

impl<T> Settle for Outbox<T> {
    fn delivered(&mut self) -> usize {
        Outbox::delivered(self)
    }

    fn failed(&mut self, now_ms: u64) -> Failure {
        Outbox::failed(self, now_ms)
    }
}

struct SinkMetrics {
    enqueued: Count,
    delivered: Count,
    dropped: Count,
    failed: Count,
}

fn metrics_of(kind: Kind) -> (SinkMetrics, Gauge) {
    match kind {
        Kind::Collector => (
            SinkMetrics {
                enqueued: Count::AuditEnqueued,
                delivered: Count::AuditDelivered,
                dropped: Count::AuditDropped,
                failed: Count::AuditDeliveryFailed,
            },
            Gauge::AuditPending,
        ),
        Kind::Webhook => (
            SinkMetrics {
                enqueued: Count::NotifyEnqueued,
                delivered: Count::NotifyDelivered,
                dropped: Count::NotifyDropped,
                failed: Count::NotifyDeliveryFailed,
            },
            Gauge::NotifyPending,
        ),
    }
}
