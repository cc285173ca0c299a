//! The kernel's queue drops over the daemon's whole run, per queue: the
//! counters of `v6fw_capture::nfqueue::drops` (Linux) start at 0 whenever a queue
//! is bound, so a restarted worker's queue is added on, not taken for a
//! decrease.

use std::collections::BTreeMap;

/// One queue's drops since the daemon started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Dropped {
    /// Queue full (`--queue-len`).
    pub queue_dropped: u64,
    /// Netlink socket buffer full.
    pub user_dropped: u64,
}

impl Dropped {
    /// Both kinds.
    pub fn total(&self) -> u64 {
        self.queue_dropped.saturating_add(self.user_dropped)
    }
}

/// Accumulates the kernel's per-queue counters (Windows has none: it
/// stays at zero there).
#[derive(Debug, Default)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub struct KernelDrops {
    first: u16,
    last: u16,
    seen: BTreeMap<u16, Dropped>,
    total: BTreeMap<u16, Dropped>,
    warned_at: u64,
}

impl KernelDrops {
    /// Counts the queues `first..=last`.
    pub fn new(first: u16, last: u16) -> Self {
        KernelDrops {
            first,
            last,
            total: (first..=last).map(|q| (q, Dropped::default())).collect(),
            ..Default::default()
        }
    }

    /// Takes one reading (`(queue, queue_dropped, user_dropped)` per bound
    /// queue); a queue missing from it was unbound, and starts from 0 again.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub fn update(&mut self, rows: impl IntoIterator<Item = (u16, u64, u64)>) {
        let mut now = BTreeMap::new();
        for (q, qd, ud) in rows {
            if (self.first..=self.last).contains(&q) {
                now.insert(
                    q,
                    Dropped {
                        queue_dropped: qd,
                        user_dropped: ud,
                    },
                );
            }
        }
        for (q, cur) in &now {
            let before = self.seen.get(q).copied().unwrap_or_default();
            let grow = |c: u64, b: u64| if c >= b { c - b } else { c };
            let t = self.total.entry(*q).or_default();
            t.queue_dropped += grow(cur.queue_dropped, before.queue_dropped);
            t.user_dropped += grow(cur.user_dropped, before.user_dropped);
        }
        self.seen = now;
    }

    /// Takes a reading from the kernel (Linux; elsewhere nothing).
    pub fn read(&mut self) {
        #[cfg(target_os = "linux")]
        match v6fw_capture::nfqueue::drops::read() {
            Ok(rows) => self.update(
                rows.iter()
                    .map(|r| (r.queue, r.queue_dropped, r.user_dropped)),
            ),
            Err(e) => tracing::debug!("cannot read the kernel's queue counters: {e}"),
        }
    }

    /// Per queue, since the start.
    pub fn per_queue(&self) -> &BTreeMap<u16, Dropped> {
        &self.total
    }

    /// Summed over the queues.
    pub fn sum(&self) -> Dropped {
        self.total
            .values()
            .fold(Dropped::default(), |a, d| Dropped {
                queue_dropped: a.queue_dropped + d.queue_dropped,
                user_dropped: a.user_dropped + d.user_dropped,
            })
    }

    /// The drops since the last call that returned some (for the warning).
    pub fn new_since_warned(&mut self) -> Option<u64> {
        let total = self.sum().total();
        (total > self.warned_at).then(|| {
            let grew = total - self.warned_at;
            self.warned_at = total;
            grew
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accumulates_across_rebinds_and_ignores_other_queues() {
        let mut k = KernelDrops::new(0, 1);
        k.update([(0, 10, 1), (1, 0, 0), (7, 999, 999)]);
        assert_eq!(k.new_since_warned(), Some(11));
        assert_eq!(k.new_since_warned(), None);
        k.update([(0, 15, 1), (1, 2, 0)]);
        // Queue 0 was unbound (a worker restart) and bound again from 0.
        k.update([(1, 2, 0)]);
        k.update([(0, 3, 0), (1, 2, 0)]);
        let q0 = k.per_queue().get(&0).copied().unwrap();
        assert_eq!((q0.queue_dropped, q0.user_dropped), (18, 1));
        assert_eq!(k.sum().total(), 21);
        assert_eq!(k.new_since_warned(), Some(10));
    }
}
