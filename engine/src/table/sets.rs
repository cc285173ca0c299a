//! Port sets: one bit per (protocol, port), and a second bit for scoped pairs.

use crate::policy::{PortPair, Protocol, Scope};

/// Words in a 65,536-bit set.
const WORDS: usize = 65_536 / 64;

/// A set of ports for one protocol: one bit per port, 8 KiB, held inline so a
/// shared [`PortSet`] is one pointer away from its words.
#[derive(Clone)]
pub struct PortBits([u64; WORDS]);

impl PortBits {
    fn new() -> Self {
        PortBits([0; WORDS])
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
struct ProtoBits {
    tcp: PortBits,
    udp: PortBits,
}

impl ProtoBits {
    fn new() -> Self {
        ProtoBits {
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

    #[inline]
    fn contains(&self, proto: u8, port: u16) -> bool {
        match proto {
            6 => self.tcp.contains(port),
            17 => self.udp.contains(port),
            _ => false,
        }
    }
}

/// The scoped pairs of a [`PortSet`]: a second bit per pair, set when the
/// pair carries a scope, and the scopes sorted by (protocol, port).
#[derive(Clone)]
struct Scoped {
    bits: ProtoBits,
    scopes: Box<[(u8, u16, Scope)]>,
}

impl Scoped {
    /// Whether the scope of a scoped pair holds `src`.
    #[inline(never)] // off the common path: only pairs whose scoped bit is set
    fn holds(&self, proto: u8, port: u16, src: &[u8; 16]) -> bool {
        self.scopes
            .binary_search_by_key(&(proto, port), |(p, q, _)| (*p, *q))
            .ok()
            .and_then(|i| self.scopes.get(i))
            .is_some_and(|(_, _, scope)| scope.holds(src))
    }
}

/// What a [`PortSet`] says about a packet's pair and source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// The pair is not in the set.
    Closed,
    /// The pair is in the set and lets this source in.
    Open,
    /// The pair is in the set only for other sources.
    OutOfScope,
}

/// A set of port/protocol pairs, each maybe with a scope: one bit per pair,
/// and for sets with scoped pairs one more bit per pair saying "check the
/// scope". An unscoped pair costs a bit test and nothing else.
#[derive(Clone)]
pub struct PortSet {
    open: ProtoBits,
    scoped: Option<Box<Scoped>>,
}

impl PortSet {
    pub(crate) fn new() -> Self {
        PortSet {
            open: ProtoBits::new(),
            scoped: None,
        }
    }

    /// The set of these pairs with their scopes.
    pub(crate) fn of<'a>(pairs: impl IntoIterator<Item = (PortPair, &'a Scope)>) -> Self {
        let mut set = PortSet::new();
        let mut scoped = ProtoBits::new();
        let mut scopes = Vec::new();
        for (pair, scope) in pairs {
            set.open.insert(pair.protocol(), pair.port());
            if !scope.is_any() {
                scoped.insert(pair.protocol(), pair.port());
                scopes.push((pair.protocol().number(), pair.port(), scope.clone()));
            }
        }
        if !scopes.is_empty() {
            scopes.sort_unstable_by_key(|(p, q, _)| (*p, *q));
            set.scoped = Some(Box::new(Scoped {
                bits: scoped,
                scopes: scopes.into(),
            }));
        }
        set
    }

    /// Whether `(port, proto)` is in the set, whatever its scope; `proto` is
    /// an IP protocol number (anything but 6 and 17 is never in it).
    #[inline]
    pub fn contains(&self, proto: u8, port: u16) -> bool {
        self.open.contains(proto, port)
    }

    /// Whether `(port, proto)` is in the set and lets a packet from `src` in.
    #[inline]
    pub fn admits(&self, proto: u8, port: u16, src: &[u8; 16]) -> Admit {
        self.admits_from(proto, port, || src)
    }

    /// [`PortSet::admits`] with the source read only when a scope needs it
    /// (the packet path: most pairs have no scope).
    #[inline(always)]
    pub(crate) fn admits_from<'a>(
        &self,
        proto: u8,
        port: u16,
        src: impl FnOnce() -> &'a [u8; 16],
    ) -> Admit {
        if !self.open.contains(proto, port) {
            return Admit::Closed;
        }
        match &self.scoped {
            Some(s) if s.bits.contains(proto, port) && !s.holds(proto, port, src()) => {
                Admit::OutOfScope
            }
            _ => Admit::Open,
        }
    }
}
