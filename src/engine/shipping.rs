//! Shipping audit outputs: records (and OCSF events) to the collector, signed notifications to the
//! webhook receiver, from per-host queues (`audit::batch::Outbox`). Pure: the host pushes what a
//! session produced, asks on its timer what is due (`due` → `Send` values it sends), and reports each
//! answer (`settled`). Counters move through the `Host` port.
//!
//! The collector gets `application/x-ndjson`: one line per item, at most `batch_max` lines,
//! `idempotency-key` the same on every retry of a batch. The webhook gets one CloudEvent per POST
//! (`application/cloudevents+json`) with Standard Webhooks headers, signed again per attempt (fresh
//! `webhook-timestamp`), the same `webhook-id` on every retry.

use super::host::Host;
use super::Count;
use crate::audit::batch::{Failure, Outbox};
use crate::audit::notify::{parse_secret, webhook_headers, WebhookKey};
use crate::policy::settings::{SecretSource, Settings};
use crate::policy::{CollectorSettings, NotifySettings};

/// Which sink a send belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    Collector,
    Webhook,
}

/// One request for the host to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Send {
    pub sink: Sink,
    pub cluster: String,
    /// `:method`, `:path`, `:authority`, content type and the sink's own headers.
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub timeout_ms: u64,
}

/// How a queue changed, for the host's pending gauges (items in minus items out).
pub type Moved = i64;

/// The queues of one host, one per configured sink.
#[derive(Debug, Default)]
pub struct Shipping {
    collector: Option<(CollectorSettings, Outbox<String>)>,
    webhook: Option<(NotifySettings, WebhookKey, Outbox<Notification>)>,
}

/// A queued notification: its id (the audit id) and the exact body to sign.
type Notification = (String, String);

impl Shipping {
    /// Queues for the policy's sinks. The webhook's signing key is in the policy, or in the
    /// environment variable `notify.secret_env` names, which `env` reads (the proxy-wasm VM's
    /// `vm_config.environment_variables`, which keeps it out of Envoy's `/config_dump`). Fails (and
    /// so refuses the configuration) when the key cannot be had; the message never holds the key.
    pub fn for_policy(
        s: &Settings,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Shipping, String> {
        let notify = match &s.notify {
            Some(n) => Some((n, webhook_key(&n.secret, env)?)),
            None => None,
        };
        Ok(Shipping::new(s.audit.collector.as_ref(), notify))
    }

    /// Queues for the configured sinks; the webhook needs its signing key.
    pub fn new(
        collector: Option<&CollectorSettings>,
        notify: Option<(&NotifySettings, WebhookKey)>,
    ) -> Shipping {
        Shipping {
            collector: collector.map(|c| (c.clone(), Outbox::new(c.delivery))),
            webhook: notify.map(|(n, key)| (n.clone(), key, Outbox::new(n.delivery))),
        }
    }

    pub fn has_collector(&self) -> bool {
        self.collector.is_some()
    }

    pub fn has_webhook(&self) -> bool {
        self.webhook.is_some()
    }

    /// Queues a line for the collector.
    pub fn record(&mut self, host: &mut dyn Host, line: String) -> Moved {
        let Some((_, outbox)) = self.collector.as_mut() else {
            return 0;
        };
        pushed(host, Sink::Collector, outbox.push(line))
    }

    /// Queues a notification: its id and the exact body to sign.
    pub fn notify(&mut self, host: &mut dyn Host, id: String, body: String) -> Moved {
        let Some((_, _, outbox)) = self.webhook.as_mut() else {
            return 0;
        };
        pushed(host, Sink::Webhook, outbox.push((id, body)))
    }

    /// Whether nothing is queued or in flight (the host's timer can skip the clock).
    pub fn is_idle(&self) -> bool {
        self.collector.as_ref().is_none_or(|(_, o)| o.is_idle())
            && self.webhook.as_ref().is_none_or(|(_, _, o)| o.is_idle())
    }

    /// What is due at `now_ms`: at most one batch per sink (the next waits for its answer).
    pub fn due(&mut self, host: &mut dyn Host, now_ms: u64) -> Vec<Send> {
        let mut sends = Vec::new();
        if let Some(send) = self.collector_batch(host, now_ms) {
            sends.push(send);
        }
        if let Some(send) = self.webhook_batch(host, now_ms) {
            sends.push(send);
        }
        sends
    }

    /// A send was answered (`ok`: a 2xx) or could not be made.
    pub fn settled(&mut self, host: &mut dyn Host, sink: Sink, ok: bool, now_ms: u64) -> Moved {
        let (delivered, failed) = match sink {
            Sink::Collector => (Count::AuditDelivered, Count::AuditDeliveryFailed),
            Sink::Webhook => (Count::NotifyDelivered, Count::NotifyDeliveryFailed),
        };
        let outcome = match (sink, &mut self.collector, &mut self.webhook) {
            (Sink::Collector, Some((_, o)), _) => settle(o, ok, now_ms),
            (Sink::Webhook, _, Some((_, _, o))) => settle(o, ok, now_ms),
            _ => return 0,
        };
        match outcome {
            Ok(n) => {
                host.count(delivered, n as u64);
                -(n as i64)
            }
            Err(Failure::GaveUp { items }) => {
                host.warn(&format!(
                    "scimguard: gave up delivering {items} item(s) after the last retry"
                ));
                host.count(failed, items as u64);
                -(items as i64)
            }
            Err(_) => 0,
        }
    }

    fn collector_batch(&mut self, host: &mut dyn Host, now_ms: u64) -> Option<Send> {
        let (c, outbox) = self.collector.as_mut()?;
        let batch = outbox.poll(now_ms, || host.audit_id())?;
        if batch.attempt > 0 {
            host.count(Count::AuditRetries, 1);
        }
        let mut body = batch.items.join("\n");
        body.push('\n');
        let e = &c.endpoint;
        Some(Send {
            sink: Sink::Collector,
            cluster: e.cluster.clone(),
            headers: vec![
                (":method", "POST".to_string()),
                (":path", e.path.clone()),
                (":authority", e.authority.clone()),
                ("content-type", "application/x-ndjson".to_string()),
                ("idempotency-key", batch.key.clone()),
                ("x-scimguard-records", batch.items.len().to_string()),
                ("x-scimguard-attempt", batch.attempt.to_string()),
            ],
            body,
            timeout_ms: e.timeout_ms,
        })
    }

    fn webhook_batch(&mut self, host: &mut dyn Host, now_ms: u64) -> Option<Send> {
        let (n, key, outbox) = self.webhook.as_mut()?;
        let batch = outbox.poll(now_ms, || host.audit_id())?;
        if batch.attempt > 0 {
            host.count(Count::NotifyRetries, 1);
        }
        let (id, body) = batch.items.first()?.clone();
        let signed = match webhook_headers(key, &id, now_ms / 1000, &body) {
            Ok(h) => h,
            Err(e) => {
                host.warn(&format!("scimguard: notification not signed: {e}"));
                self.settled(host, Sink::Webhook, false, now_ms);
                return None;
            }
        };
        let e = &n.endpoint;
        let mut headers = vec![
            (":method", "POST".to_string()),
            (":path", e.path.clone()),
            (":authority", e.authority.clone()),
            ("content-type", "application/cloudevents+json".to_string()),
        ];
        headers.extend(signed);
        Some(Send {
            sink: Sink::Webhook,
            cluster: e.cluster.clone(),
            headers,
            body,
            timeout_ms: e.timeout_ms,
        })
    }
}

fn webhook_key(
    source: &SecretSource,
    env: impl Fn(&str) -> Option<String>,
) -> Result<WebhookKey, String> {
    match source {
        SecretSource::Key(k) => {
            WebhookKey::from_bytes(k.expose()).map_err(|e| format!("notify.secret: {e}"))
        }
        SecretSource::Env(name) => {
            let text = env(name).ok_or_else(|| {
                format!("notify.secret_env: the environment variable `{name}` is not set for the Wasm VM (vm_config.environment_variables)")
            })?;
            parse_secret(&text).map_err(|e| format!("notify.secret_env `{name}`: {e}"))
        }
    }
}

fn pushed(host: &mut dyn Host, sink: Sink, dropped: usize) -> Moved {
    let (enqueued, lost) = match sink {
        Sink::Collector => (Count::AuditEnqueued, Count::AuditDropped),
        Sink::Webhook => (Count::NotifyEnqueued, Count::NotifyDropped),
    };
    host.count(enqueued, 1);
    host.count(lost, dropped as u64);
    1 - dropped as i64
}

fn settle<T>(outbox: &mut Outbox<T>, ok: bool, now_ms: u64) -> Result<usize, Failure> {
    match ok {
        true => Ok(outbox.delivered()),
        false => Err(outbox.failed(now_ms)),
    }
}
