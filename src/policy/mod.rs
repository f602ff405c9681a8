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
    AccessSettings, ActorRiskSettings, ActorSource, AuditFormat, AuditSettings, ClusterEndpoint,
    CollectorSettings, Delivery, DetectionAction, DetectionSettings, ErrorOutcome, FilterSettings,
    FleetDetection, MethodOverride, NotifySettings, RouteTemplate, Settings, StormSettings,
    UnknownGroupOutcome, WebhookSecret,
};

/// A compiled, valid policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub settings: Settings,
    pub rules: Vec<Rule>,
    /// Which document this is, as every audit output names it.
    pub id: PolicyId,
}

/// The identity of a compiled policy: the SHA-256 of the exact bytes it was compiled from
/// (lower-case hex, what `sha256sum policy.json` prints when the file is the configuration), and
/// the document's `version`. Computed once, when the policy is compiled.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicyId {
    pub sha256: String,
    pub version: u64,
}

impl PolicyId {
    /// The identity of the policy document `text`.
    pub fn of(text: &str, version: u64) -> PolicyId {
        use sha2::{Digest, Sha256};
        PolicyId {
            sha256: hex(&Sha256::digest(text.as_bytes())),
            version,
        }
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        for nibble in [b >> 4, b & 0xf] {
            if let Some(&d) = DIGITS.get(usize::from(nibble)) {
                out.push(char::from(d));
            }
        }
    }
    out
}
