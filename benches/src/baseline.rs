//! The baselines: the same job as v6fw, done the obvious way.
//!
//! Each baseline parses the packet with etherparse's
//! [`SlicedPacket::from_ip`] (a full, validating slice down to the transport
//! layer), looks the destination `(port, protocol)` up in a
//! `HashSet<(u16, u8)>` behind a lock or an [`ArcSwap`], and, like v6fw,
//! tracks outbound flows in a per-worker `HashMap` so replies are accepted as
//! established. ICMPv6 is judged with the same per-type table
//! ([`IcmpPolicy::default`]). The lock is taken per packet, as a straightforward
//! implementation does; `decide_batch` is the unit both sides are timed on.
//!
//! The baselines do a little *less* than v6fw (one set, no per-connection
//! own/global split, no fragment memory: a first fragment has no transport
//! slice in etherparse and is simply dropped), so ratios against them are
//! conservative.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use arc_swap::ArcSwap;
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use v6fw_engine::{
    Connection, Engine, IcmpPolicy, PacketMeta, Policy, PortPair, Protocol, Publisher, Snapshot,
    StateConfig, Worker,
};

use v6fw_testkit::packets::{OPEN_TCP, OPEN_UDP};

/// Interface index of the benchmark connection.
pub const IF_INDEX: u32 = 1;
/// The fixed "now" of benchmark decisions (1 s): flows never expire in a run.
pub const NOW_NS: u64 = 1_000_000_000;

/// A `(port, protocol number)` set: what the baselines look ports up in.
pub type PairSet = HashSet<(u16, u8)>;

/// The pairs the benchmark policy opens, as a [`PairSet`].
pub fn baseline_pairs() -> PairSet {
    let tcp = OPEN_TCP.iter().map(|&p| (p, 6u8));
    let udp = OPEN_UDP.iter().map(|&p| (p, 17u8));
    tcp.chain(udp).collect()
}

/// The benchmark policy: connection `eth0` (if_index [`IF_INDEX`]) with the
/// first three [`OPEN_TCP`] ports and [`OPEN_UDP`] open as its own pairs, the
/// last TCP port open globally; state on; default ICMPv6 policy.
pub fn bench_policy() -> Policy {
    let mut policy = Policy::default();
    let mut conn = Connection::new("eth0", "Ethernet", IF_INDEX);
    let (own_tcp, global_tcp) = OPEN_TCP.split_at(OPEN_TCP.len() - 1);
    for &p in own_tcp {
        if let Ok(pair) = PortPair::new(p, Protocol::Tcp) {
            conn.open_port(pair, "bench");
        }
    }
    for &p in &OPEN_UDP {
        if let Ok(pair) = PortPair::new(p, Protocol::Udp) {
            conn.open_port(pair, "bench");
        }
    }
    for &p in global_tcp {
        if let Ok(pair) = PortPair::new(p, Protocol::Tcp) {
            policy.open_global(pair, "bench");
        }
    }
    // A fresh policy has no connection named eth0: this cannot fail.
    let _ = policy.add_connection(conn);
    policy
}

/// The benchmark engine: [`bench_policy`] with default state sizes.
pub fn bench_engine() -> Engine {
    Engine::with_state(bench_policy(), StateConfig::default())
}

/// [`bench_engine`] and its one publisher, for runs with a writer.
pub fn bench_writer() -> (Engine, Publisher) {
    Engine::with_publisher(bench_policy(), StateConfig::default())
}

/// Something that decides a whole batch of inbound packets and says how many
/// it accepted (the count keeps the optimiser honest).
pub trait BatchDecider {
    /// Decides every packet of `batch` as inbound; returns the accept count.
    fn decide_batch(&mut self, batch: &[Vec<u8>]) -> usize;
}

/// v6fw deciding a batch: one pin, one snapshot, every packet.
pub struct V6fwDecider<'e> {
    engine: &'e Engine,
    worker: Worker,
}

impl<'e> V6fwDecider<'e> {
    /// A decider with its own worker on `engine`; decides `outbound` first so
    /// their flows are recorded.
    pub fn new(engine: &'e Engine, outbound: &[Vec<u8>]) -> Self {
        let mut worker = engine.worker();
        let snap = engine.table().pin();
        for p in outbound {
            worker.decide(&snap, p, &PacketMeta::outbound(IF_INDEX, NOW_NS));
        }
        drop(snap);
        V6fwDecider { engine, worker }
    }

    /// Decides one packet on an already pinned snapshot.
    #[inline]
    pub fn decide_one(&mut self, snap: &Snapshot, packet: &[u8]) -> bool {
        let meta = PacketMeta::inbound(IF_INDEX, NOW_NS);
        self.worker.decide(snap, packet, &meta).verdict() == v6fw_engine::Verdict::Accept
    }
}

impl BatchDecider for V6fwDecider<'_> {
    #[inline]
    fn decide_batch(&mut self, batch: &[Vec<u8>]) -> usize {
        let snap = self.engine.table().pin();
        let mut accepted = 0;
        for p in batch {
            accepted += usize::from(self.decide_one(&snap, p));
        }
        accepted
    }
}

/// The floor DESIGN.md quotes (`mixed_1024/bare_floor`): the destination
/// port read at a fixed offset and one bit test against the open TCP ports,
/// with no check of anything else. Not a firewall: the least a decision can
/// cost. Its fixed offset (a TCP header right after the fixed IPv6 header)
/// is the definition of the floor, so it does not go through the wire views.
#[derive(Debug, Clone)]
pub struct Floor {
    bits: [u64; 1024],
}

impl Floor {
    /// The floor's bitset of [`OPEN_TCP`].
    pub fn new() -> Self {
        let mut bits = [0u64; 1024];
        for &p in &OPEN_TCP {
            if let Some(w) = bits.get_mut(usize::from(p >> 6)) {
                *w |= 1 << (p & 63);
            }
        }
        Floor { bits }
    }
}

impl BatchDecider for Floor {
    /// How many packets of `batch` have their port bit set.
    #[inline]
    fn decide_batch(&mut self, batch: &[Vec<u8>]) -> usize {
        batch
            .iter()
            .filter(|p| {
                let port = p
                    .get(42..44)
                    .and_then(<[u8]>::first_chunk::<2>)
                    .map_or(0, |b| u16::from_be_bytes(*b));
                self.bits
                    .get(usize::from(port >> 6))
                    .is_some_and(|w| (w >> (port & 63)) & 1 == 1)
            })
            .count()
    }
}

impl Default for Floor {
    fn default() -> Self {
        Floor::new()
    }
}

/// A shared, changeable `(port, protocol)` set, however it is synchronised.
pub trait PortLookup: Send + Sync {
    /// Whether the pair is open.
    fn contains(&self, port: u16, proto: u8) -> bool;
    /// Opens a pair.
    fn open(&self, port: u16, proto: u8);
    /// Closes a pair.
    fn close(&self, port: u16, proto: u8);
}

/// `std::sync::RwLock<HashSet<(u16, u8)>>`, read-locked per packet.
#[derive(Debug, Default)]
pub struct StdRwLockPorts(RwLock<PairSet>);

impl StdRwLockPorts {
    /// A set holding `pairs`.
    pub fn new(pairs: PairSet) -> Self {
        StdRwLockPorts(RwLock::new(pairs))
    }
}

impl PortLookup for StdRwLockPorts {
    #[inline]
    fn contains(&self, port: u16, proto: u8) -> bool {
        // A poisoned lock still holds a valid set: read it anyway.
        let set = self.0.read().unwrap_or_else(|e| e.into_inner());
        set.contains(&(port, proto))
    }
    fn open(&self, port: u16, proto: u8) {
        let mut set = self.0.write().unwrap_or_else(|e| e.into_inner());
        set.insert((port, proto));
    }
    fn close(&self, port: u16, proto: u8) {
        let mut set = self.0.write().unwrap_or_else(|e| e.into_inner());
        set.remove(&(port, proto));
    }
}

/// `parking_lot::RwLock<HashSet<(u16, u8)>>`, read-locked per packet.
#[derive(Debug, Default)]
pub struct ParkingLotPorts(parking_lot::RwLock<PairSet>);

impl ParkingLotPorts {
    /// A set holding `pairs`.
    pub fn new(pairs: PairSet) -> Self {
        ParkingLotPorts(parking_lot::RwLock::new(pairs))
    }
}

impl PortLookup for ParkingLotPorts {
    #[inline]
    fn contains(&self, port: u16, proto: u8) -> bool {
        self.0.read().contains(&(port, proto))
    }
    fn open(&self, port: u16, proto: u8) {
        self.0.write().insert((port, proto));
    }
    fn close(&self, port: u16, proto: u8) {
        self.0.write().remove(&(port, proto));
    }
}

/// `arc_swap::ArcSwap<HashSet<(u16, u8)>>`: loaded per packet, changed by
/// copying the set and swapping it in (read-copy-update).
#[derive(Debug)]
pub struct ArcSwapPorts(ArcSwap<PairSet>);

impl ArcSwapPorts {
    /// A set holding `pairs`.
    pub fn new(pairs: PairSet) -> Self {
        ArcSwapPorts(ArcSwap::from_pointee(pairs))
    }
}

impl PortLookup for ArcSwapPorts {
    #[inline]
    fn contains(&self, port: u16, proto: u8) -> bool {
        self.0.load().contains(&(port, proto))
    }
    fn open(&self, port: u16, proto: u8) {
        self.0.rcu(|set| {
            let mut next = PairSet::clone(set);
            next.insert((port, proto));
            next
        });
    }
    fn close(&self, port: u16, proto: u8) {
        self.0.rcu(|set| {
            let mut next = PairSet::clone(set);
            next.remove(&(port, proto));
            next
        });
    }
}

/// A flow as the baseline keys it: protocol, local and remote address and port.
type FlowKey = (u8, [u8; 16], u16, [u8; 16], u16);

/// One baseline packet loop: a port set shared with the writer, and its own
/// flow table (a `HashMap` with expiry times).
pub struct BaselineDecider<'p, P: PortLookup> {
    ports: &'p P,
    flows: HashMap<FlowKey, u64>,
    icmp: IcmpPolicy,
    idle_ns: u64,
}

impl<'p, P: PortLookup> BaselineDecider<'p, P> {
    /// A decider on `ports`; decides `outbound` first so their flows are recorded.
    pub fn new(ports: &'p P, outbound: &[Vec<u8>]) -> Self {
        let mut d = BaselineDecider {
            ports,
            flows: HashMap::new(),
            icmp: IcmpPolicy::default(),
            idle_ns: 180_000_000_000,
        };
        for p in outbound {
            d.decide(p, false, NOW_NS);
        }
        d
    }

    /// Decides one packet; `inbound` false records its flow and accepts it.
    #[inline]
    pub fn decide(&mut self, packet: &[u8], inbound: bool, now: u64) -> bool {
        let Ok(sliced) = SlicedPacket::from_ip(packet) else {
            return false; // malformed
        };
        let Some(NetSlice::Ipv6(ip)) = &sliced.net else {
            return true; // not IPv6: not this firewall's job
        };
        let header = ip.header();
        let (src, dst) = (header.source(), header.destination());
        let (proto, sport, dport) = match &sliced.transport {
            Some(TransportSlice::Tcp(t)) => (6u8, t.source_port(), t.destination_port()),
            Some(TransportSlice::Udp(u)) => (17u8, u.source_port(), u.destination_port()),
            Some(TransportSlice::Icmpv6(i)) => {
                return !inbound || self.icmp.allows(i.type_u8(), header.hop_limit(), false);
            }
            _ => return !inbound, // fragments, no upper layer, other protocols
        };
        if !inbound {
            self.flows
                .insert((proto, src, sport, dst, dport), now + self.idle_ns);
            return true;
        }
        if self.ports.contains(dport, proto) {
            return true;
        }
        match self.flows.get_mut(&(proto, dst, dport, src, sport)) {
            Some(expires) if *expires > now => {
                *expires = now + self.idle_ns;
                true
            }
            _ => false,
        }
    }
}

impl<P: PortLookup> BatchDecider for BaselineDecider<'_, P> {
    #[inline]
    fn decide_batch(&mut self, batch: &[Vec<u8>]) -> usize {
        let mut accepted = 0;
        for p in batch {
            accepted += usize::from(self.decide(p, true, NOW_NS));
        }
        accepted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use v6fw_testkit::packets::MixedBatch;

    #[test]
    fn baselines_agree_with_v6fw_on_the_mixed_batch() {
        let batch = MixedBatch::new(1_024, 3);
        let engine = bench_engine();
        let mut v6 = V6fwDecider::new(&engine, &batch.outbound);
        let ports = StdRwLockPorts::new(baseline_pairs());
        let mut base = BaselineDecider::new(&ports, &batch.outbound);
        let pl = ParkingLotPorts::new(baseline_pairs());
        let mut base_pl = BaselineDecider::new(&pl, &batch.outbound);
        let sw = ArcSwapPorts::new(baseline_pairs());
        let mut base_sw = BaselineDecider::new(&sw, &batch.outbound);
        let snap = engine.table().pin();
        for (p, kind) in batch.packets.iter().zip(&batch.kinds) {
            let a = v6.decide_one(&snap, p);
            let b = base.decide(p, true, NOW_NS);
            // The baseline has no fragment memory: it drops later fragments
            // whose first fragment v6fw accepted.
            if *kind != v6fw_testkit::packets::Kind::LaterFragment
                && *kind != v6fw_testkit::packets::Kind::FirstFragment
            {
                assert_eq!(a, b, "{kind:?}");
            }
            assert_eq!(b, base_pl.decide(p, true, NOW_NS));
            assert_eq!(b, base_sw.decide(p, true, NOW_NS));
        }
    }

    #[test]
    fn port_lookups_change() {
        let s = ArcSwapPorts::new(PairSet::new());
        s.open(9, 6);
        assert!(s.contains(9, 6));
        s.close(9, 6);
        assert!(!s.contains(9, 6));
    }
}
