//! One published state: per connection its own and global port sets, found
//! by interface index in constant time, with equal sets shared.
//!
//! Most connections of a container host have no own pairs and ignore no
//! global pair, so they all point at the same two sets: the empty set and
//! the set of all globals. A connection that ignores globals shares its set
//! with every connection ignoring the same globals (a *group*).
//!
//! What depends on the connections alone (their order, interface index,
//! switch, own set and group: the `Layout`) is built only when a
//! connection changed, and shared, behind one `Arc`, by every snapshot
//! until then; what depends on the global pairs is one set per group. So a
//! change of the global pairs (the common publish) rebuilds a set per group
//! and copies one pointer, whatever the number of interfaces, and a change
//! of one connection reuses every other connection's own set (`Sets`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use foldhash::fast::FixedState;

use super::sets::PortSet;
use crate::policy::{Connection, IcmpErrors, IcmpPolicy, Opening, Policy, PortPair};
use crate::sync::Witness;

/// The hot-path view of one connection, borrowed from its snapshot.
#[derive(Clone, Copy)]
pub struct ConnTables<'s> {
    /// Interface index the packets of this connection arrive on (0 for the
    /// unknown-interface fallback).
    pub if_index: u32,
    /// Firewall on.
    pub enabled: bool,
    /// The connection's own pairs (shared by every connection with none).
    pub own: &'s PortSet,
    /// Global pairs in effect here (globals - ignored; shared by every
    /// connection ignoring the same pairs).
    pub global: &'s PortSet,
}

/// One connection as the layout keeps it.
struct Slot {
    if_index: u32,
    enabled: bool,
    own: Arc<PortSet>,
    /// Its group: the index of its global set in [`Snapshot::globals`].
    group: u32,
}

/// What a snapshot knows of the connections that does not depend on the
/// global pairs: built when a connection changes, shared until then (each
/// part behind an `Arc` held inline, so the packet path reads a slot as it
/// would a `Box`'s, with no extra pointer to follow).
#[derive(Clone)]
struct Layout {
    /// The connections, in `policy.connections` order.
    slots: Arc<[Slot]>,
    index: ConnIndex,
    /// Each group's ignored pairs (sorted); group 0 ignores none.
    groups: Arc<[Box<[PortPair]>]>,
}

impl Layout {
    /// Whether `other` is this very layout (shared, not rebuilt).
    fn same_as(&self, other: &Layout) -> bool {
        Arc::ptr_eq(&self.slots, &other.slots)
    }
}

/// No connection at this slot.
const NONE: u32 = u32::MAX;

/// Interface index → position in `conns`: a direct table for the indices up
/// to a bound that grows with the number of connections (Linux hands out
/// small, dense indices), a hash map for the rare larger ones. The first
/// connection in policy order wins a shared index, as a linear search would.
#[derive(Clone)]
struct ConnIndex {
    near: Arc<[u32]>,
    far: Arc<HashMap<u32, u32, FixedState>>,
}

impl ConnIndex {
    fn new(conns: &[Slot]) -> Self {
        let bound = conns.len().saturating_mul(4).saturating_add(1024);
        let slot = |i: u32| usize::try_from(i).ok().filter(|&s| s < bound);
        let len = conns
            .iter()
            .filter_map(|c| slot(c.if_index))
            .max()
            .map_or(0, |m| m + 1);
        let mut near = vec![NONE; len];
        let mut far = HashMap::with_hasher(FixedState::with_seed(1));
        for (pos, c) in conns.iter().enumerate() {
            let pos = u32::try_from(pos).unwrap_or(NONE);
            match slot(c.if_index).and_then(|s| near.get_mut(s)) {
                Some(s) if *s == NONE => *s = pos,
                Some(_) => {}
                None => {
                    far.entry(c.if_index).or_insert(pos);
                }
            }
        }
        ConnIndex {
            near: near.into(),
            far: Arc::new(far),
        }
    }

    #[inline]
    fn get(&self, if_index: u32) -> u32 {
        match usize::try_from(if_index)
            .ok()
            .and_then(|i| self.near.get(i))
        {
            Some(&pos) => pos,
            None => self.get_far(if_index),
        }
    }

    #[inline(never)] // interface indices past the direct table: rare
    fn get_far(&self, if_index: u32) -> u32 {
        if self.far.is_empty() {
            return NONE;
        }
        self.far.get(&if_index).copied().unwrap_or(NONE)
    }
}

/// What the last build made, kept by the writer so the next build reuses
/// what did not change.
pub(super) struct Sets {
    /// The empty set: the own pairs of every connection with none.
    empty: Arc<PortSet>,
    layout: Layout,
    /// One global set per group of `layout`.
    globals: Box<[Arc<PortSet>]>,
}

/// Whether two pair maps hold the same pairs with the same scopes (names
/// are not in the bitsets).
fn same_pairs(a: &BTreeMap<PortPair, Opening>, b: &BTreeMap<PortPair, Opening>) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((p, o), (q, r))| p == q && o.from == r.from)
}

fn set_of(pairs: &BTreeMap<PortPair, Opening>) -> Arc<PortSet> {
    Arc::new(PortSet::of(pairs.iter().map(|(p, o)| (*p, &o.from))))
}

/// The global set of a group ignoring `ignored` (sorted).
fn global_set(globals: &BTreeMap<PortPair, Opening>, ignored: &[PortPair]) -> Arc<PortSet> {
    Arc::new(PortSet::of(
        globals
            .iter()
            .filter(|(p, _)| ignored.binary_search(p).is_err())
            .map(|(p, o)| (*p, &o.from)),
    ))
}

/// An immutable, published state of the whole policy.
pub struct Snapshot {
    generation: u64,
    policy: Arc<Policy>,
    layout: Layout,
    /// One set per group of `layout`; the first is all the globals.
    globals: Box<[Arc<PortSet>]>,
    /// The unknown interface's own set (empty) and global set (all).
    empty: Arc<PortSet>,
    all_globals: Arc<PortSet>,
    icmp: IcmpPolicy,
    icmp_errors: IcmpErrors,
    state: bool,
    witness: Witness,
}

impl Layout {
    /// The layout of `policy`'s connections, reusing the own sets of
    /// `prev` (built from `prev_policy`) where the pairs are the same.
    fn build(policy: &Policy, empty: &Arc<PortSet>, prev: Option<(&Policy, &Layout)>) -> Layout {
        // The previous connections in key order, beside their own sets, to
        // walk in step with the new ones.
        let mut before = prev
            .map(|(p, l)| p.connections.shared().zip(l.slots.iter()))
            .into_iter()
            .flatten()
            .peekable();
        let mut groups: Vec<Box<[PortPair]>> = vec![Box::default()];
        let mut group_of: HashMap<Box<[PortPair]>, u32, FixedState> =
            HashMap::with_hasher(FixedState::with_seed(2));
        let slots: Arc<[Slot]> = policy
            .connections
            .shared()
            .map(|(key, c)| {
                while before.next_if(|((k, _), _)| *k < key).is_some() {}
                // An unchanged connection is the same `Arc`: no comparing.
                let reused = before
                    .next_if(|((k, _), _)| *k == key)
                    .filter(|((_, old), _)| Arc::ptr_eq(old, c) || same_pairs(&old.open, &c.open))
                    .map(|(_, slot)| Arc::clone(&slot.own));
                let own = match reused {
                    _ if c.open.is_empty() => Arc::clone(empty),
                    Some(own) => own,
                    None => set_of(&c.open),
                };
                Slot {
                    if_index: c.if_index,
                    enabled: c.enabled,
                    own,
                    group: group(c, &mut groups, &mut group_of),
                }
            })
            .collect();
        Layout {
            index: ConnIndex::new(&slots),
            slots,
            groups: groups.into(),
        }
    }
}

/// The group of `c`: 0 if it ignores nothing, else the one of every
/// connection ignoring the same pairs (added to `groups` if new).
fn group(
    c: &Connection,
    groups: &mut Vec<Box<[PortPair]>>,
    group_of: &mut HashMap<Box<[PortPair]>, u32, FixedState>,
) -> u32 {
    if c.ignored.is_empty() {
        return 0;
    }
    // A `BTreeSet`: already sorted.
    let ignored: Box<[PortPair]> = c.ignored.iter().copied().collect();
    if let Some(&g) = group_of.get(&ignored) {
        return g;
    }
    let g = u32::try_from(groups.len()).unwrap_or(u32::MAX);
    groups.push(ignored.clone());
    group_of.insert(ignored, g);
    g
}

impl Snapshot {
    /// The snapshot of `policy`, reusing what `prev` (built from
    /// `prev_policy`) made where it still holds; returns what to reuse next
    /// time.
    pub(super) fn build(
        policy: Arc<Policy>,
        generation: u64,
        prev: Option<(&Policy, &Sets)>,
    ) -> (Snapshot, Sets) {
        let empty = prev.map_or_else(|| Arc::new(PortSet::new()), |(_, s)| Arc::clone(&s.empty));
        let layout = match prev {
            Some((p, s)) if p.connections.same_as(&policy.connections) => s.layout.clone(),
            _ => Layout::build(&policy, &empty, prev.map(|(p, s)| (p, &s.layout))),
        };
        let same_globals = prev.is_some_and(|(p, _)| same_pairs(&p.globals, &policy.globals));
        let globals: Box<[Arc<PortSet>]> = match prev {
            Some((_, s)) if same_globals && s.layout.same_as(&layout) => s.globals.clone(),
            _ => {
                // The previous groups' sets, to reuse when the globals are
                // the same and only the groups changed.
                let old: HashMap<&[PortPair], &Arc<PortSet>, FixedState> = prev
                    .filter(|_| same_globals)
                    .map(|(_, s)| s.layout.groups.iter().map(|g| &**g).zip(s.globals.iter()))
                    .into_iter()
                    .flatten()
                    .collect();
                layout
                    .groups
                    .iter()
                    .map(|g| match old.get(&**g) {
                        Some(set) => Arc::clone(set),
                        None => global_set(&policy.globals, g),
                    })
                    .collect()
            }
        };
        let all_globals = globals
            .first()
            .map_or_else(|| global_set(&policy.globals, &[]), Arc::clone);
        let snapshot = Snapshot {
            generation,
            layout: layout.clone(),
            globals: globals.clone(),
            empty: Arc::clone(&empty),
            all_globals,
            icmp: policy.icmp.clone(),
            icmp_errors: policy.icmp_errors,
            state: policy.state.enabled,
            policy,
            witness: Witness::new(),
        };
        let sets = Sets {
            empty,
            layout,
            globals,
        };
        (snapshot, sets)
    }

    /// How many changes were published before this snapshot (0 for the first).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The policy this snapshot was built from.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// The connection for an interface index, in constant time. Packets on
    /// an interface no connection names are judged by the global pairs
    /// alone, firewall on.
    #[inline]
    pub fn connection(&self, if_index: u32) -> ConnTables<'_> {
        self.slot(if_index).tables()
    }

    /// [`Snapshot::connection`] for the packet path, which reads the global
    /// set only when the connection's own set did not decide.
    #[inline]
    pub(crate) fn slot(&self, if_index: u32) -> SlotRef<'_> {
        let pos = self.layout.index.get(if_index);
        SlotRef {
            snap: self,
            slot: usize::try_from(pos)
                .ok()
                .and_then(|p| self.layout.slots.get(p)),
        }
    }

    /// How many distinct port sets (16 KiB each, plus scopes) this snapshot
    /// holds for its connections and the unknown-interface fallback: equal
    /// sets are shared, so this stays small however many connections see
    /// only the global pairs.
    pub fn distinct_sets(&self) -> usize {
        let views = self
            .layout
            .slots
            .iter()
            .map(|s| SlotRef {
                snap: self,
                slot: Some(s),
            })
            .chain([SlotRef {
                snap: self,
                slot: None,
            }])
            .map(SlotRef::tables);
        let mut seen: Vec<*const PortSet> = views
            .flat_map(|c| [std::ptr::from_ref(c.own), std::ptr::from_ref(c.global)])
            .collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len()
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

    /// Under loom, proves this access is ordered before the snapshot's free.
    #[inline(always)]
    pub(super) fn witness(&self) {
        self.witness.check();
    }
}

/// A connection's slot in a snapshot (`None`: the unknown interface).
#[derive(Clone, Copy)]
pub(crate) struct SlotRef<'s> {
    snap: &'s Snapshot,
    slot: Option<&'s Slot>,
}

impl<'s> SlotRef<'s> {
    /// Firewall on (always, for the unknown interface).
    #[inline]
    pub(crate) fn enabled(self) -> bool {
        self.slot.is_none_or(|s| s.enabled)
    }

    /// The own pairs (none for the unknown interface).
    #[inline]
    pub(crate) fn own(self) -> &'s PortSet {
        self.slot.map_or(&self.snap.empty, |s| &s.own)
    }

    /// The global pairs in effect (all of them for the unknown interface).
    #[inline]
    pub(crate) fn global(self) -> &'s PortSet {
        self.slot
            .and_then(|s| usize::try_from(s.group).ok())
            .and_then(|g| self.snap.globals.get(g))
            .unwrap_or(&self.snap.all_globals)
    }

    /// The public view.
    #[inline]
    fn tables(self) -> ConnTables<'s> {
        ConnTables {
            if_index: self.slot.map_or(0, |s| s.if_index),
            enabled: self.enabled(),
            own: self.own(),
            global: self.global(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Protocol;

    fn pair(port: u16) -> PortPair {
        PortPair::new(port, Protocol::Tcp).unwrap()
    }

    /// 50 connections, the last ten ignoring 443/tcp.
    fn host() -> Policy {
        let mut p = Policy::default();
        p.open_global(pair(443), "web");
        for i in 0..50u32 {
            let mut c = Connection::new(format!("veth{i:02}"), "veth", 2 + i);
            if i >= 40 {
                c.ignored.insert(pair(443));
            }
            p.add_connection(c).unwrap();
        }
        p
    }

    #[test]
    fn a_global_change_keeps_the_layout_and_rebuilds_a_set_per_group() {
        let p0 = Arc::new(host());
        let (s0, sets0) = Snapshot::build(Arc::clone(&p0), 0, None);
        let mut p1 = Policy::clone(&p0);
        p1.open_global(pair(22), "ssh");
        let (s1, sets1) = Snapshot::build(Arc::new(p1), 1, Some((&p0, &sets0)));
        // The connections did not change: the same layout, not a copy.
        assert!(s0.layout.same_as(&s1.layout));
        assert_eq!(
            s1.globals.len(),
            2,
            "two groups: ignoring nothing, ignoring 443"
        );
        assert!(!Arc::ptr_eq(&s0.globals[0], &s1.globals[0]));
        let plain = s1.connection(2);
        let ignoring = s1.connection(45);
        assert!(plain.global.contains(6, 22) && plain.global.contains(6, 443));
        assert!(ignoring.global.contains(6, 22) && !ignoring.global.contains(6, 443));
        assert!(
            !s0.connection(2).global.contains(6, 22),
            "the old snapshot is unchanged"
        );
        // A connection change rebuilds the layout, and keeps the other
        // connections' own sets and the unchanged globals' sets.
        let p1 = Arc::clone(s1.policy());
        let mut p2 = Policy::clone(&p1);
        p2.connection_mut("veth03")
            .unwrap()
            .open_port(pair(8080), "app");
        let (s2, _) = Snapshot::build(Arc::new(p2), 2, Some((&p1, &sets1)));
        assert!(!s1.layout.same_as(&s2.layout));
        assert!(Arc::ptr_eq(&s1.globals[1], &s2.globals[1]));
        assert!(s2.connection(5).own.contains(6, 8080));
        assert!(std::ptr::eq(s1.connection(6).own, s2.connection(6).own));
        // The unknown interface: all globals, nothing own, firewall on.
        let f = s2.connection(999);
        assert!(f.enabled && f.global.contains(6, 443) && !f.own.contains(6, 8080));
    }
}
