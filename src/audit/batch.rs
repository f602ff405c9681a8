//! The outbox: a bounded queue of items to deliver in batches, with capped exponential backoff.
//!
//! Owns: what to send next and when, what a success or a failure does to the queue, and the
//! accounting that proves nothing is lost silently (`enqueued = delivered + dropped + failed +
//! pending`). Does not own: the transport or the clock. The filter's root context calls `poll` on
//! each tick with the time, sends the batch with `dispatch_http_call`, and reports back with
//! `delivered` or `failed`; every answer says what to count.
//!
//! One batch is out at a time, and a failed batch is retried (same items, same key) before any
//! newer item is sent, so a collector sees records in order and can de-duplicate retries on the
//! key. While it waits, new items queue up to `queue_max`; beyond that the oldest waiting item is
//! dropped (never the batch in flight).

use std::collections::VecDeque;

use crate::policy::Delivery;

/// A bounded queue with at most one batch in flight.
#[derive(Debug)]
pub struct Outbox<T> {
    delivery: Delivery,
    queue: VecDeque<T>,
    out: Option<Out<T>>,
    /// When the last batch was formed (epoch ms); `None` before the first poll.
    last_formed_ms: Option<u64>,
    counts: Counts,
}

/// Every item the outbox has seen, by fate. `enqueued == delivered + dropped + failed + pending`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub enqueued: u64,
    pub delivered: u64,
    /// Dropped because the queue was full (oldest first).
    pub dropped: u64,
    /// Dropped after the last retry failed.
    pub failed: u64,
    /// Retry attempts (batches, not items).
    pub retries: u64,
}

/// A batch to send: the same key and items on every attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch<T> {
    /// Idempotency key: receivers de-duplicate retries on it.
    pub key: String,
    pub items: Vec<T>,
    /// 0 for the first attempt.
    pub attempt: u32,
}

#[derive(Debug)]
struct Out<T> {
    batch: Batch<T>,
    state: OutState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutState {
    /// Sent; waiting for the answer.
    Sending,
    /// Failed; send again at this time (epoch ms).
    RetryAt(u64),
}

/// What a failed attempt led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The batch goes again at `at_ms`.
    Retry { at_ms: u64 },
    /// Out of retries: `items` were dropped.
    GaveUp { items: usize },
}

impl<T> Outbox<T> {
    pub fn new(delivery: Delivery) -> Outbox<T> {
        Outbox {
            delivery,
            queue: VecDeque::new(),
            out: None,
            last_formed_ms: None,
            counts: Counts::default(),
        }
    }

    /// Queues an item; returns how many old items were dropped to make room (0 or 1).
    pub fn push(&mut self, item: T) -> usize {
        self.counts.enqueued += 1;
        let mut dropped = 0;
        while self.queue.len() >= self.delivery.queue_max.max(1) {
            self.queue.pop_front();
            dropped += 1;
        }
        self.counts.dropped += dropped as u64;
        self.queue.push_back(item);
        dropped
    }

    /// Nothing waiting and nothing out: a tick can skip reading the clock.
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.out.is_none()
    }

    /// Items not yet delivered, dropped or failed (waiting or in flight).
    pub fn pending(&self) -> usize {
        self.queue.len() + self.out.as_ref().map_or(0, |o| o.batch.items.len())
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The batch to send now, if any: a retry that is due, else a new batch when a full one is
    /// waiting or `flush_interval_ms` has passed since the last one was formed. The caller sends
    /// it, then calls `delivered` or `failed` (a dispatch that fails at once is a failure too).
    pub fn poll(&mut self, now_ms: u64, new_key: impl FnOnce() -> String) -> Option<&Batch<T>> {
        let last = *self.last_formed_ms.get_or_insert(now_ms);
        match self.out.as_ref().map(|o| o.state) {
            Some(OutState::Sending) => return None,
            Some(OutState::RetryAt(at)) if now_ms < at => return None,
            Some(OutState::RetryAt(_)) => {
                let out = self.out.as_mut()?;
                out.state = OutState::Sending;
                out.batch.attempt += 1;
                self.counts.retries += 1;
                return Some(&out.batch);
            }
            None => {}
        }
        let full = self.queue.len() >= self.delivery.batch_max;
        let due = now_ms.saturating_sub(last) >= self.delivery.flush_interval_ms;
        if self.queue.is_empty() || !(full || due) {
            return None;
        }
        self.last_formed_ms = Some(now_ms);
        let n = self.queue.len().min(self.delivery.batch_max.max(1));
        let items: Vec<T> = self.queue.drain(..n).collect();
        let out = self.out.insert(Out {
            batch: Batch {
                key: new_key(),
                items,
                attempt: 0,
            },
            state: OutState::Sending,
        });
        Some(&out.batch)
    }

    /// The batch out was accepted; returns how many items it held.
    pub fn delivered(&mut self) -> usize {
        let n = self.out.take().map_or(0, |o| o.batch.items.len());
        self.counts.delivered += n as u64;
        n
    }

    /// The batch out failed (non-2xx, timeout, reset, or not sent at all).
    pub fn failed(&mut self, now_ms: u64) -> Failure {
        let Some(out) = self.out.as_mut() else {
            return Failure::GaveUp { items: 0 };
        };
        if out.batch.attempt >= self.delivery.max_retries {
            let items = out.batch.items.len();
            self.out = None;
            self.counts.failed += items as u64;
            return Failure::GaveUp { items };
        }
        let at_ms = now_ms.saturating_add(backoff_ms(&self.delivery, out.batch.attempt + 1));
        out.state = OutState::RetryAt(at_ms);
        Failure::Retry { at_ms }
    }

    /// The batch in flight, while it is being sent (to build headers for a response check).
    pub fn in_flight(&self) -> Option<&Batch<T>> {
        self.out
            .as_ref()
            .filter(|o| o.state == OutState::Sending)
            .map(|o| &o.batch)
    }
}

/// The wait before retry `n` (1-based): `initial · 2^(n-1)`, capped at `backoff_max_ms`.
pub fn backoff_ms(d: &Delivery, retry: u32) -> u64 {
    let factor = 1u64
        .checked_shl(retry.saturating_sub(1))
        .unwrap_or(u64::MAX);
    d.backoff_initial_ms
        .saturating_mul(factor)
        .min(d.backoff_max_ms)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    fn delivery() -> Delivery {
        Delivery {
            batch_max: 3,
            flush_interval_ms: 1000,
            queue_max: 5,
            max_retries: 2,
            backoff_initial_ms: 100,
            backoff_max_ms: 250,
        }
    }

    fn key() -> String {
        "k".to_string()
    }

    fn conserved(o: &Outbox<u32>) {
        let c = o.counts();
        assert_eq!(
            c.enqueued,
            c.delivered + c.dropped + c.failed + o.pending() as u64,
            "{c:?}"
        );
    }

    #[test]
    fn full_batches_go_at_once_partial_ones_after_the_interval() {
        let mut o = Outbox::new(delivery());
        assert!(o.poll(0, key).is_none());
        o.push(1);
        assert!(o.poll(10, key).is_none(), "partial batch waits");
        o.push(2);
        o.push(3);
        o.push(4);
        assert_eq!(o.poll(20, key).unwrap().items, vec![1, 2, 3]);
        assert!(o.poll(30, key).is_none(), "one batch out at a time");
        assert_eq!(o.delivered(), 3);
        assert!(o.poll(500, key).is_none());
        assert_eq!(o.poll(1020, key).unwrap().items, vec![4]);
        o.delivered();
        assert!(o.is_idle());
        conserved(&o);
    }

    #[test]
    fn failures_retry_with_capped_backoff_then_give_up() {
        let mut o = Outbox::new(delivery());
        for i in 0..3 {
            o.push(i);
        }
        assert_eq!(o.poll(0, || "b1".into()).unwrap().attempt, 0);
        assert_eq!(o.failed(0), Failure::Retry { at_ms: 100 });
        assert!(o.poll(99, key).is_none());
        let retry = o.poll(100, || "other".into()).unwrap();
        assert_eq!(
            (retry.key.as_str(), retry.attempt, retry.items.len()),
            ("b1", 1, 3)
        );
        assert_eq!(o.failed(100), Failure::Retry { at_ms: 300 });
        assert_eq!(o.poll(300, key).unwrap().attempt, 2);
        assert_eq!(o.failed(300), Failure::GaveUp { items: 3 });
        assert_eq!(o.counts().failed, 3);
        assert_eq!(o.counts().retries, 2);
        conserved(&o);
    }

    #[test]
    fn a_full_queue_drops_the_oldest_never_the_batch_out() {
        let mut o = Outbox::new(delivery());
        for i in 0..3 {
            o.push(i);
        }
        o.poll(0, key);
        let dropped: usize = (10..17).map(|i| o.push(i)).sum();
        assert_eq!(dropped, 2);
        assert_eq!(o.pending(), 3 + 5);
        conserved(&o);
        o.delivered();
        assert_eq!(o.poll(5000, key).unwrap().items, vec![12, 13, 14]);
        conserved(&o);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let d = Delivery {
            backoff_initial_ms: 500,
            backoff_max_ms: 30_000,
            ..delivery()
        };
        let waits: Vec<u64> = (1..=8).map(|n| backoff_ms(&d, n)).collect();
        assert_eq!(
            waits,
            vec![500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]
        );
        assert_eq!(backoff_ms(&d, 200), 30_000);
    }

    #[test]
    fn accounting_holds_under_any_sequence() {
        // A small deterministic walk over push / poll / deliver / fail.
        let mut o = Outbox::new(delivery());
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut now = 0;
        for i in 0..5000u32 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            now += seed % 50;
            match seed % 5 {
                0 | 1 => {
                    o.push(i);
                }
                2 => {
                    o.poll(now, key);
                }
                3 if o.in_flight().is_some() => {
                    o.delivered();
                }
                _ if o.in_flight().is_some() => {
                    o.failed(now);
                }
                _ => {}
            }
            conserved(&o);
        }
    }
}
