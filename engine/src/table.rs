//! The port table: immutable snapshots published with one atomic swap.
//!
//! Writers are serialized by a [`parking_lot::Mutex`]; each change edits a copy
//! of the [`Policy`], builds the next [`Snapshot`] (per connection one 65,536-bit
//! set per protocol for its own pairs and one for the global pairs in effect),
//! publishes it with a single swap of a [`crossbeam_epoch::Atomic`] and retires
//! the old one with `defer_destroy`. Readers never lock and never wait: they pin
//! the epoch once per batch ([`PortTable::pin`]) and decide the whole batch on
//! the snapshot they loaded. A snapshot is freed only after every guard that
//! could have seen it is gone.
//!
//! The API side reads [`PortTable::policy`]: an `Arc` of the exact policy the
//! current snapshot was built from, which stays valid and unchanged however
//! long the caller holds it, without holding the epoch open.

use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crossbeam_epoch::{self as epoch, Atomic, Guard, Owned};
use parking_lot::Mutex;

use crate::policy::{IcmpErrors, IcmpPolicy, Policy, Protocol};

/// Words in a 65,536-bit set.
const WORDS: usize = 65_536 / 64;

/// A set of ports for one protocol: one bit per port, 8 KiB.
#[derive(Clone)]
pub struct PortBits(Box<[u64; WORDS]>);

impl PortBits {
    fn new() -> Self {
        PortBits(Box::new([0; WORDS]))
    }

    #[allow(clippy::indexing_slicing)] // port >> 6 < 1,024 = WORDS: in bounds
    fn insert(&mut self, port: u16) {
        let word = &mut self.0[usize::from(port >> 6)];
        *word |= 1 << (port & 63);
    }

    /// Whether `port` is in the set: an index and a bit test.
    #[inline]
    #[allow(clippy::indexing_slicing)] // port >> 6 < 1,024 = WORDS: in bounds
    pub fn contains(&self, port: u16) -> bool {
        (self.0[usize::from(port >> 6)] >> (port & 63)) & 1 == 1
    }
}

/// One protocol-indexed pair of [`PortBits`].
#[derive(Clone)]
pub struct PortSet {
    tcp: PortBits,
    udp: PortBits,
}

impl PortSet {
    fn new() -> Self {
        PortSet {
            tcp: PortBits::new(),
            udp: PortBits::new(),
        }
    }

    fn insert(&mut self, proto: Protocol, port: u16) {
        match proto {
            Protocol::Tcp => self.tcp.insert(port),
            Protocol::Udp => self.udp.insert(port),
        }
    }

    /// Whether `(port, proto)` is in the set; `proto` is an IP protocol number
    /// (anything but 6 and 17 is never in it).
    #[inline]
    pub fn contains(&self, proto: u8, port: u16) -> bool {
        match proto {
            6 => self.tcp.contains(port),
            17 => self.udp.contains(port),
            _ => false,
        }
    }
}

/// The hot-path view of one connection.
#[derive(Clone)]
pub struct ConnTables {
    /// Interface index the packets of this connection arrive on.
    pub if_index: u32,
    /// Firewall on.
    pub enabled: bool,
    /// The connection's own pairs.
    pub own: PortSet,
    /// Global pairs in effect here (globals − ignored).
    pub global: PortSet,
}

/// An immutable, published state of the whole policy.
pub struct Snapshot {
    generation: u64,
    policy: Arc<Policy>,
    conns: Box<[ConnTables]>,
    fallback: ConnTables,
    icmp: IcmpPolicy,
    icmp_errors: IcmpErrors,
    state: bool,
}

impl Snapshot {
    fn build(policy: Arc<Policy>, generation: u64) -> Snapshot {
        let mut global = PortSet::new();
        for pair in policy.globals.keys() {
            global.insert(pair.protocol(), pair.port());
        }
        let conns = policy
            .connections
            .values()
            .map(|c| {
                let mut own = PortSet::new();
                for pair in c.open.keys() {
                    own.insert(pair.protocol(), pair.port());
                }
                let mut eff = PortSet::new();
                for pair in c.effective_globals(&policy.globals) {
                    eff.insert(pair.protocol(), pair.port());
                }
                ConnTables {
                    if_index: c.if_index,
                    enabled: c.enabled,
                    own,
                    global: eff,
                }
            })
            .collect();
        Snapshot {
            generation,
            fallback: ConnTables {
                if_index: 0,
                enabled: true,
                own: PortSet::new(),
                global,
            },
            conns,
            icmp: policy.icmp.clone(),
            icmp_errors: policy.icmp_errors,
            state: policy.state.enabled,
            policy,
        }
    }

    /// How many changes were published before this snapshot (0 for the first).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The policy this snapshot was built from.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// The connection for an interface index. Packets on an interface no
    /// connection names are judged by the global pairs alone, firewall on.
    #[inline]
    pub fn connection(&self, if_index: u32) -> &ConnTables {
        self.conns
            .iter()
            .find(|c| c.if_index == if_index)
            .unwrap_or(&self.fallback)
    }

    /// The ICMPv6 policy.
    #[inline]
    pub fn icmp(&self) -> &IcmpPolicy {
        &self.icmp
    }

    /// How inbound ICMPv6 errors are judged.
    #[inline]
    pub fn icmp_errors(&self) -> IcmpErrors {
        self.icmp_errors
    }

    /// Whether outbound flows are tracked.
    #[inline]
    pub fn state(&self) -> bool {
        self.state
    }
}

/// The writer's side: the latest policy and how many changes it has seen.
struct Writer {
    policy: Arc<Policy>,
    generation: u64,
}

/// The lock-free, epoch-published port table.
pub struct PortTable {
    current: Atomic<Snapshot>,
    writer: Mutex<Writer>,
}

impl PortTable {
    /// A table publishing `policy` as generation 0.
    pub fn new(policy: Policy) -> Self {
        let policy = Arc::new(policy);
        PortTable {
            current: Atomic::new(Snapshot::build(Arc::clone(&policy), 0)),
            writer: Mutex::new(Writer {
                policy,
                generation: 0,
            }),
        }
    }

    /// Pins the epoch and loads the current snapshot, for one batch.
    ///
    /// Pinning costs a few nanoseconds: pin once per batch, not per packet.
    /// The returned value is not `Send`; drop it between batches so retired
    /// snapshots can be reclaimed.
    pub fn pin(&self) -> Pinned<'_> {
        let guard = epoch::pin();
        let snap = self.current.load(Ordering::Acquire, &guard).as_raw();
        Pinned {
            guard,
            snap,
            _table: PhantomData,
        }
    }

    /// The policy of the current snapshot; valid and unchanged for as long as
    /// it is held (it is never edited in place).
    pub fn policy(&self) -> Arc<Policy> {
        Arc::clone(self.pin().policy())
    }

    /// Applies `change` to a copy of the policy and publishes the result if it
    /// differs. Writers are serialized; readers are never blocked. Returns
    /// what `change` returned; on `Err` nothing is published.
    pub fn update<T, E>(&self, change: impl FnOnce(&mut Policy) -> Result<T, E>) -> Result<T, E> {
        let mut writer = self.writer.lock();
        let mut next = Policy::clone(&writer.policy);
        let out = change(&mut next)?;
        if next != *writer.policy {
            writer.generation += 1;
            let next = Arc::new(next);
            let snap = Owned::new(Snapshot::build(Arc::clone(&next), writer.generation));
            writer.policy = next;
            let guard = epoch::pin();
            let old = self.current.swap(snap, Ordering::AcqRel, &guard);
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

impl Drop for PortTable {
    fn drop(&mut self) {
        // SAFETY: `&mut self` proves no `Pinned` (which borrows the table) is
        // alive, so no reader can hold the current snapshot; taking it out with
        // the unprotected guard and dropping it is the sole remaining access.
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

/// A pinned epoch and the snapshot loaded under it.
pub struct Pinned<'t> {
    guard: Guard,
    snap: *const Snapshot,
    _table: PhantomData<&'t PortTable>,
}

impl Pinned<'_> {
    /// The guard, for callers that want to `repin` between batches.
    pub fn guard(&self) -> &Guard {
        &self.guard
    }
}

impl Deref for Pinned<'_> {
    type Target = Snapshot;

    #[inline]
    fn deref(&self) -> &Snapshot {
        // SAFETY: `snap` was loaded from the table's `Atomic` while `guard` was
        // pinned, and `guard` lives as long as `self`; a snapshot unlinked after
        // that is destroyed only once this guard is dropped, so the pointee is
        // alive. It is non-null: the table only holds null inside `Drop`, which
        // cannot run while this borrow of the table exists.
        unsafe { &*self.snap }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Connection, PolicyError, PortPair};

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
        // No change: same generation.
        t.update(|p| Ok::<_, PolicyError>(p.open_global(pair(80, Protocol::Tcp), "x")))
            .unwrap();
        assert_eq!(t.pin().generation(), 0);
        // A failed change: nothing published, even half-applied.
        let err = t.update(|p| {
            p.open_global(pair(81, Protocol::Tcp), "x");
            p.connection_mut("nope").map(|_| ())
        });
        assert!(err.is_err());
        assert_eq!(t.pin().generation(), 0);
        assert!(!t.policy().is_global_open(pair(81, Protocol::Tcp)));
        // A change: one new generation with the new bits.
        t.update(|p| {
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
        let old = t.pin();
        let held = t.policy();
        for port in 1..=4 {
            t.update(|p| Ok::<_, PolicyError>(p.open_global(pair(port, Protocol::Udp), "u")))
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
        let pinned_first = t.pin().generation();
        // Three different policies, then one equal to the last.
        for enabled in [false, true, false, false] {
            let mut p = Policy::default();
            p.state.enabled = enabled;
            t.replace(p);
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
