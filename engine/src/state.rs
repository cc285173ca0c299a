//! Bounded, timed tables for per-worker state: outbound flows (so replies are
//! `established`) and first-fragment verdicts (so later fragments follow).
//!
//! Each table is a fixed array allocated once, open-addressed with a short,
//! bounded probe window and a hash keyed by a random seed, so a flood can
//! neither grow memory nor make a lookup scan far. When a window is full the
//! entry closest to expiry is evicted. Time is the caller's clock, in
//! nanoseconds, so tests and replays are deterministic.

use std::hash::{BuildHasher, Hasher};

/// Slots probed from a key's home position.
const PROBE: usize = 8;

/// A key of a [`TimedTable`]: fixed-size, compared bytewise, hashed as words.
pub trait Key: Copy + Eq {
    /// Feeds the key to `mix`, word by word.
    fn words(&self, mix: &mut impl FnMut(u64));
}

#[derive(Clone, Copy)]
struct Slot<K, V> {
    key: K,
    value: V,
    /// The time from which the entry is gone.
    expires: u64,
}

/// A fixed-capacity map whose entries expire.
///
/// An empty slot is `None`; an expired one is reused like an empty one.
pub struct TimedTable<K, V> {
    slots: Box<[Option<Slot<K, V>>]>,
    mask: usize,
    seed: u64,
}

impl<K: Key, V: Copy> TimedTable<K, V> {
    /// A table with room for `capacity` entries (rounded up to a power of two,
    /// at least [`PROBE`]). Allocates now, never later.
    pub fn new(capacity: usize) -> Self {
        let cap = capacity.max(PROBE).next_power_of_two();
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        TimedTable {
            slots: vec![None; cap].into_boxed_slice(),
            mask: cap - 1,
            seed,
        }
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Live entries at `now` (a scan: for tests and stats, not the hot path).
    pub fn len(&self, now: u64) -> usize {
        self.slots
            .iter()
            .flatten()
            .filter(|s| s.expires > now)
            .count()
    }

    /// Whether no entry is live at `now`.
    pub fn is_empty(&self, now: u64) -> bool {
        self.len(now) == 0
    }

    fn home(&self, key: &K) -> usize {
        let mut h = self.seed;
        key.words(&mut |w| {
            h = (h ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            h ^= h >> 29;
        });
        // Truncation is the point: the low bits pick the slot.
        (h as usize) & self.mask
    }

    fn window(&self, key: &K) -> impl Iterator<Item = usize> + use<K, V> {
        let home = self.home(key);
        let mask = self.mask;
        (0..PROBE).map(move |i| (home + i) & mask)
    }

    /// The value for `key` if it has not expired at `now`; with `extend_to`,
    /// its expiry moves out to that time (never in).
    pub fn get(&mut self, key: &K, now: u64, extend_to: Option<u64>) -> Option<V> {
        for i in self.window(key) {
            if let Some(Some(slot)) = self.slots.get_mut(i) {
                if slot.key == *key && slot.expires > now {
                    if let Some(t) = extend_to {
                        slot.expires = slot.expires.max(t);
                    }
                    return Some(slot.value);
                }
            }
        }
        None
    }

    /// Inserts or replaces `key`, live until `expires`. Takes, in order: the
    /// slot holding `key`, a free or expired slot, the live slot closest to
    /// expiry in the window.
    pub fn insert(&mut self, key: K, value: V, now: u64, expires: u64) {
        let mut target = None;
        let mut best = u64::MAX;
        for i in self.window(&key) {
            match self.slots.get(i) {
                Some(Some(s)) if s.key == key => {
                    target = Some(i);
                    break;
                }
                Some(Some(s)) if s.expires > now && s.expires < best => {
                    best = s.expires;
                    target = Some(i);
                }
                // Live, and not the closest to expiry: never taken as free.
                Some(Some(s)) if s.expires > now => {}
                Some(_) if best > 0 => {
                    best = 0;
                    target = Some(i);
                }
                _ => {}
            }
        }
        if let Some(slot) = target.and_then(|i| self.slots.get_mut(i)) {
            *slot = Some(Slot {
                key,
                value,
                expires: expires.max(now.saturating_add(1)),
            });
        }
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &K) {
        for i in self.window(key) {
            if let Some(slot) = self.slots.get_mut(i) {
                if slot.is_some_and(|s| s.key == *key) {
                    *slot = None;
                    return;
                }
            }
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

fn addr_words(a: &[u8; 16], mix: &mut impl FnMut(u64)) {
    mix(u64::from_ne_bytes([
        a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7],
    ]));
    mix(u64::from_ne_bytes([
        a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15],
    ]));
}

impl Key for FlowKey {
    fn words(&self, mix: &mut impl FnMut(u64)) {
        mix(u64::from(self.proto)
            | u64::from(self.local_port) << 8
            | u64::from(self.remote_port) << 24);
        addr_words(&self.local, mix);
        addr_words(&self.remote, mix);
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

impl Key for FragKey {
    fn words(&self, mix: &mut impl FnMut(u64)) {
        mix(u64::from(self.id));
        addr_words(&self.src, mix);
        addr_words(&self.dst, mix);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u16) -> FlowKey {
        FlowKey {
            proto: 6,
            local_port: n,
            remote_port: 80,
            local: [1; 16],
            remote: [2; 16],
        }
    }

    #[test]
    fn insert_get_expire() {
        let mut t: TimedTable<FlowKey, ()> = TimedTable::new(64);
        t.insert(key(1), (), 0, 100);
        assert_eq!(t.get(&key(1), 50, None), Some(()));
        assert_eq!(t.get(&key(2), 50, None), None);
        assert_eq!(t.get(&key(1), 100, None), None, "expired at its deadline");
        t.insert(key(1), (), 100, 200);
        assert_eq!(t.get(&key(1), 150, Some(300)), Some(()));
        assert_eq!(t.get(&key(1), 250, None), Some(()), "refreshed to 300");
        t.remove(&key(1));
        assert_eq!(t.get(&key(1), 250, None), None);
    }

    #[test]
    fn stays_bounded_under_a_flood() {
        let mut t: TimedTable<FlowKey, u16> = TimedTable::new(16);
        for n in 0..10_000u16 {
            t.insert(key(n), n, u64::from(n), u64::from(n) + 1_000_000);
        }
        assert_eq!(t.capacity(), 16);
        assert!(t.len(10_000) <= 16);
        // The newest entry is always found: insertion evicts, never fails.
        assert_eq!(t.get(&key(9_999), 10_000, None), Some(9_999));
    }

    #[test]
    fn replaces_same_key() {
        let mut t: TimedTable<FragKey, u8> = TimedTable::new(8);
        let k = FragKey {
            id: 7,
            src: [3; 16],
            dst: [4; 16],
        };
        t.insert(k, 1, 0, 10);
        t.insert(k, 2, 1, 10);
        assert_eq!(t.get(&k, 2, None), Some(2));
        assert_eq!(t.len(2), 1);
    }
}
