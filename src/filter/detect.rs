//! Detections across requests, kept in proxy-wasm shared data: one Envoy process, every worker VM
//! of this `vm_id` sees the same keys (not other Envoys: a fleet needs Envoy's global rate limit
//! service or the collector for that).
//!
//! - `scimguard.detect.storm`: the deprovision storm (`audit::detect::Storm`), updated with
//!   compare-and-swap so concurrent workers never lose a count (a few tries, then the request is
//!   judged without the detection and the failure is counted).
//! - `scimguard.detect.risk.<slot>`: blocked attempts of one actor, in one of `RISK_SLOTS` slots
//!   (by SHA-256 of the actor): memory stays bounded whatever actors clients claim to be; a slot
//!   whose owner still has attempts counting is not taken over (that actor is then not tracked).
//!
//! A detection adds a match with a reserved id (`detection.deprovision_storm`,
//! `detection.actor_risk`) to the evaluation before it is applied, so the block reply, the tags,
//! the audit record, the OCSF events and the notification all name it like a rule.
//!
//! Host calls: none for a write without deprovisions from an actor that is not tracked; otherwise
//! `get_current_time`, one `get_shared_data` (risk), and for deprovisions one `get_shared_data` +
//! `set_shared_data` per CAS try; a block from a known actor adds one read and one write.

use sha2::{Digest, Sha256};

use super::host::{self, HostResult};
use super::metrics::Metric;
use super::root::Shared;
use crate::audit::detect::{deprovisions, Risk, Storm, StormVerdict};
use crate::engine::Evaluation;
use crate::policy::compile::DETECTION_PREFIX;
use crate::policy::{
    Action, ActorRiskSettings, Decision, DetectionAction, Mode, RuleId, RuleMatch, Severity,
};

const STORM_KEY: &str = "scimguard.detect.storm";
const RISK_PREFIX: &str = "scimguard.detect.risk.";
const CAS_TRIES: usize = 8;
/// Shared-data keys for actor risk, at most (each ~100 bytes).
const RISK_SLOTS: u64 = 4096;

/// Adds what the detections say to a fresh evaluation, and counts a block against its actor.
pub fn apply(shared: &Shared, e: &mut Evaluation) {
    let s = &shared.engine.policy().settings;
    let d = &s.detections;
    let n = d
        .deprovision_storm
        .as_ref()
        .map_or(0, |_| deprovisions(e.events()));
    let actor = d.actor_risk.as_ref().and(e.actor.clone());
    if n == 0 && actor.is_none() {
        return;
    }
    let now = match host::now_ns() {
        Ok(ns) => ns / 1_000_000_000,
        Err(err) => return shared.host_error(err),
    };
    if let (Some(r), Some(actor)) = (&d.actor_risk, &actor) {
        match risk_of(r, actor, now) {
            Ok(Some((risk, _, _))) if risk.is_high(r, now) => {
                shared.metrics.count(Metric::ActorRiskHits);
                let description = format!(
                    "{} or more blocked attempts from this actor within {} s",
                    r.blocked_attempts, r.window_secs
                );
                add(
                    e,
                    detection(
                        "actor_risk",
                        description,
                        Severity::High,
                        r.action,
                        s.mode,
                        s.block_status,
                    ),
                );
            }
            Ok(_) => {}
            Err(err) => shared.host_error(err),
        }
    }
    if let (Some(st), true) = (&d.deprovision_storm, n > 0 && e.decision != Decision::Block) {
        match observe_storm(shared, |state| state.observe(st, now, n)) {
            Ok(Some(v)) if v.tripped => {
                shared.metrics.count(Metric::StormHits);
                let description = format!(
                    "deprovision storm: more than {} deprovisions within {} s; cleared by an operator{}",
                    st.max,
                    st.window_secs,
                    st.cooldown_secs.map_or(String::new(), |c| format!(" or after {c} s"))
                );
                add(
                    e,
                    detection(
                        "deprovision_storm",
                        description,
                        Severity::Critical,
                        st.action,
                        s.mode,
                        st.status,
                    ),
                );
            }
            Ok(_) => {}
            Err(err) => shared.host_error(err),
        }
    }
    if let (Some(r), Some(actor), Decision::Block) = (&d.actor_risk, &actor, e.decision) {
        if let Err(err) = update_risk(r, actor, now) {
            shared.host_error(err);
        }
    }
}

/// The storm as shared data holds it.
pub fn storm() -> HostResult<Storm> {
    Ok(host::shared_data_cas(STORM_KEY)?
        .0
        .map(|b| Storm::decode(&b))
        .unwrap_or_default())
}

/// Clears the storm (an operator's action): counts restart from zero.
pub fn clear_storm() -> HostResult<()> {
    host::set_shared_data(STORM_KEY, Storm::default().encode().as_bytes())
}

/// Applies `step` to the storm with compare-and-swap; `None` when every try met a concurrent write.
fn observe_storm(
    shared: &Shared,
    step: impl Fn(Storm) -> (Storm, StormVerdict),
) -> HostResult<Option<StormVerdict>> {
    for _ in 0..CAS_TRIES {
        let (bytes, cas) = host::shared_data_cas(STORM_KEY)?;
        let state = bytes.map(|b| Storm::decode(&b)).unwrap_or_default();
        let (next, verdict) = step(state);
        if next == state {
            return Ok(Some(verdict));
        }
        if host::set_shared_data_cas(STORM_KEY, next.encode().as_bytes(), cas)? {
            if state.tripped_at.is_none() && next.tripped_at.is_some() {
                shared.metrics.count(Metric::StormTrips);
            }
            return Ok(Some(verdict));
        }
    }
    Ok(None)
}

/// The actor's risk (a fresh one if the slot is free or ours to take), its key and CAS token;
/// `None` when another actor holds the slot.
fn risk_of(
    r: &ActorRiskSettings,
    actor: &str,
    now: u64,
) -> HostResult<Option<(Risk, String, Option<u32>)>> {
    let (key, owner) = risk_key(actor);
    let (bytes, cas) = host::shared_data_cas(&key)?;
    Ok(Risk::claim(&bytes.unwrap_or_default(), &owner, r, now).map(|risk| (risk, key, cas)))
}

fn update_risk(r: &ActorRiskSettings, actor: &str, now: u64) -> HostResult<()> {
    for _ in 0..CAS_TRIES {
        let Some((risk, key, cas)) = risk_of(r, actor, now)? else {
            return Ok(());
        };
        if host::set_shared_data_cas(&key, risk.blocked(r, now).encode().as_bytes(), cas)? {
            return Ok(());
        }
    }
    Ok(())
}

/// The slot key and the owner tag of an actor. Actors are hashed: shared data never holds them.
fn risk_key(actor: &str) -> (String, String) {
    let digest = Sha256::digest(actor.as_bytes());
    let owner: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    let slot = digest
        .iter()
        .skip(16)
        .take(8)
        .fold(0u64, |n, b| (n << 8) | u64::from(*b))
        % RISK_SLOTS;
    (format!("{RISK_PREFIX}{slot}"), owner)
}

pub(super) fn detection(
    name: &str,
    description: String,
    severity: Severity,
    action: DetectionAction,
    mode: Mode,
    status: u16,
) -> RuleMatch {
    RuleMatch {
        id: RuleId(format!("{DETECTION_PREFIX}{name}")),
        description,
        severity,
        action: match action {
            DetectionAction::Block => Action::Block,
            DetectionAction::Tag => Action::Tag,
        },
        mode,
        status,
        // A storm is what an operator must hear about at once; a risky actor's requests notify
        // through their severity (`notify.min_severity`).
        notify: name == "deprovision_storm" || name.starts_with("fleet."),
    }
}

/// Adds a match the way the engine decides: an enforced block blocks, anything else tags.
pub(super) fn add(e: &mut Evaluation, m: RuleMatch) {
    let decision = if m.action == Action::Block && m.mode == Mode::Enforce {
        Decision::Block
    } else {
        Decision::Tag
    };
    e.decision = e.decision.max(decision);
    e.risk = e.risk.max(Some(m.severity));
    e.matches.push(m);
}
