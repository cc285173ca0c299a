//! Bounded, timed tables for per-worker state: outbound flows (so replies are
//! `established`) and first-fragment memory (so later fragments follow).
//!
//! Each table is a fixed array allocated once, open-addressed with a short,
//! bounded probe window, so a flood can neither grow memory nor make a lookup
//! scan far. The hash is keyed ([`HashKey`]): by default with a random key
//! drawn once per process, so that no one outside can aim keys at one probe
//! window (SPEC.md, "Outbound packets and state"); tests and replay may fix
//! the key for determinism.
//!
//! When a key finds no free slot in its window it may replace the live entry
//! closest to expiry, but only one the caller says may be evicted: the flow
//! table never lets a new flow push out a confirmed one. Time is the caller's
//! clock, in nanoseconds, so tests and replays are deterministic.

use std::hash::{BuildHasher, Hash};

use foldhash::fast::SeedableRandomState;
use foldhash::SharedSeed;
use std::sync::OnceLock;

use crate::flows::FlowTimeouts;
use crate::settings::StateSettings;

const SECOND: u64 = 1_000_000_000;

/// Sizes, timeouts and hash key of a worker's state tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateConfig {
    /// Flow table slots.
    pub flow_capacity: usize,
    /// Idle timeouts of flows.
    pub timeouts: FlowTimeouts,
    /// Fragment memory slots.
    pub frag_capacity: usize,
    /// How long a first fragment's verdict is remembered (RFC 8200: 60 s).
    pub frag_timeout_ns: u64,
    /// The tables' hash key.
    pub hash_key: HashKey,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig::from(&StateSettings::default())
    }
}

impl From<&StateSettings> for StateConfig {
    /// The policy file's `[state]` table (a random hash key).
    fn from(s: &StateSettings) -> Self {
        let ns = |secs: u32| u64::from(secs) * SECOND;
        StateConfig {
            flow_capacity: s.flow_slots as usize,
            timeouts: FlowTimeouts {
                tcp_unconfirmed_ns: ns(s.tcp_unconfirmed_s),
                tcp_confirmed_ns: ns(s.tcp_confirmed_s),
                tcp_closed_ns: ns(s.tcp_closed_s),
                tcp_reset_ns: ns(s.tcp_reset_s),
                udp_unconfirmed_ns: ns(s.udp_unconfirmed_s),
                udp_confirmed_ns: ns(s.udp_confirmed_s),
            },
            frag_capacity: s.fragment_slots as usize,
            frag_timeout_ns: ns(s.fragment_s),
            hash_key: HashKey::Random,
        }
    }
}

/// Slots probed from each of a key's two home positions.
pub const PROBE: usize = 8;

/// A key of a [`TimedTable`]: fixed-size, compared bytewise.
pub trait Key: Copy + Eq + Hash {}

impl<T: Copy + Eq + Hash> Key for T {}

/// The key of the tables' hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashKey {
    /// A random key drawn once per process (the default).
    #[default]
    Random,
    /// This key (tests and replay, for results that do not depend on the run).
    Fixed(u64),
}

impl HashKey {
    /// foldhash's fast hasher (hashbrown's default): a few folded
    /// multiplies for the key's three words, seeded with a per-process
    /// random secret, or with `k` and foldhash's fixed secret.
    fn hasher(self) -> SeedableRandomState {
        static PROCESS: OnceLock<SeedableRandomState> = OnceLock::new();
        match self {
            HashKey::Random => PROCESS.get_or_init(SeedableRandomState::random).clone(),
            HashKey::Fixed(k) => SeedableRandomState::with_seed(k, SharedSeed::global_fixed()),
        }
    }
}

/// One live or expired entry of a [`TimedTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<K, V> {
    key: K,
    /// What the table holds for the key.
    pub value: V,
    /// The time from which the entry is gone.
    pub expires: u64,
}

/// A fixed-capacity map whose entries expire.
///
/// An empty slot is `None`; an expired one is reused like an empty one.
/// Beside the slots, one tag byte per slot holds 7 bits of its key's hash
/// (0 for an empty slot), as a Swiss table does: a lookup reads a window's
/// eight tags (one cache line) and only the slots whose tag matches, so a
/// miss, the common case under a flood, touches two cache lines instead of
/// sixteen slots.
pub struct TimedTable<K, V> {
    slots: Box<[Option<Entry<K, V>>]>,
    tags: Box<[u8]>,
    mask: usize,
    hasher: SeedableRandomState,
}

/// Where a key may live and the tag its slot carries.
#[derive(Clone, Copy)]
struct Place {
    /// Its two home positions (not yet masked).
    homes: [usize; 2],
    /// Its tag: never 0, the empty slot's.
    tag: u8,
}

impl<K: Key, V: Copy> TimedTable<K, V> {
    /// A table with room for `capacity` entries (rounded up to a power of two,
    /// at least [`PROBE`]), hashed with `key`. Allocates now, never later.
    pub fn new(capacity: usize, key: HashKey) -> Self {
        let cap = capacity.max(PROBE).next_power_of_two();
        TimedTable {
            slots: vec![None; cap].into_boxed_slice(),
            tags: vec![0; cap].into_boxed_slice(),
            mask: cap - 1,
            hasher: key.hasher(),
        }
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Live entries at `now` (a scan: for tests and stats, not the hot path).
    pub fn len(&self, now: u64) -> usize {
        self.live(now).count()
    }

    /// Whether no entry is live at `now`.
    pub fn is_empty(&self, now: u64) -> bool {
        self.len(now) == 0
    }

    /// The live entries at `now`, with their keys (a scan: for tests and stats).
    pub fn live(&self, now: u64) -> impl Iterator<Item = (K, &Entry<K, V>)> + '_ {
        self.slots
            .iter()
            .flatten()
            .filter(move |s| s.expires > now)
            .map(|s| (s.key, s))
    }

    /// The two homes of a key (the hash's low and high halves) and its tag
    /// (the top 7 bits, which pick no home in a table under 2^25 slots).
    ///
    /// A key may live in [`PROBE`] slots from each of its two
    /// homes. Two short windows, a new key going to the one with more room
    /// (the "power of two choices"), instead of one long one: a key is
    /// refused only when both are full of entries that may not be evicted.
    /// Simulated with 30,000 keys in 65,536 slots, one window of 8 refused
    /// about 1 key in 350, first-fit over two windows 1 in 37,000, the
    /// emptier of two none of 300,000; the worst-case probe count is that of
    /// one window of 16.
    #[inline]
    fn place(&self, key: &K) -> Place {
        let hash = self.hasher.hash_one(key);
        Place {
            // Truncation is the point: the low bits pick the slot.
            homes: [hash as usize, hash.rotate_right(32) as usize],
            tag: (hash >> 57) as u8 | 0x80,
        }
    }

    /// The slot holding `key` (live or expired), read through the tags.
    #[inline]
    fn find(&self, key: &K) -> Option<usize> {
        let place = self.place(key);
        place.homes.into_iter().find_map(|home| {
            let mut hits = self.tag_hits(home, place.tag);
            while hits != 0 {
                let at = home.wrapping_add(hits.trailing_zeros() as usize / 8) & self.mask;
                if matches!(self.slots.get(at), Some(Some(s)) if s.key == *key) {
                    return Some(at);
                }
                hits &= hits - 1;
            }
            None
        })
    }

    /// The slots of the window at `home` whose tag may be `tag`: bit 8i+7
    /// for slot `home + i` (a superset: a byte right above a hit may show
    /// up too, so the caller compares keys). The eight tags are one load
    /// unless the window wraps around the table's end.
    #[inline]
    fn tag_hits(&self, home: usize, tag: u8) -> u64 {
        const ONES: u64 = u64::from_ne_bytes([1; PROBE]);
        const HIGH: u64 = u64::from_ne_bytes([0x80; PROBE]);
        let start = home & self.mask;
        let word = match self
            .tags
            .get(start..)
            .and_then(<[u8]>::first_chunk::<PROBE>)
        {
            Some(w) => u64::from_le_bytes(*w),
            None => {
                let mut w = [0u8; PROBE];
                for (i, b) in w.iter_mut().enumerate() {
                    *b = self
                        .tags
                        .get(start.wrapping_add(i) & self.mask)
                        .copied()
                        .unwrap_or(0);
                }
                u64::from_le_bytes(w)
            }
        };
        // The bytes of `word` equal to `tag` become 0, and a zero byte sets
        // its high bit here (the classic "has a zero byte" test).
        let x = word ^ (ONES * u64::from(tag));
        x.wrapping_sub(ONES) & !x & HIGH
    }

    /// The entry for `key` if it has not expired at `now`, to read or change.
    #[inline]
    pub fn get(&mut self, key: &K, now: u64) -> Option<&mut Entry<K, V>> {
        let at = self.find(key)?;
        self.slots.get_mut(at)?.as_mut().filter(|s| s.expires > now)
    }

    /// Inserts or replaces `key`, live until `expires`. Takes, in order: the
    /// slot holding `key`, a free or expired slot (in the window with more of
    /// them), the live slot closest to expiry among those whose value
    /// `evictable` allows. Returns `false`, changing nothing, when every slot
    /// of both windows is live and none may be evicted.
    pub fn insert(
        &mut self,
        key: K,
        value: V,
        now: u64,
        expires: u64,
        evictable: impl Fn(&V) -> bool,
    ) -> bool {
        // Per window: how many slots are free, and the first of them.
        let mut free = [(0usize, None::<usize>); 2];
        let mut evict: Option<(u64, usize)> = None;
        let mut own = None;
        let place = self.place(&key);
        'scan: for (home, room) in place.homes.into_iter().zip(free.iter_mut()) {
            for i in 0..PROBE {
                let at = home.wrapping_add(i) & self.mask;
                let tag = self.tags.get(at).copied().unwrap_or(0);
                if tag == 0 {
                    // Empty (an empty slot's tag is 0): free, unread.
                    room.0 += 1;
                    room.1.get_or_insert(at);
                    continue;
                }
                match self.slots.get(at) {
                    Some(Some(s)) if tag == place.tag && s.key == key => {
                        own = Some(at);
                        break 'scan;
                    }
                    Some(Some(s))
                        if s.expires > now
                            && evictable(&s.value)
                            && evict.is_none_or(|(e, _)| s.expires < e) =>
                    {
                        evict = Some((s.expires, at));
                    }
                    // Live, and not a candidate: never taken as free.
                    Some(Some(s)) if s.expires > now => {}
                    Some(_) => {
                        room.0 += 1;
                        room.1.get_or_insert(at);
                    }
                    None => {}
                }
            }
        }
        let [(n0, free0), (n1, free1)] = free;
        let free = if n1 > n0 { free1 } else { free0.or(free1) };
        let target = own.or(free).or(evict.map(|(_, at)| at));
        let Some((slot, tag)) =
            target.and_then(|i| self.slots.get_mut(i).zip(self.tags.get_mut(i)))
        else {
            return false;
        };
        *tag = place.tag;
        *slot = Some(Entry {
            key,
            value,
            expires: expires.max(now.saturating_add(1)),
        });
        true
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &K) {
        let Some(at) = self.find(key) else {
            return;
        };
        if let Some((slot, tag)) = self.slots.get_mut(at).zip(self.tags.get_mut(at)) {
            *slot = None;
            *tag = 0;
        }
    }
}

/// An outbound flow: protocol, local address and port, remote address and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowKey {
    /// IP protocol number (6 or 17).
    pub proto: u8,
    /// Local port.
    pub local_port: u16,
    /// Remote port.
    pub remote_port: u16,
    /// Local address.
    pub local: [u8; 16],
    /// Remote address.
    pub remote: [u8; 16],
}

impl FlowKey {
    /// The flow between the `local` and `remote` (address, port) ends.
    #[inline]
    pub const fn new(proto: u8, local: ([u8; 16], u16), remote: ([u8; 16], u16)) -> Self {
        FlowKey {
            proto,
            local_port: local.1,
            remote_port: remote.1,
            local: local.0,
            remote: remote.0,
        }
    }
}

/// A fragmented datagram: source, destination, identification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragKey {
    /// Identification.
    pub id: u32,
    /// Source address.
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
}

// Hashed as three words rather than field by field (the derived `Hash`
// feeds each array byte slice with a length prefix): fewer hasher rounds on
// the packet path, the same keyed hash.
impl Hash for FlowKey {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        h.write_u64(
            u64::from(self.proto)
                | u64::from(self.local_port) << 8
                | u64::from(self.remote_port) << 24,
        );
        h.write_u128(u128::from_ne_bytes(self.local));
        h.write_u128(u128::from_ne_bytes(self.remote));
    }
}

impl Hash for FragKey {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        h.write_u32(self.id);
        h.write_u128(u128::from_ne_bytes(self.src));
        h.write_u128(u128::from_ne_bytes(self.dst));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u16) -> FlowKey {
        FlowKey::new(6, ([1; 16], n), ([2; 16], 80))
    }

    const ANY: fn(&u16) -> bool = |_| true;

    #[test]
    fn insert_get_expire() {
        let mut t: TimedTable<FlowKey, u16> = TimedTable::new(64, HashKey::Fixed(1));
        assert!(t.insert(key(1), 7, 0, 100, ANY));
        assert_eq!(t.get(&key(1), 50).map(|e| e.value), Some(7));
        assert!(t.get(&key(2), 50).is_none());
        assert!(t.get(&key(1), 100).is_none(), "expired at its deadline");
        t.insert(key(1), 8, 100, 200, ANY);
        if let Some(e) = t.get(&key(1), 150) {
            e.expires = 300;
        }
        assert_eq!(t.get(&key(1), 250).map(|e| e.value), Some(8));
        t.remove(&key(1));
        assert!(t.get(&key(1), 250).is_none());
    }

    #[test]
    fn stays_bounded_under_a_flood() {
        let mut t: TimedTable<FlowKey, u16> = TimedTable::new(16, HashKey::Random);
        for n in 0..10_000u16 {
            t.insert(key(n), n, u64::from(n), u64::from(n) + 1_000_000, ANY);
        }
        assert_eq!(t.capacity(), 16);
        assert!(t.len(10_000) <= 16);
        // The newest entry is always found when anything may be evicted.
        assert_eq!(t.get(&key(9_999), 10_000).map(|e| e.value), Some(9_999));
    }

    #[test]
    fn pinned_entries_are_never_evicted() {
        // Capacity 8 = one probe window: every key shares it.
        let mut t: TimedTable<FlowKey, u16> = TimedTable::new(8, HashKey::Fixed(3));
        for n in 0..8 {
            assert!(t.insert(key(n), 1, 0, 1_000, ANY));
        }
        assert!(
            !t.insert(key(100), 0, 1, 2_000, |v| *v == 0),
            "no evictable slot"
        );
        assert_eq!(t.len(1), 8);
        assert!(t.get(&key(100), 1).is_none());
        // Once they expire the slots are free again.
        assert!(t.insert(key(100), 0, 1_000, 2_000, |v| *v == 0));
    }

    #[test]
    fn two_windows_hold_a_half_full_table_of_pinned_entries() {
        // 2,000 entries that may never be evicted in 4,096 slots: with one
        // window of 8 (the first flow-state layout), about 9 of them found it
        // full (docs/decisions.md); with the emptier of two windows none does.
        // Miri is ~1,000 times slower: one seed, a quarter of the size.
        let (seeds, slots, keys) = if cfg!(miri) {
            (1, 1_024, 500)
        } else {
            (10, 4_096, 2_000)
        };
        for seed in 0..seeds {
            let mut t: TimedTable<FlowKey, u16> = TimedTable::new(slots, HashKey::Fixed(seed));
            let refused = (0..keys)
                .filter(|&n| !t.insert(key(n), 1, 0, 1_000, |_| false))
                .count();
            assert_eq!(refused, 0, "seed {seed}");
            assert!((0..keys).all(|n| t.get(&key(n), 1).is_some()));
        }
    }

    #[test]
    fn replaces_same_key() {
        let mut t: TimedTable<FragKey, u8> = TimedTable::new(8, HashKey::Fixed(0));
        let k = FragKey {
            id: 7,
            src: [3; 16],
            dst: [4; 16],
        };
        t.insert(k, 1, 0, 10, |_| false);
        assert!(t.insert(k, 2, 1, 10, |_| false), "its own slot is taken");
        assert_eq!(t.get(&k, 2).map(|e| e.value), Some(2));
        assert_eq!(t.len(2), 1);
    }

    #[test]
    fn fixed_keys_place_alike_and_keys_differ() {
        let a: TimedTable<FlowKey, u16> = TimedTable::new(1 << 12, HashKey::Fixed(9));
        let b: TimedTable<FlowKey, u16> = TimedTable::new(1 << 12, HashKey::Fixed(9));
        let c: TimedTable<FlowKey, u16> = TimedTable::new(1 << 12, HashKey::Fixed(10));
        let homes = |t: &TimedTable<FlowKey, u16>| -> Vec<usize> {
            (0..64)
                .map(|n| t.place(&key(n)).homes[0] & t.mask)
                .collect()
        };
        assert_eq!(homes(&a), homes(&b));
        assert_ne!(homes(&a), homes(&c));
    }

    #[test]
    fn tags_follow_the_slots() {
        // Every slot's tag is 0 exactly when it is empty, and a live slot's
        // tag is its key's: inserting, replacing, removing and reusing an
        // expired slot keep that, and lookups that go by the tags find
        // every key that is in and none that is not.
        let mut t: TimedTable<FlowKey, u16> = TimedTable::new(64, HashKey::Fixed(3));
        let check = |t: &TimedTable<FlowKey, u16>| {
            for (slot, &tag) in t.slots.iter().zip(t.tags.iter()) {
                match slot {
                    None => assert_eq!(tag, 0),
                    Some(e) => assert_eq!(tag, t.place(&e.key).tag),
                }
            }
        };
        for n in 0..40 {
            t.insert(key(n), n, 0, 10 + u64::from(n), |_| true);
            check(&t);
        }
        for n in 0..40 {
            assert_eq!(t.get(&key(n), 5).map(|e| e.value), Some(n), "key {n}");
        }
        assert!(t.get(&key(99), 5).is_none());
        for n in (0..40).step_by(3) {
            t.remove(&key(n));
            check(&t);
            assert!(t.get(&key(n), 5).is_none());
        }
        // At 30 the first ones have expired: their slots are reused.
        for n in 100..140 {
            t.insert(key(n), n, 30, 100, |_| true);
            check(&t);
        }
        assert!((100..140).all(|n| t.get(&key(n), 31).is_some()));
    }
}
