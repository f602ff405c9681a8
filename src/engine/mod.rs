//! The one façade every front-end calls: policy bytes in → `Engine`; request view + host facts in →
//! `Evaluation` (decision, matched rules, normalised changes, the reply to send when blocking).
//!
//! `evaluate` judges one request on its own (the CLI's `eval`, the playground). `Session` runs one
//! request's whole lifecycle (headers, body, group-name lookups, verdict, response, audit outputs)
//! against a `Host` port that keeps state across requests: what the proxy-wasm filter feeds, and
//! what stateful case files replay in memory. It chains the same steps: `plan` in the headers phase,
//! `normalize` once the body is complete, `judge` with the facts it has.

mod access;
mod completion;
pub mod counts;
mod detections;
mod fleet;
pub mod host;
mod names;
pub mod offload;
mod ops;
mod outputs;
pub mod session;
pub mod shipping;

pub use crate::audit::ids::AuditIds;
pub use crate::scim::Headers;

pub use counts::Count;
pub use host::{Failed, Host, MemoryHost, Versioned};
pub use names::{remember as remember_group_name, Lookup, MAX_ANSWER_BYTES};
pub use offload::Offload;
pub use outputs::Outputs;
pub use session::{strip_ours, Head, Session, Step};
pub use shipping::{Moved, Shipping, Sink};

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::audit;
use crate::policy::{
    self, Decision, ErrorOutcome, MethodOverride, Policy, PolicyErrors, RuleMatch, Severity,
};
use crate::scim::endpoint::{classify, printable};
use crate::scim::{
    self, Endpoint, Method, Normalized, RequestView, ResourceType, Route, ScimError,
};

/// A compiled policy, ready to judge requests.
#[derive(Debug, Clone)]
pub struct Engine {
    policy: Policy,
    /// The policy's identity and the audit size bound, shared by every evaluation.
    stamp: Arc<audit::Stamp>,
    /// What the host's configuration does in the filter's place (`offload`).
    offload: Offload,
}

/// Host facts for one request.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    /// The actor, when the host knows it better than the policy's actor header (e.g. a JWT claim).
    #[serde(default)]
    pub actor: Option<String>,
    /// Group displayNames the host has learned (id → name).
    #[serde(default)]
    pub group_names: BTreeMap<String, String>,
}

/// What the filter should do after the request headers.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Not a SCIM write (non-SCIM path, or a read): let it through untouched.
    Pass,
    /// A SCIM write: hold the headers, buffer the body up to `max_body_bytes`, then `normalize`
    /// it against `target` (what the headers phase already resolved, so it is not resolved twice).
    Inspect {
        max_body_bytes: usize,
        target: Target,
    },
    /// Decided from the headers alone (method override, unknown endpoint…).
    Decided(Box<Evaluation>),
}

/// A SCIM write's endpoint and effective method, as the headers phase resolved them.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    endpoint: Endpoint,
    method: Method,
}

/// The full result for one request: what the CLI prints, what the filter applies, what audit records.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub decision: Decision,
    pub risk: Option<Severity>,
    pub matches: Vec<RuleMatch>,
    /// The normalised request (absent when it could not be read).
    pub normalized: Option<Normalized>,
    /// Why the request could not be judged, when it could not.
    pub error: Option<ScimError>,
    /// Group ids whose displayName was needed and unknown.
    pub unknown_groups: Vec<String>,
    /// The actor the decision used.
    pub actor: Option<String>,
    /// The policy's mode when this request was judged.
    pub mode: policy::Mode,
    /// Operations a reviewer needs first (`policy::eval::Judgement::notable`).
    pub notable: Vec<usize>,
    /// The policy that judged the request and the audit size bound.
    pub stamp: Arc<audit::Stamp>,
}

/// A local reply that replaces the upstream's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// RFC 7644 §3.12 error body, `application/scim+json`.
    pub body: String,
}

impl Engine {
    /// Compiles a policy document. Every problem is reported at once.
    pub fn from_json(policy_json: &str) -> Result<Engine, PolicyErrors> {
        policy::compile(policy_json).map(|policy| {
            let stamp = Arc::new(audit::Stamp {
                policy: policy.id.clone(),
                max_bytes: policy.settings.audit.max_record_bytes,
            });
            Engine {
                policy,
                stamp,
                offload: Offload::default(),
            }
        })
    }

    /// What every audit output of this engine names and obeys.
    pub fn stamp(&self) -> &audit::Stamp {
        &self.stamp
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// This engine, for a host whose configuration does `offload` in the filter's place.
    pub fn with_offload(self, offload: Offload) -> Engine {
        Engine { offload, ..self }
    }

    pub fn offload(&self) -> Offload {
        self.offload
    }

    /// Headers phase: is this a SCIM write, and can it be decided now?
    pub fn plan(&self, method: &str, path: &str, headers: &Headers) -> Plan {
        let s = &self.policy.settings;
        let route = match classify(path, &s.base_paths, &s.resource_types) {
            Ok(Route::NotScim) => return Plan::Pass,
            Ok(route) => route,
            Err(e) => return self.refuse(e, s.on_invalid, headers),
        };
        let method = match self.effective_method(method, headers) {
            Ok(m) => m,
            Err(e) => return self.refuse(e, ErrorOutcome::Block, headers),
        };
        match route {
            Route::NotScim => Plan::Pass,
            Route::Scim(ep) if method.is_read() || (method == Method::Post && ep.search) => {
                Plan::Pass
            }
            Route::Root if method.is_read() => Plan::Pass,
            Route::Root => self.refuse(not_a_write_endpoint(path), s.on_invalid, headers),
            Route::Scim(ep)
                if ep.resource_type.is_discovery() || ep.resource_type == ResourceType::Search =>
            {
                self.refuse(not_a_write_endpoint(path), s.on_invalid, headers)
            }
            Route::Scim(endpoint) => Plan::Inspect {
                max_body_bytes: s.max_body_bytes,
                target: Target { endpoint, method },
            },
        }
    }

    /// The method the request will be treated as, after override headers.
    fn effective_method(&self, method: &str, headers: &Headers) -> Result<Method, ScimError> {
        let overriding = OVERRIDE_HEADERS
            .iter()
            .find_map(|h| headers.get(h).map(|v| (*h, v)));
        let Some((header, value)) = overriding else {
            return match Method::parse(method) {
                Method::Other(m) => Err(ScimError::new(
                    405,
                    None,
                    format!("method `{}` is not a SCIM method", printable(&m)),
                )),
                m => Ok(m),
            };
        };
        match self.policy.settings.method_override {
            MethodOverride::Reject => Err(ScimError::new(
                400,
                None,
                format!("method override header `{header}` is not accepted"),
            )),
            MethodOverride::Honor => match Method::parse(value) {
                Method::Other(_) => Err(ScimError::new(
                    400,
                    None,
                    format!("`{header}` names no SCIM method"),
                )),
                m => Ok(m),
            },
        }
    }

    /// Body phase: the complete request → normalised changes, or why it cannot be read.
    pub fn normalize(
        &self,
        view: &RequestView<'_>,
        target: &Target,
    ) -> Result<Normalized, ScimError> {
        let s = &self.policy.settings;
        if view.body.is_some_and(|b| b.len() > s.max_body_bytes) {
            return Err(ScimError::too_large(format!(
                "the body is larger than {} bytes",
                s.max_body_bytes
            )));
        }
        let limits = scim::Limits {
            max_depth: s.max_depth,
            max_operations: s.max_operations,
            max_values: s.max_values,
            user_groups: s.user_groups,
            sensitive: &s.sensitive_attributes,
            base_paths: &s.base_paths,
            resource_types: &s.resource_types,
            schema: &s.schema,
        };
        scim::normalize(view, &target.endpoint, target.method.clone(), &limits)
    }

    /// Group ids whose displayName a rule may need and that neither the policy nor `facts` knows.
    /// The filter looks these up before calling `judge`.
    pub fn names_needed(&self, request: &Normalized, facts: &Facts) -> Vec<String> {
        let p = &self.policy.settings.privileged;
        if !p.needs_name() {
            return Vec::new();
        }
        let mut ids: Vec<String> = request
            .operations
            .iter()
            .filter(|op| op.resource_type == ResourceType::Groups && op.method != Method::Post)
            .filter_map(|op| op.resource_id.clone())
            .filter(|id| {
                !p.id_is_privileged(id)
                    && !p.known_names.contains_key(id)
                    && !facts.group_names.contains_key(id)
            })
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// Decision phase: judges a normalised request.
    pub fn judge(&self, request: Normalized, headers: &Headers, facts: &Facts) -> Evaluation {
        let actor = self.actor(headers, facts);
        let ctx = policy::eval::Context {
            actor: actor.as_deref(),
            group_names: &facts.group_names,
        };
        let j = policy::evaluate(&self.policy, &request, &ctx);
        Evaluation {
            decision: j.decision,
            risk: j.risk,
            matches: j.matches,
            normalized: Some(request),
            error: None,
            unknown_groups: j.unknown_groups,
            actor,
            mode: self.policy.settings.mode,
            notable: j.notable,
            stamp: Arc::clone(&self.stamp),
        }
    }

    /// An evaluation for a request that could not be read, under the configured outcome.
    pub fn unreadable(&self, error: ScimError, headers: &Headers, facts: &Facts) -> Evaluation {
        let s = &self.policy.settings;
        let outcome = match error.status {
            _ if error.unknown_attribute => ErrorOutcome::Block,
            413 => s.on_too_large,
            415 => s.on_unreadable,
            _ => s.on_invalid,
        };
        let decision = match outcome {
            ErrorOutcome::Block => Decision::Block,
            ErrorOutcome::Tag => Decision::Tag,
        };
        Evaluation {
            decision,
            risk: None,
            matches: Vec::new(),
            normalized: None,
            error: Some(error),
            unknown_groups: Vec::new(),
            actor: self.actor(headers, facts),
            mode: s.mode,
            notable: Vec::new(),
            stamp: Arc::clone(&self.stamp),
        }
    }

    /// Everything in one call: plan, normalise, judge. What `scimguard eval` and the web build run.
    pub fn evaluate(&self, view: &RequestView<'_>, facts: &Facts) -> Evaluation {
        match self.plan(view.method, view.path, view.headers) {
            Plan::Decided(e) => *e,
            Plan::Pass => Evaluation {
                decision: Decision::Allow,
                risk: None,
                matches: Vec::new(),
                normalized: None,
                error: None,
                unknown_groups: Vec::new(),
                actor: self.actor(view.headers, facts),
                mode: self.policy.settings.mode,
                notable: Vec::new(),
                stamp: Arc::clone(&self.stamp),
            },
            Plan::Inspect { target, .. } => match self.normalize(view, &target) {
                Ok(n) => self.judge(n, view.headers, facts),
                Err(e) => self.unreadable(e, view.headers, facts),
            },
        }
    }

    /// Evaluates an owned request (fixtures, CLI input).
    pub fn evaluate_request(&self, request: &scim::HttpRequest, facts: &Facts) -> Evaluation {
        let headers = request.headers();
        let body = request.body_bytes();
        let view = RequestView {
            method: &request.method,
            path: &request.path,
            headers: &headers,
            body: body.as_deref(),
        };
        self.evaluate(&view, facts)
    }

    fn actor(&self, headers: &Headers, facts: &Facts) -> Option<String> {
        if let Some(a) = &facts.actor {
            return Some(a.clone());
        }
        let header = self.policy.settings.actor_header.as_deref()?;
        headers
            .get(header)
            .map(|v| printable(v.trim()))
            .filter(|v| !v.is_empty())
    }

    fn refuse(&self, error: ScimError, outcome: ErrorOutcome, headers: &Headers) -> Plan {
        let mut e = self.unreadable(error, headers, &Facts::default());
        if outcome == ErrorOutcome::Block {
            e.decision = Decision::Block;
        }
        Plan::Decided(Box::new(e))
    }
}

/// Headers that ask a server to treat a request as another method.
pub const OVERRIDE_HEADERS: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

fn not_a_write_endpoint(path: &str) -> ScimError {
    ScimError::new(
        405,
        None,
        format!("`{}` does not accept writes", printable(path)),
    )
}

impl Evaluation {
    /// Adds a match found outside the policy's rules (a detection), deciding as the rules do.
    pub fn add_match(&mut self, m: RuleMatch) {
        self.decision = self.decision.max(m.decision());
        self.risk = self.risk.max(Some(m.severity));
        self.matches.push(m);
    }

    /// The ids of the matched rules, in policy order.
    pub fn rule_ids(&self) -> Vec<&str> {
        self.matches.iter().map(|m| m.id.as_str()).collect()
    }

    /// Lifecycle events in request order.
    pub fn events(&self) -> impl Iterator<Item = &scim::Event> {
        self.normalized
            .iter()
            .flat_map(|n| n.operations.iter())
            .flat_map(|o| o.events.iter())
    }

    /// The local reply to send when the decision is `block`.
    pub fn reply(&self) -> Option<Reply> {
        if self.decision != Decision::Block {
            return None;
        }
        if let Some(e) = &self.error {
            return Some(Reply {
                status: e.status,
                body: e.body().to_string(),
            });
        }
        let blocking: Vec<&RuleMatch> = self.matches.iter().filter(|m| m.blocks()).collect();
        let status = blocking.first().map_or(403, |m| m.status);
        let ids: Vec<&str> = blocking.iter().map(|m| m.id.as_str()).collect();
        let detail = format!(
            "request blocked by scimguard policy: rule {}",
            ids.join(", rule ")
        );
        Some(Reply {
            status,
            body: scim::error::error_body(status, None, &detail).to_string(),
        })
    }

    /// The audit record (one JSON line, at most `audit.max_record_bytes`) for this request, once
    /// the stream has completed.
    pub fn audit_record(&self, req: &audit::RequestFacts, done: &audit::Completion) -> String {
        audit::write_record(&self.judged(), req, done)
    }

    /// `audit_record`, and whether it had to be cut to fit.
    pub fn audit_line(&self, req: &audit::RequestFacts, done: &audit::Completion) -> audit::Line {
        audit::audit_line(&self.judged(), req, done)
    }

    /// `audit_line` with `source_ip` and `status` left to the access log (`audit::HostFields`).
    pub fn audit_line_in_log(
        &self,
        req: &audit::RequestFacts,
        done: &audit::Completion,
    ) -> audit::Line {
        let j = audit::Judged {
            host_fields: audit::HostFields::InLog,
            ..self.judged()
        };
        audit::audit_line(&j, req, done)
    }

    /// The parts of this evaluation audit output shows.
    pub fn judged(&self) -> audit::Judged<'_> {
        audit::Judged {
            decision: self.decision,
            risk: self.risk,
            mode: self.mode,
            matches: &self.matches,
            normalized: self.normalized.as_ref(),
            error: self.error.as_ref(),
            actor: self.actor.as_deref(),
            unknown_groups: &self.unknown_groups,
            notable: &self.notable,
            stamp: &self.stamp,
            host_fields: audit::HostFields::InRecord,
        }
    }

    /// The OCSF 1.8.0 events of this request (`audit::ocsf`), product vendor `scimguard`. Empty when
    /// the request is not a SCIM write. Without a known status, a blocked request's events carry the
    /// status of the reply scimguard sends.
    pub fn ocsf_events(&self, req: &audit::RequestFacts, done: &audit::Completion) -> Vec<Value> {
        self.ocsf_events_with(req, done, &audit::ocsf::OcsfContext::default())
    }

    /// `ocsf_events` with the host's vendor name and learned group names.
    pub fn ocsf_events_with(
        &self,
        req: &audit::RequestFacts,
        done: &audit::Completion,
        ctx: &audit::ocsf::OcsfContext<'_>,
    ) -> Vec<Value> {
        if done.status.is_none() {
            if let Some(reply) = self.reply() {
                let done = audit::Completion {
                    status: Some(reply.status),
                    ..done.clone()
                };
                return audit::ocsf::events(&self.judged(), req, &done, ctx);
            }
        }
        audit::ocsf::events(&self.judged(), req, done, ctx)
    }

    /// `ocsf_events_with`, each event as one line of at most `audit.max_record_bytes`.
    pub fn ocsf_lines(
        &self,
        req: &audit::RequestFacts,
        done: &audit::Completion,
        ctx: &audit::ocsf::OcsfContext<'_>,
    ) -> Vec<audit::Line> {
        self.ocsf_events_with(req, done, ctx)
            .iter()
            .map(|e| audit::bound::ocsf(e, self.stamp.max_bytes))
            .collect()
    }

    /// Whether this request notifies: a matched rule has `notify: true`, or the risk reaches `threshold`.
    pub fn should_notify(&self, threshold: Option<Severity>) -> bool {
        audit::should_notify(&self.matches, self.risk, threshold)
    }

    /// The CloudEvents notification for this request, with `ocsf` (from `ocsf_events`) as `data.ocsf`.
    pub fn notification(
        &self,
        req: &audit::RequestFacts,
        done: &audit::Completion,
        notice: &audit::notify::Origin<'_>,
        ocsf: &[Value],
    ) -> Value {
        audit::cloudevent(&self.judged(), req, done, notice, ocsf)
    }

    /// `notification` as the body to send, at most `audit.max_record_bytes`.
    pub fn notification_body(
        &self,
        req: &audit::RequestFacts,
        done: &audit::Completion,
        notice: &audit::notify::Origin<'_>,
        ocsf: &[Value],
    ) -> audit::Line {
        audit::bound::notification(
            &self.notification(req, done, notice, ocsf),
            self.stamp.max_bytes,
        )
    }

    /// The `scimguard eval` output object (a contract other tools read; keep these keys).
    pub fn to_json(&self) -> Value {
        let changes: Vec<&scim::Change> = self
            .normalized
            .iter()
            .flat_map(|n| n.operations.iter())
            .flat_map(|o| o.changes.iter())
            .collect();
        let events: Vec<&str> = self.events().map(|e| e.kind.as_str()).collect();
        json!({
            "decision": self.decision.as_str(),
            "risk": self.risk.map_or("none", Severity::as_str),
            "rules": self.rule_ids(),
            "events": events,
            "changes": changes,
            "error": self.error.as_ref().map(|e| json!({"status": e.status, "scimType": e.scim_type, "detail": e.detail})),
        })
    }
}
