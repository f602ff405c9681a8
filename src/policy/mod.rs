//! Declarative high-risk rules: the policy document (JSON) → a compiled `Policy` → a `Decision`.
//!
//! Owns: the policy language (`compile` walks the JSON once, reporting every error with its rule,
//! JSON pointer, line and a did-you-mean), the compiled rule types (`rule`), value tests (`value_test`)
//! and evaluation against normalised operations (`eval`). A `Policy` that exists is valid; requests
//! never re-read the document. Does not own: request parsing (`scim`) or audit output (`audit`).

pub mod compile;
pub mod error;
pub mod eval;
pub mod lines;
pub mod rule;
pub mod settings;
pub mod value_test;

pub use compile::compile;
pub use error::{PolicyError, PolicyErrors};
pub use eval::{evaluate, Action, Decision, RuleMatch, Severity};
pub use rule::{Condition, Mode, Rule, RuleId};
pub use settings::{
    AccessSettings, ActorRiskSettings, ActorSource, AuditFormat, AuditSettings, CollectorSettings,
    Delivery, DetectionAction, DetectionSettings, Endpoint, ErrorOutcome, FilterSettings,
    MethodOverride, NotifySettings, RouteTemplate, Settings, StormSettings, UnknownGroupOutcome,
    WebhookSecret,
};

/// A compiled, valid policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub settings: Settings,
    pub rules: Vec<Rule>,
}
