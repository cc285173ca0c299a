//! Per-worker verdict counters, one per reason, and the count of flows the
//! flow table could not record (`flows_not_recorded`), summed on read.
//!
//! Each worker owns a cache-padded block of counters that only it writes
//! (a relaxed load and store, no read-modify-write), so workers never share a
//! cache line on the packet path. Readers sum all blocks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_utils::CachePadded;
use parking_lot::Mutex;

use crate::Reason;

#[derive(Default)]
struct Block {
    reasons: [AtomicU64; Reason::COUNT],
    flows_not_recorded: AtomicU64,
    /// Gauges, set by the worker now and then ([`WorkerCounters::set_held`]).
    flows_held: AtomicU64,
    fragments_held: AtomicU64,
}

/// One worker's counters. Written by its worker only.
#[derive(Default)]
pub struct WorkerCounters {
    counts: CachePadded<Block>,
}

/// A relaxed increment by the only writer.
#[inline]
fn bump(c: &AtomicU64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
}

impl WorkerCounters {
    /// Counts one decision. Must be called from the owning worker only (a
    /// second writer would lose counts, never corrupt memory).
    #[inline]
    pub fn bump(&self, reason: Reason) {
        if let Some(c) = self.counts.reasons.get(reason.index()) {
            bump(c);
        }
    }

    /// Counts one new flow the flow table could not record (every slot it
    /// could take held a confirmed flow). Owning worker only, as [`Self::bump`].
    #[inline]
    pub fn bump_not_recorded(&self) {
        bump(&self.counts.flows_not_recorded);
    }

    /// Sets the gauges of live flows and fragment memories this worker holds
    /// (the worker scans its tables now and then, off the per-packet path;
    /// zero once the worker has ended). Owning worker only.
    pub fn set_held(&self, flows: u64, fragments: u64) {
        self.counts.flows_held.store(flows, Ordering::Relaxed);
        self.counts
            .fragments_held
            .store(fragments, Ordering::Relaxed);
    }

    /// This worker's counts alone.
    pub fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        self.add_to(&mut totals);
        totals
    }

    fn add_to(&self, totals: &mut Totals) {
        for (t, c) in totals.reasons.iter_mut().zip(self.counts.reasons.iter()) {
            *t += c.load(Ordering::Relaxed);
        }
        totals.flows_not_recorded += self.counts.flows_not_recorded.load(Ordering::Relaxed);
        totals.flows_held += self.counts.flows_held.load(Ordering::Relaxed);
        totals.fragments_held += self.counts.fragments_held.load(Ordering::Relaxed);
    }
}

/// The registry of every worker's counters.
#[derive(Default)]
pub struct Counters {
    workers: Mutex<Vec<Arc<WorkerCounters>>>,
}

impl Counters {
    /// A new block for a new worker (takes a lock: call at worker start).
    pub fn register(&self) -> Arc<WorkerCounters> {
        let block = Arc::new(WorkerCounters::default());
        self.workers.lock().push(Arc::clone(&block));
        block
    }

    /// The sum over all workers.
    pub fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        for w in self.workers.lock().iter() {
            w.add_to(&mut totals);
        }
        totals
    }
}

/// Counts per reason, the flows that could not be recorded, and the gauges
/// of live flows and fragment memories held when last published.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    reasons: [u64; Reason::COUNT],
    flows_not_recorded: u64,
    flows_held: u64,
    fragments_held: u64,
}

impl Totals {
    /// The count for one reason.
    pub fn get(&self, reason: Reason) -> u64 {
        self.reasons.get(reason.index()).copied().unwrap_or(0)
    }

    /// Adds one to a reason (for single-threaded tallies).
    pub fn add(&mut self, reason: Reason) {
        if let Some(c) = self.reasons.get_mut(reason.index()) {
            *c += 1;
        }
    }

    /// Adds every count of `other` (a worker's earlier blocks, summed).
    pub fn add_all(&mut self, other: &Totals) {
        for (t, o) in self.reasons.iter_mut().zip(other.reasons.iter()) {
            *t = t.wrapping_add(*o);
        }
        self.flows_not_recorded = self
            .flows_not_recorded
            .wrapping_add(other.flows_not_recorded);
        self.flows_held = self.flows_held.wrapping_add(other.flows_held);
        self.fragments_held = self.fragments_held.wrapping_add(other.fragments_held);
    }

    /// Live flows held by the workers when they last published it (about
    /// once a second while running; 0 for an ended worker and in replay).
    pub fn flows_held(&self) -> u64 {
        self.flows_held
    }

    /// Live first-fragment memories held, published as [`Totals::flows_held`].
    pub fn fragments_held(&self) -> u64 {
        self.fragments_held
    }

    /// New flows the flow table could not record because every slot they
    /// could take held a confirmed flow (their packets were still accepted).
    pub fn flows_not_recorded(&self) -> u64 {
        self.flows_not_recorded
    }

    /// All packets.
    pub fn packets(&self) -> u64 {
        self.reasons.iter().sum()
    }

    /// Packets accepted.
    pub fn accepted(&self) -> u64 {
        self.by_verdict(crate::Verdict::Accept)
    }

    /// Packets dropped.
    pub fn dropped(&self) -> u64 {
        self.by_verdict(crate::Verdict::Drop)
    }

    fn by_verdict(&self, v: crate::Verdict) -> u64 {
        Reason::ALL
            .iter()
            .filter(|r| r.verdict() == v)
            .map(|r| self.get(*r))
            .sum()
    }

    /// `(reason, count)` for every reason, in SPEC order.
    pub fn iter(&self) -> impl Iterator<Item = (Reason, u64)> + '_ {
        Reason::ALL.iter().map(|r| (*r, self.get(*r)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_over_workers() {
        let c = Counters::default();
        let a = c.register();
        let b = c.register();
        a.bump(Reason::OpenPort);
        a.bump(Reason::OpenPort);
        b.bump(Reason::OpenPort);
        b.bump(Reason::Malformed);
        b.bump_not_recorded();
        let t = c.totals();
        assert_eq!(t.flows_not_recorded(), 1);
        assert_eq!(a.totals().flows_not_recorded(), 0);
        assert_eq!(a.totals().get(Reason::OpenPort), 2);
        let mut sum = a.totals();
        sum.add_all(&b.totals());
        assert_eq!(sum, t, "adding up the blocks gives the totals");
        assert_eq!(t.get(Reason::OpenPort), 3);
        assert_eq!(t.get(Reason::Malformed), 1);
        assert_eq!((t.packets(), t.accepted(), t.dropped()), (4, 3, 1));
    }

    #[test]
    fn blocks_do_not_share_cache_lines() {
        assert!(std::mem::align_of::<WorkerCounters>() >= 64);
    }
}
