//! Detections across requests: the deprovision storm and actor risk, as pure state transitions.
//!
//! Owns: the sliding-window counter, the storm and risk states, their compact text encoding (what the
//! filter keeps in proxy-wasm shared data, compare-and-swapped), and the access-sampling decision.
//! Does not own: where the state lives or the clock; time comes in as epoch seconds.
//!
//! The window is the two-bucket sliding estimate (as in Envoy's and Cloudflare's rate limiters): the
//! current fixed window's count plus the previous window's count weighted by how much of it still
//! overlaps the last `window` seconds, rounded up. It never under-counts a burst that straddles a
//! window boundary by more than rounding, and it takes three integers of state.

use crate::policy::{ActorRiskSettings, FleetDetection, StormSettings};
use crate::scim::{Event, EventKind};

/// A sliding-window event counter over `window` seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    /// Start of the current fixed window (epoch s, a multiple of the window length).
    start: u64,
    prev: u64,
    cur: u64,
}

impl Window {
    /// Moves the buckets forward to the window holding `now`.
    fn advance(&mut self, now: u64, window: u64) {
        let window = window.max(1);
        let start = now - now % window;
        if start == self.start {
            return;
        }
        self.prev = if start == self.start.saturating_add(window) {
            self.cur
        } else {
            0
        };
        self.cur = 0;
        self.start = start;
    }

    /// Events in the last `window` seconds (estimated, rounded up).
    pub fn estimate(&self, now: u64, window: u64) -> u64 {
        let mut w = *self;
        w.advance(now, window);
        let window = window.max(1);
        let elapsed = now.saturating_sub(w.start).min(window);
        let weighted = (w.prev.saturating_mul(window - elapsed)).div_ceil(window);
        w.cur.saturating_add(weighted)
    }

    pub fn add(&mut self, now: u64, window: u64, n: u64) {
        self.advance(now, window);
        self.cur = self.cur.saturating_add(n);
    }
}

/// The deprovision storm, per Envoy process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Storm {
    pub window: Window,
    /// Since when (epoch s) the storm is tripped; `None`: not tripped.
    pub tripped_at: Option<u64>,
}

/// What the storm says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StormVerdict {
    /// The request meets a tripped storm (it tripped it, or came after).
    pub tripped: bool,
    /// Deprovisions counted in the window, this request's included when it was counted.
    pub count: u64,
}

impl Storm {
    /// A request carrying `n` deprovisions at `now`: the new state and the verdict. While tripped,
    /// nothing is counted; past the cooldown (if any) the storm clears itself first.
    pub fn observe(mut self, s: &StormSettings, now: u64, n: u64) -> (Storm, StormVerdict) {
        if let (Some(at), Some(cooldown)) = (self.tripped_at, s.cooldown_secs) {
            if now >= at.saturating_add(cooldown) {
                self = Storm::default();
            }
        }
        let count = self.window.estimate(now, s.window_secs).saturating_add(n);
        if self.tripped_at.is_some() {
            return (
                self,
                StormVerdict {
                    tripped: true,
                    count: count - n,
                },
            );
        }
        if count > s.max {
            self.tripped_at = Some(now);
            return (
                self,
                StormVerdict {
                    tripped: true,
                    count,
                },
            );
        }
        self.window.add(now, s.window_secs, n);
        (
            self,
            StormVerdict {
                tripped: false,
                count,
            },
        )
    }

    /// `"<start> <prev> <cur> <tripped_at or ->"`.
    pub fn encode(&self) -> String {
        let tripped = self.tripped_at.map_or("-".to_string(), |t| t.to_string());
        format!(
            "{} {} {} {tripped}",
            self.window.start, self.window.prev, self.window.cur
        )
    }

    /// The state in shared data; empty or unreadable is the initial state (never a panic).
    pub fn decode(bytes: &[u8]) -> Storm {
        let text = std::str::from_utf8(bytes).unwrap_or_default();
        let fields: Vec<&str> = text.split(' ').collect();
        let num = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        match (num(0), num(1), num(2)) {
            (Some(start), Some(prev), Some(cur)) => Storm {
                window: Window { start, prev, cur },
                tripped_at: num(3),
            },
            _ => Storm::default(),
        }
    }
}

/// Blocked attempts of one actor, in one of a fixed number of slots (shared data has no delete, and
/// actors are whatever the client says: a key per actor would let a client grow memory at will).
/// A slot names its owner (a hash of the actor); another actor takes it over only once the owner's
/// window is empty, and until then is simply not tracked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Risk {
    pub owner: String,
    pub window: Window,
}

impl Risk {
    /// `owner`'s state in a slot holding `bytes` (empty: a free slot); `None` when another actor's
    /// attempts still count there.
    pub fn claim(bytes: &[u8], owner: &str, s: &ActorRiskSettings, now: u64) -> Option<Risk> {
        let held = Risk::decode(bytes);
        if held.owner == owner {
            return Some(held);
        }
        (held.owner.is_empty() || held.window.estimate(now, s.window_secs) == 0).then(|| Risk {
            owner: owner.to_string(),
            window: Window::default(),
        })
    }

    /// Whether the actor is risky now (enough blocked attempts in the window).
    pub fn is_high(&self, s: &ActorRiskSettings, now: u64) -> bool {
        self.window.estimate(now, s.window_secs) >= s.blocked_attempts
    }

    pub fn blocked(mut self, s: &ActorRiskSettings, now: u64) -> Risk {
        self.window.add(now, s.window_secs, 1);
        self
    }

    /// `"<owner> <start> <prev> <cur>"`.
    pub fn encode(&self) -> String {
        format!(
            "{} {} {} {}",
            self.owner, self.window.start, self.window.prev, self.window.cur
        )
    }

    pub fn decode(bytes: &[u8]) -> Risk {
        let text = std::str::from_utf8(bytes).unwrap_or_default();
        match text.split_once(' ') {
            Some((owner, rest)) if !owner.is_empty() => Risk {
                owner: owner.to_string(),
                window: Storm::decode(rest.as_bytes()).window,
            },
            _ => Risk::default(),
        }
    }
}

/// Deprovisions in a request (a Bulk can carry many).
pub fn deprovisions<'a>(events: impl Iterator<Item = &'a Event>) -> u64 {
    events
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::UserDeprovisioned | EventKind::UserDeleted
            )
        })
        .count() as u64
}

/// The fleet detection a judged write is counted under, and by how many: the first entry (in
/// policy order) whose events the request carries, with the number of those events (a Bulk of 20
/// deprovisions counts 20). `None`: the request carries none, and makes no call to the service.
pub fn fleet_mark<'f>(
    fleet: &'f [FleetDetection],
    events: &[&Event],
) -> Option<(&'f FleetDetection, u64)> {
    fleet.iter().find_map(|f| {
        let n = events.iter().filter(|e| f.events.contains(&e.kind)).count() as u64;
        (n > 0).then_some((f, n))
    })
}

/// Why an access record is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// A write or a denial: never sampled out.
    Always,
    /// A read kept by sampling.
    Sampled,
    /// A read sampled out.
    Skip,
}

/// Writes (anything but GET/HEAD) and denials (401/403) are always kept; other reads are kept when
/// the request id falls in the sampled share: the same request id gives the same answer in every
/// worker and every Envoy (FNV-1a, no randomness), so a sampled request is sampled everywhere.
pub fn keep(method: &str, status: Option<u16>, request_id: Option<&str>, rate: f64) -> Keep {
    let read = method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD");
    if !read || matches!(status, Some(401 | 403)) {
        return Keep::Always;
    }
    if rate >= 1.0 {
        return Keep::Sampled;
    }
    let h = fnv1a(request_id.unwrap_or_default().as_bytes());
    let unit = (h >> 11) as f64 / (1u64 << 53) as f64;
    if unit < rate {
        Keep::Sampled
    } else {
        Keep::Skip
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use crate::policy::DetectionAction;

    fn storm(max: u64, cooldown: Option<u64>) -> StormSettings {
        StormSettings {
            max,
            window_secs: 60,
            action: DetectionAction::Block,
            status: 429,
            cooldown_secs: cooldown,
        }
    }

    #[test]
    fn the_storm_trips_on_the_request_past_max_and_stays_tripped() {
        let s = storm(3, None);
        let mut st = Storm::default();
        for (i, now) in [1000u64, 1001, 1002].into_iter().enumerate() {
            let (next, v) = st.observe(&s, now, 1);
            assert!(!v.tripped, "request {i}");
            assert_eq!(v.count, i as u64 + 1);
            st = next;
        }
        let (next, v) = st.observe(&s, 1003, 1);
        assert!(v.tripped);
        assert_eq!(next.tripped_at, Some(1003));
        let (_, v) = next.observe(&s, 5000, 1);
        assert!(v.tripped, "until cleared, whatever the time");
        let (_, v) = Storm::default().observe(&s, 5000, 1);
        assert!(!v.tripped, "cleared");
    }

    #[test]
    fn a_bulk_counts_all_its_deprovisions() {
        let (_, v) = Storm::default().observe(&storm(50, None), 10, 51);
        assert!(v.tripped);
    }

    #[test]
    fn a_cooldown_clears_the_storm() {
        let s = storm(1, Some(300));
        let (st, _) = Storm::default().observe(&s, 100, 1);
        let (st, v) = st.observe(&s, 101, 1);
        assert!(v.tripped);
        assert!(st.observe(&s, 399, 1).1.tripped);
        let (st, v) = st.observe(&s, 401, 1);
        assert!(!v.tripped);
        assert_eq!(st.tripped_at, None);
    }

    #[test]
    fn the_window_slides_across_boundaries() {
        let mut w = Window::default();
        w.add(50, 60, 10); // window [0, 60)
        assert_eq!(w.estimate(59, 60), 10);
        assert_eq!(
            w.estimate(60, 60),
            10,
            "all of the previous window still overlaps"
        );
        assert_eq!(w.estimate(90, 60), 5, "half of it");
        assert_eq!(w.estimate(119, 60), 1, "rounded up");
        assert_eq!(w.estimate(120, 60), 0);
        assert_eq!(w.estimate(1000, 60), 0);
    }

    #[test]
    fn states_round_trip_and_garbage_is_the_initial_state() {
        let st = Storm {
            window: Window {
                start: 60,
                prev: 3,
                cur: 4,
            },
            tripped_at: Some(99),
        };
        assert_eq!(Storm::decode(st.encode().as_bytes()), st);
        let st = Storm {
            tripped_at: None,
            ..st
        };
        assert_eq!(Storm::decode(st.encode().as_bytes()), st);
        assert_eq!(Storm::decode(b""), Storm::default());
        assert_eq!(Storm::decode(b"\xff x"), Storm::default());
        let r = Risk {
            owner: "ab12".into(),
            window: Window {
                start: 600,
                prev: 1,
                cur: 2,
            },
        };
        assert_eq!(Risk::decode(r.encode().as_bytes()), r);
        assert_eq!(Risk::decode(b"garbage"), Risk::default());
    }

    #[test]
    fn actor_risk_rises_after_k_blocked_attempts_and_decays() {
        let s = ActorRiskSettings {
            blocked_attempts: 3,
            window_secs: 600,
            action: DetectionAction::Tag,
        };
        let mut r = Risk::claim(b"", "a", &s, 10).unwrap();
        for now in [10, 11] {
            r = r.blocked(&s, now);
            assert!(!r.is_high(&s, now));
        }
        r = r.blocked(&s, 12);
        assert!(r.is_high(&s, 12));
        assert!(!r.is_high(&s, 1300));
    }

    #[test]
    fn a_risk_slot_belongs_to_one_actor_while_its_attempts_count() {
        let s = ActorRiskSettings {
            blocked_attempts: 3,
            window_secs: 600,
            action: DetectionAction::Tag,
        };
        let a = Risk::claim(b"", "a", &s, 10).unwrap().blocked(&s, 10);
        let slot = a.encode();
        assert_eq!(Risk::claim(slot.as_bytes(), "a", &s, 20), Some(a.clone()));
        assert_eq!(
            Risk::claim(slot.as_bytes(), "b", &s, 20),
            None,
            "busy: b is not tracked"
        );
        let b = Risk::claim(slot.as_bytes(), "b", &s, 1300).unwrap();
        assert_eq!(
            (b.owner.as_str(), b.is_high(&s, 1300)),
            ("b", false),
            "a's window is over: b takes the slot"
        );
    }

    #[test]
    fn a_write_is_marked_for_the_first_fleet_detection_it_carries_events_of() {
        use crate::scim::ResourceType;
        let event = |kind| Event::new(kind, ResourceType::Users, None);
        let fleet = [
            FleetDetection {
                name: "removals".into(),
                events: vec![EventKind::GroupMemberRemoved],
                descriptor: "removal".into(),
            },
            FleetDetection {
                name: "storm".into(),
                events: vec![EventKind::UserDeprovisioned, EventKind::UserDeleted],
                descriptor: "deprovision".into(),
            },
        ];
        let bulk: Vec<Event> = [
            EventKind::UserDeprovisioned,
            EventKind::UserUpdated,
            EventKind::UserDeleted,
            EventKind::UserDeprovisioned,
        ]
        .into_iter()
        .map(event)
        .collect();
        let (f, n) = fleet_mark(&fleet, &bulk.iter().collect::<Vec<_>>()).unwrap();
        assert_eq!((f.descriptor.as_str(), n), ("deprovision", 3));
        let mixed = [
            event(EventKind::GroupMemberRemoved),
            event(EventKind::UserDeleted),
        ];
        let (f, n) = fleet_mark(&fleet, &mixed.iter().collect::<Vec<_>>()).unwrap();
        assert_eq!((f.name.as_str(), n), ("removals", 1), "policy order");
        assert!(fleet_mark(&fleet, &[&event(EventKind::UserUpdated)]).is_none());
        assert!(fleet_mark(&[], &bulk.iter().collect::<Vec<_>>()).is_none());
    }

    #[test]
    fn writes_and_denials_are_never_sampled_out() {
        assert_eq!(keep("POST", Some(200), Some("r"), 0.0), Keep::Always);
        assert_eq!(keep("DELETE", None, None, 0.0), Keep::Always);
        assert_eq!(keep("GET", Some(403), Some("r"), 0.0), Keep::Always);
        assert_eq!(keep("GET", Some(401), Some("r"), 0.0), Keep::Always);
        assert_eq!(keep("GET", Some(200), Some("r"), 0.0), Keep::Skip);
        assert_eq!(keep("head", Some(200), Some("r"), 1.0), Keep::Sampled);
    }

    #[test]
    fn sampling_is_deterministic_and_near_the_rate() {
        let ids: Vec<String> = (0..20_000).map(|i| format!("{i:08x}-req")).collect();
        let kept = ids
            .iter()
            .filter(|id| keep("GET", Some(200), Some(id), 0.1) == Keep::Sampled)
            .count();
        assert!((1700..2300).contains(&kept), "{kept}");
        assert!(ids.iter().all(
            |id| keep("GET", Some(200), Some(id), 0.1) == keep("GET", Some(200), Some(id), 0.1)
        ));
    }
}
