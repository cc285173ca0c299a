//! The port table: immutable snapshots published with one atomic swap.
//!
//! Writers are serialized by a mutex; each change edits a copy of the
//! [`Policy`] (a few pointers: its connections are shared between versions,
//! [`crate::policy::Connections`]), builds the next [`Snapshot`] (per connection a 65,536-bit set
//! per protocol for its own pairs and one for the global pairs in effect,
//! equal sets shared: [`snapshot`]), publishes it with a single swap of a
//! [`crossbeam_epoch::Atomic`] and retires the old one with `defer_destroy`.
//! Readers never lock and never wait: they pin the epoch once per batch
//! ([`PortTable::pin`]) and decide the whole batch on the snapshot they
//! loaded, borrowed from the [`Pinned`] guard so it cannot outlive the pin.
//! A snapshot is freed only after every guard that could have seen it is gone.
//!
//! There is one write path: only the table's one [`Publisher`], handed out
//! once by [`PortTable::take_publisher`], can change it. The API's manager
//! holds it, so every change is stored first and then published once.
//!
//! The API side reads [`PortTable::policy`]: an `Arc` of the exact policy the
//! current snapshot was built from, which stays valid and unchanged however
//! long the caller holds it, without holding the epoch open.

mod sets;
pub mod snapshot;

use std::ops::Deref;

use crate::policy::Policy;
use crate::sync::epoch::{self, Atomic, Guard, Owned};
use crate::sync::{Arc, AtomicBool, Mutex, Ordering};

pub use sets::{Admit, PortBits, PortSet};
pub(crate) use snapshot::SlotRef;
pub use snapshot::{ConnTables, Snapshot};

/// The writer's side: the latest policy, how many changes it has seen, and
/// the port sets of its snapshot for the next build to reuse.
struct Writer {
    policy: std::sync::Arc<Policy>,
    generation: u64,
    sets: snapshot::Sets,
}

/// What the table and its publisher share.
struct Inner {
    current: Atomic<Snapshot>,
    writer: Mutex<Writer>,
    publisher_taken: AtomicBool,
}

/// The lock-free, epoch-published port table: the readers' handle.
pub struct PortTable {
    inner: Arc<Inner>,
}

impl PortTable {
    /// A table publishing `policy` as generation 0.
    pub fn new(policy: Policy) -> Self {
        let policy = std::sync::Arc::new(policy);
        let (snap, sets) = Snapshot::build(std::sync::Arc::clone(&policy), 0, None);
        PortTable {
            inner: Arc::new(Inner {
                current: Atomic::new(snap),
                writer: Mutex::new(Writer {
                    policy,
                    generation: 0,
                    sets,
                }),
                publisher_taken: AtomicBool::new(false),
            }),
        }
    }

    /// A table publishing `policy` and its one [`Publisher`], already taken.
    pub fn with_publisher(policy: Policy) -> (Self, Publisher) {
        let table = Self::new(policy);
        table.inner.publisher_taken.store(true, Ordering::Release);
        let publisher = Publisher {
            table: PortTable {
                inner: Arc::clone(&table.inner),
            },
        };
        (table, publisher)
    }

    /// The table's one [`Publisher`]: `Some` on the first call, `None` on
    /// every later one, so whoever takes it (the API's manager, or a test's
    /// harness) is the only writer.
    pub fn take_publisher(&self) -> Option<Publisher> {
        let taken = self.inner.publisher_taken.swap(true, Ordering::AcqRel);
        (!taken).then(|| Publisher {
            table: PortTable {
                inner: Arc::clone(&self.inner),
            },
        })
    }

    /// Pins the epoch and loads the current snapshot, for one batch.
    ///
    /// Pinning costs a few nanoseconds: pin once per batch, not per packet.
    /// The returned value is not `Send`; drop it between batches so retired
    /// snapshots can be reclaimed.
    pub fn pin(&self) -> Pinned<'_> {
        let guard = epoch::pin();
        let shared = self.inner.current.load(Ordering::Acquire, &guard);
        // SAFETY: `shared` was loaded under `guard`, so the snapshot it points
        // to is freed (by `defer_destroy`) only after `guard` is dropped. The
        // reference is stored beside `guard` in `Pinned`, whose field is
        // private and lent out only for a borrow of the `Pinned` itself, so
        // no use of it outlives the guard (the `'_` it is stored with is only
        // the table's borrow). It is non-null: the table holds null only
        // inside `Drop for Inner`, which cannot run while this `&self` exists.
        let snap = unsafe { &*shared.as_raw() };
        Pinned { snap, guard }
    }

    /// The policy of the current snapshot; valid and unchanged for as long as
    /// it is held (it is never edited in place).
    pub fn policy(&self) -> std::sync::Arc<Policy> {
        std::sync::Arc::clone(self.pin().snapshot().policy())
    }
}

/// The one capability to change a [`PortTable`] ([`PortTable::take_publisher`]).
/// Not `Clone`: whoever holds it owns the rule "store, then one publish".
pub struct Publisher {
    table: PortTable,
}

impl Publisher {
    /// The table this publisher writes, for reading.
    pub fn table(&self) -> &PortTable {
        &self.table
    }

    /// Applies `change` to a copy of the policy and publishes the result if it
    /// differs. Writers are serialized; readers are never blocked. Returns
    /// what `change` returned; on `Err` nothing is published.
    pub fn update<T, E>(&self, change: impl FnOnce(&mut Policy) -> Result<T, E>) -> Result<T, E> {
        let inner = &self.table.inner;
        let mut writer = inner.writer.lock();
        let mut next = Policy::clone(&writer.policy);
        let out = change(&mut next)?;
        if next != *writer.policy {
            writer.generation += 1;
            let next = std::sync::Arc::new(next);
            let (snap, sets) = Snapshot::build(
                std::sync::Arc::clone(&next),
                writer.generation,
                Some((&writer.policy, &writer.sets)),
            );
            writer.policy = next;
            writer.sets = sets;
            let guard = epoch::pin();
            let old = inner
                .current
                .swap(Owned::new(snap), Ordering::AcqRel, &guard);
            // SAFETY: `old` was just unlinked by the swap, so no new reader can
            // load it; readers that loaded it hold a guard pinned before this
            // point, and `defer_destroy` frees it only after all such guards
            // are dropped. It is never null: the table always holds a snapshot.
            unsafe { guard.defer_destroy(old) };
            guard.flush();
        }
        Ok(out)
    }

    /// Replaces the whole policy (e.g. after reloading it from disk).
    pub fn replace(&self, policy: Policy) {
        let _ = self.update(|p| {
            *p = policy;
            Ok::<(), std::convert::Infallible>(())
        });
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // SAFETY: `&mut self` proves no `PortTable` or `Publisher` is left, so
        // no `Pinned` (which borrows one) is alive and no reader can hold the
        // current snapshot; taking it out with the unprotected guard and
        // dropping it is the sole remaining access.
        unsafe {
            let guard = epoch::unprotected();
            let cur = self
                .current
                .swap(epoch::Shared::null(), Ordering::AcqRel, guard);
            if !cur.is_null() {
                drop(cur.into_owned());
            }
        }
    }
}

/// A pinned epoch and the snapshot loaded under it. The snapshot is lent out
/// only for a borrow of this value, so the type system keeps every use of it
/// inside the pin.
pub struct Pinned<'t> {
    /// Valid while `guard` is pinned; never handed out for longer than a
    /// borrow of `self`.
    snap: &'t Snapshot,
    guard: Guard,
}

impl Pinned<'_> {
    /// The snapshot loaded when this was pinned, for as long as it is borrowed.
    #[inline]
    pub fn snapshot(&self) -> &Snapshot {
        self.snap.witness();
        self.snap
    }

    /// The guard, for callers that want to `repin` between batches.
    pub fn guard(&self) -> &Guard {
        &self.guard
    }
}

impl Deref for Pinned<'_> {
    type Target = Snapshot;

    #[inline]
    fn deref(&self) -> &Snapshot {
        self.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Connection, PolicyError};
    use crate::policy::{PortPair, Protocol};
    use std::sync::Arc;

    fn pair(port: u16, proto: Protocol) -> PortPair {
        PortPair::new(port, proto).unwrap()
    }

    fn table() -> PortTable {
        let mut p = Policy::default();
        p.open_global(pair(80, Protocol::Tcp), "http");
        let mut c = Connection::new("eth0", "Ethernet", 2);
        c.open_port(pair(22, Protocol::Tcp), "ssh");
        c.ignore_global(pair(80, Protocol::Tcp));
        p.add_connection(c).unwrap();
        PortTable::new(p)
    }

    #[test]
    fn snapshot_bits_follow_the_policy() {
        let t = table();
        let s = t.pin();
        assert_eq!(s.generation(), 0);
        let c = s.connection(2);
        assert!(c.enabled);
        assert!(c.own.contains(6, 22));
        assert!(!c.own.contains(17, 22));
        assert!(!c.own.contains(1, 22), "only TCP and UDP are ever in a set");
        assert!(!c.global.contains(6, 80), "ignored here");
        let f = s.connection(7);
        assert!(f.enabled, "unknown interfaces: firewall on");
        assert!(!f.own.contains(6, 22));
        assert!(f.global.contains(6, 80), "unknown interfaces: globals");
        assert!(s.state());
    }

    #[test]
    fn only_real_changes_are_published() {
        let t = table();
        let w = t.take_publisher().unwrap();
        // No change: same generation.
        w.update(|p| Ok::<_, PolicyError>(p.open_global(pair(80, Protocol::Tcp), "x")))
            .unwrap();
        assert_eq!(t.pin().generation(), 0);
        // A failed change: nothing published, even half-applied.
        let err = w.update(|p| {
            p.open_global(pair(81, Protocol::Tcp), "x");
            p.connection_mut("nope").map(|_| ())
        });
        assert!(err.is_err());
        assert_eq!(t.pin().generation(), 0);
        assert!(!t.policy().is_global_open(pair(81, Protocol::Tcp)));
        // A change: one new generation with the new bits.
        w.update(|p| {
            p.connection_mut("eth0")
                .map(|c| c.observe_global(pair(80, Protocol::Tcp)))
        })
        .unwrap();
        let s = t.pin();
        assert_eq!(s.generation(), 1);
        assert!(s.connection(2).global.contains(6, 80));
        assert!(Arc::ptr_eq(s.policy(), &t.policy()));
    }

    #[test]
    fn pinned_snapshots_outlive_publication() {
        let t = table();
        let w = t.take_publisher().unwrap();
        let old = t.pin();
        let held = t.policy();
        for port in 1..=4 {
            w.update(|p| Ok::<_, PolicyError>(p.open_global(pair(port, Protocol::Udp), "u")))
                .unwrap();
            // Pin and unpin in between so the collector may try to reclaim.
            drop(t.pin());
        }
        assert_eq!(old.generation(), 0);
        assert!(!old.connection(2).global.contains(17, 1));
        assert!(held.globals.len() == 1);
        drop(old);
        let new = t.pin();
        assert_eq!(new.generation(), 4);
        assert!(new.connection(2).global.contains(17, 4));
    }

    #[test]
    fn replace_and_drop_with_retired_snapshots() {
        let t = table();
        let w = t.take_publisher().unwrap();
        let pinned_first = t.pin().generation();
        // Three different policies, then one equal to the last.
        for enabled in [false, true, false, false] {
            let mut p = Policy::default();
            p.state.enabled = enabled;
            w.replace(p);
        }
        let s = t.pin();
        assert_eq!((pinned_first, s.generation()), (0, 3));
        assert!(!s.state());
        assert!(s.policy().connections.is_empty());
        drop(s);
        // Dropping the table frees the current snapshot; retired ones go
        // through the collector.
        drop(t);
    }
}
