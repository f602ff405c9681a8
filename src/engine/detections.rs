//! Detections across requests, over the host's shared state (`Host::load` / `store`): in Envoy,
//! every worker VM of one process sees the same keys (not other Envoys: `detections.fleet` asks
//! Envoy's global rate limit service for that, see `fleet`).
//!
//! - `scimguard.detect.storm`: the deprovision storm (`audit::detect::Storm`), updated with
//!   compare-and-swap so concurrent workers never lose a count (a few tries, then the request is
//!   judged without the detection).
//! - `scimguard.detect.risk.<slot>`: blocked attempts of one actor, in one of `RISK_SLOTS` slots
//!   (by SHA-256 of the actor): memory stays bounded whatever actors clients claim to be; a slot
//!   whose owner still has attempts counting is not taken over (that actor is then not tracked).
//!
//! A detection adds a match with a reserved id (`detection.deprovision_storm`,
//! `detection.actor_risk`, `detection.fleet.<name>`) to the evaluation before it is applied, so the
//! block reply, the tags, the audit record, the OCSF events and the notification name it like a rule.
//!
//! Host state reads: none for a write without deprovisions from an actor that is not tracked;
//! otherwise one load (risk), and for deprovisions one load + store per CAS try; a block from a
//! known actor adds one load and one store.

use sha2::{Digest, Sha256};

use super::host::{Failed, Host};
use super::{Count, Evaluation};
use crate::audit::detect::{deprovisions, Risk, Storm, StormVerdict};
use crate::policy::compile::DETECTION_PREFIX;
use crate::policy::{
    Action, ActorRiskSettings, Decision, DetectionAction, Mode, Policy, RuleId, RuleMatch, Severity,
};

const STORM_KEY: &str = "scimguard.detect.storm";
const RISK_PREFIX: &str = "scimguard.detect.risk.";
const CAS_TRIES: usize = 8;
/// Shared-state keys for actor risk, at most (each ~100 bytes).
const RISK_SLOTS: u64 = 4096;

/// Adds what the detections say to a fresh evaluation, and counts a block against its actor.
/// `now` is the request's time (epoch s).
pub fn apply(policy: &Policy, host: &mut dyn Host, e: &mut Evaluation, now: u64) {
    let s = &policy.settings;
    let d = &s.detections;
    let n = d
        .deprovision_storm
        .as_ref()
        .map_or(0, |_| deprovisions(e.events()));
    let actor = d.actor_risk.as_ref().and(e.actor.clone());
    if let (Some(r), Some(actor)) = (&d.actor_risk, &actor) {
        if let Ok(Some((risk, _, _))) = risk_of(host, r, actor, now) {
            if risk.is_high(r, now) {
                host.count(Count::ActorRiskHits, 1);
                let description = format!(
                    "{} or more blocked attempts from this actor within {} s",
                    r.blocked_attempts, r.window_secs
                );
                e.add_match(detection(
                    "actor_risk",
                    description,
                    Severity::High,
                    (r.action, s.mode, s.block_status),
                ));
            }
        }
    }
    if let (Some(st), true) = (&d.deprovision_storm, n > 0 && e.decision != Decision::Block) {
        if let Ok(Some(v)) = observe_storm(host, |state| state.observe(st, now, n)) {
            if v.tripped {
                host.count(Count::StormHits, 1);
                let description = format!(
                    "deprovision storm: more than {} deprovisions within {} s; cleared by an operator{}",
                    st.max,
                    st.window_secs,
                    st.cooldown_secs.map_or(String::new(), |c| format!(" or after {c} s"))
                );
                e.add_match(detection(
                    "deprovision_storm",
                    description,
                    Severity::Critical,
                    (st.action, s.mode, st.status),
                ));
            }
        }
    }
    if let (Some(r), Some(actor), Decision::Block) = (&d.actor_risk, &actor, e.decision) {
        // A failed update is already counted by the host; the request is decided either way.
        let _ = update_risk(host, r, actor, now);
    }
}

/// The storm as shared state holds it.
pub fn storm(host: &mut dyn Host) -> Result<Storm, Failed> {
    Ok(host
        .load(STORM_KEY)?
        .0
        .map(|b| Storm::decode(&b))
        .unwrap_or_default())
}

/// Clears the storm (an operator's action): counts restart from zero.
pub fn clear_storm(host: &mut dyn Host) -> Result<(), Failed> {
    host.store(STORM_KEY, Storm::default().encode().as_bytes(), None)
        .map(|_| ())
}

/// A detection's match under its reserved id; `(action, mode, status)` as the detection is set.
pub fn detection(
    name: &str,
    description: String,
    severity: Severity,
    (action, mode, status): (DetectionAction, Mode, u16),
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
        // A storm or a fleet limit is what an operator must hear about at once; a risky actor's
        // requests notify through their severity (`notify.min_severity`).
        notify: name == "deprovision_storm" || name.starts_with("fleet."),
    }
}

/// Applies `step` to the storm with compare-and-swap; `None` when every try met a concurrent write.
fn observe_storm(
    host: &mut dyn Host,
    step: impl Fn(Storm) -> (Storm, StormVerdict),
) -> Result<Option<StormVerdict>, Failed> {
    for _ in 0..CAS_TRIES {
        let (bytes, version) = host.load(STORM_KEY)?;
        let state = bytes.map(|b| Storm::decode(&b)).unwrap_or_default();
        let (next, verdict) = step(state);
        if next == state {
            return Ok(Some(verdict));
        }
        if host.store(STORM_KEY, next.encode().as_bytes(), version)? {
            if state.tripped_at.is_none() && next.tripped_at.is_some() {
                host.count(Count::StormTrips, 1);
            }
            return Ok(Some(verdict));
        }
    }
    Ok(None)
}

/// The actor's risk (a fresh one if the slot is free or ours to take), its key and version;
/// `None` when another actor holds the slot.
fn risk_of(
    host: &mut dyn Host,
    r: &ActorRiskSettings,
    actor: &str,
    now: u64,
) -> Result<Option<(Risk, String, Option<u32>)>, Failed> {
    let (key, owner) = risk_key(actor);
    let (bytes, version) = host.load(&key)?;
    Ok(Risk::claim(&bytes.unwrap_or_default(), &owner, r, now).map(|risk| (risk, key, version)))
}

fn update_risk(
    host: &mut dyn Host,
    r: &ActorRiskSettings,
    actor: &str,
    now: u64,
) -> Result<(), Failed> {
    for _ in 0..CAS_TRIES {
        let Some((risk, key, version)) = risk_of(host, r, actor, now)? else {
            return Ok(());
        };
        if host.store(&key, risk.blocked(r, now).encode().as_bytes(), version)? {
            return Ok(());
        }
    }
    Ok(())
}

/// The slot key and the owner tag of an actor. Actors are hashed: shared state never holds them.
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
