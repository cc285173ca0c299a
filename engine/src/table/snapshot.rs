//! One published state: per connection its own and global port sets, found
//! by interface index in constant time, with equal sets shared.
//!
//! Most connections of a container host have no own pairs and ignore no
//! global pair, so they all point at the same two sets: the empty set and
//! the set of all globals. A connection that ignores globals shares its set
//! with every connection ignoring the same globals. Building the next
//! snapshot reuses the previous one's sets where their pairs did not change
//! (`Sets`), so a publish costs what changed plus a pass over the
//! connections, not 32 KiB of bitsets per interface.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use foldhash::fast::FixedState;

use super::sets::PortSet;
use crate::policy::{Connection, IcmpErrors, IcmpPolicy, Opening, Policy, PortPair};
use crate::sync::Witness;

/// The hot-path view of one connection.
#[derive(Clone)]
pub struct ConnTables {
    /// Interface index the packets of this connection arrive on.
    pub if_index: u32,
    /// Firewall on.
    pub enabled: bool,
    /// The connection's own pairs (shared by every connection with none).
    pub own: Arc<PortSet>,
    /// Global pairs in effect here (globals − ignored; shared by every
    /// connection ignoring the same globals).
    pub global: Arc<PortSet>,
}

/// No connection at this slot.
const NONE: u32 = u32::MAX;

/// Interface index → position in `conns`: a direct table for the indices up
/// to a bound that grows with the number of connections (Linux hands out
/// small, dense indices), a hash map for the rare larger ones. The first
/// connection in policy order wins a shared index, as a linear search would.
struct ConnIndex {
    near: Box<[u32]>,
    far: HashMap<u32, u32, FixedState>,
}

impl ConnIndex {
    fn new(conns: &[ConnTables]) -> Self {
        let bound = conns.len().saturating_mul(4).saturating_add(1024);
        let slot = |i: u32| usize::try_from(i).ok().filter(|&s| s < bound);
        let len = conns
            .iter()
            .filter_map(|c| slot(c.if_index))
            .max()
            .map_or(0, |m| m + 1);
        let mut near = vec![NONE; len].into_boxed_slice();
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
        ConnIndex { near, far }
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

/// The port sets of the last built snapshot, kept by the writer so the next
/// build reuses every set whose pairs did not change.
pub(super) struct Sets {
    /// The empty set: the own pairs of every connection with none.
    empty: Arc<PortSet>,
    /// All global pairs: the global set of every connection ignoring none.
    global: Arc<PortSet>,
    /// Own sets, one per connection, in `policy.connections` order.
    own: Vec<Arc<PortSet>>,
    /// Global sets of connections that ignore globals, by the ignored
    /// globals (sorted).
    ignoring: HashMap<Box<[PortPair]>, Arc<PortSet>, FixedState>,
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

/// An immutable, published state of the whole policy.
pub struct Snapshot {
    generation: u64,
    policy: Arc<Policy>,
    conns: Box<[ConnTables]>,
    index: ConnIndex,
    fallback: ConnTables,
    icmp: IcmpPolicy,
    icmp_errors: IcmpErrors,
    state: bool,
    witness: Witness,
}

impl Snapshot {
    /// The snapshot of `policy`, reusing the sets of `prev` (built from
    /// `prev_policy`) where the pairs are the same; returns the sets to reuse
    /// next time.
    pub(super) fn build(
        policy: Arc<Policy>,
        generation: u64,
        prev: Option<(&Policy, &Sets)>,
    ) -> (Snapshot, Sets) {
        let same_globals = prev.is_some_and(|(p, _)| same_pairs(&p.globals, &policy.globals));
        let (empty, global) = match prev {
            Some((_, s)) if same_globals => (Arc::clone(&s.empty), Arc::clone(&s.global)),
            Some((_, s)) => (Arc::clone(&s.empty), set_of(&policy.globals)),
            None => (Arc::new(PortSet::new()), set_of(&policy.globals)),
        };
        let mut sets = Sets {
            empty,
            global,
            own: Vec::with_capacity(policy.connections.len()),
            ignoring: HashMap::with_hasher(FixedState::with_seed(2)),
        };
        // The previous connections in key order, beside their own sets, to
        // walk in step with the new ones.
        let mut before = prev
            .map(|(p, s)| p.connections.shared().zip(&s.own))
            .into_iter()
            .flatten()
            .peekable();
        let conns: Box<[ConnTables]> = policy
            .connections
            .shared()
            .map(|(key, c)| {
                while before.next_if(|((k, _), _)| *k < key).is_some() {}
                // An unchanged connection is the same `Arc`: no comparing.
                let reused = before
                    .next_if(|((k, _), _)| *k == key)
                    .filter(|((_, old), _)| Arc::ptr_eq(old, c) || same_pairs(&old.open, &c.open))
                    .map(|(_, own)| Arc::clone(own));
                let own = match reused {
                    _ if c.open.is_empty() => Arc::clone(&sets.empty),
                    Some(own) => own,
                    None => set_of(&c.open),
                };
                sets.own.push(Arc::clone(&own));
                let global = sets.global_for(c, &policy, prev.filter(|_| same_globals));
                ConnTables {
                    if_index: c.if_index,
                    enabled: c.enabled,
                    own,
                    global,
                }
            })
            .collect();
        let snapshot = Snapshot {
            generation,
            index: ConnIndex::new(&conns),
            fallback: ConnTables {
                if_index: 0,
                enabled: true,
                own: Arc::clone(&sets.empty),
                global: Arc::clone(&sets.global),
            },
            conns,
            icmp: policy.icmp.clone(),
            icmp_errors: policy.icmp_errors,
            state: policy.state.enabled,
            policy,
            witness: Witness::new(),
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
    pub fn connection(&self, if_index: u32) -> &ConnTables {
        let pos = self.index.get(if_index);
        usize::try_from(pos)
            .ok()
            .and_then(|p| self.conns.get(p))
            .unwrap_or(&self.fallback)
    }

    /// How many distinct port sets (16 KiB each, plus scopes) this snapshot
    /// holds for its connections and the unknown-interface fallback: equal
    /// sets are shared, so this stays small however many connections see
    /// only the global pairs.
    pub fn distinct_sets(&self) -> usize {
        let mut seen: Vec<*const PortSet> = self
            .conns
            .iter()
            .chain([&self.fallback])
            .flat_map(|c| [Arc::as_ptr(&c.own), Arc::as_ptr(&c.global)])
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

impl Sets {
    /// The global set of `c`: the shared set of all globals if it ignores
    /// none of them, else the one set of every connection ignoring the same
    /// globals (reused from `prev` when the globals did not change).
    fn global_for(
        &mut self,
        c: &Connection,
        policy: &Policy,
        prev: Option<(&Policy, &Sets)>,
    ) -> Arc<PortSet> {
        let ignored: Box<[PortPair]> = c
            .ignored
            .iter()
            .filter(|p| policy.globals.contains_key(p))
            .copied()
            .collect();
        if ignored.is_empty() {
            return Arc::clone(&self.global);
        }
        if let Some(set) = self.ignoring.get(&ignored) {
            return Arc::clone(set);
        }
        let set = prev
            .and_then(|(_, s)| s.ignoring.get(&ignored))
            .map(Arc::clone)
            .unwrap_or_else(|| {
                Arc::new(PortSet::of(
                    policy
                        .globals
                        .iter()
                        .filter(|(p, _)| ignored.binary_search(p).is_err())
                        .map(|(p, o)| (*p, &o.from)),
                ))
            });
        self.ignoring.insert(ignored, Arc::clone(&set));
        set
    }
}
