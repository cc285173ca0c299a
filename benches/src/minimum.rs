//! The least SPEC.md lets a decision of a TCP SYN or UDP datagram without
//! extension headers cost: a measurement of issue 18's goal, not a firewall.
//!
//! [`SpecMinimum`] does, for that one shape of packet, only what SPEC.md's
//! steps 1, 2, 3 and 6 require — version, the two length checks, the
//! connection's switch, TCP's or UDP's length check, the own pairs, then the
//! global pairs — and counts the reason, with the engine's wire views and
//! one bitset per (connection, protocol, own/global), and nothing general:
//! no extension headers, fragments, ICMPv6, scopes, Jumbo payloads or flow
//! table. It answers `None` for every packet that would need one of those.
//! Timed beside `kind/tcp_syn/v6fw` (as `kind/tcp_syn/spec_minimum`) it shows
//! how far from the floor a decision can get at best, whatever its design.

use v6fw_engine::wire::next_header::{TCP, UDP};
use v6fw_engine::wire::{version_of, Ipv6Packet, TcpPacket, UdpPacket, IPV6_VERSION};
use v6fw_engine::{Policy, PortPair, Protocol, Reason};

use crate::baseline::BatchDecider;

/// One bit per port. Its own bitsets, not the engine's `Snapshot` and
/// `PortSet`: a bound must not carry one design's costs. Read through the
/// engine's snapshot (`Snapshot::connection`, `PortSet::contains`) the same
/// decider took 84 instructions per TCP SYN instead of 64 (2026-12-03).
type Bits = Box<[u64; 1024]>;

/// One connection's pairs: own and effective global, TCP and UDP.
struct Conn {
    enabled: bool,
    own: [Bits; 2],
    global: [Bits; 2],
}

/// The special-purpose decider; see the module's doc.
pub struct SpecMinimum {
    /// By interface index (an index, as the engine's snapshot has).
    conns: Vec<Option<Conn>>,
    counts: [u64; Reason::COUNT],
}

/// Bitsets of `pairs`, for TCP and UDP.
fn bits_of(pairs: impl Iterator<Item = PortPair>) -> [Bits; 2] {
    let mut bits = [Box::new([0u64; 1024]), Box::new([0u64; 1024])];
    for pair in pairs {
        let proto = usize::from(pair.protocol() == Protocol::Udp);
        let port = pair.port();
        if let Some(w) = bits
            .get_mut(proto)
            .and_then(|b| b.get_mut(usize::from(port >> 6)))
        {
            *w |= 1 << (port & 63);
        }
    }
    bits
}

/// Whether `port` is set in `bits`.
#[inline(always)]
fn has(bits: &Bits, port: u16) -> bool {
    bits.get(usize::from(port >> 6))
        .is_some_and(|w| (w >> (port & 63)) & 1 == 1)
}

impl SpecMinimum {
    /// The decider for `policy`'s connections, or `None` when a pair of it
    /// has a scope (which this decider does not implement).
    pub fn new(policy: &Policy) -> Option<Self> {
        let scoped = policy.globals.values().any(|o| !o.from.is_any())
            || policy
                .connections
                .values()
                .any(|c| c.open.values().any(|o| !o.from.is_any()));
        if scoped {
            return None;
        }
        let mut conns: Vec<Option<Conn>> = Vec::new();
        for c in policy.connections.values() {
            let at = usize::try_from(c.if_index).ok()?;
            if conns.len() <= at {
                conns.resize_with(at + 1, || None);
            }
            let conn = Conn {
                enabled: c.enabled,
                own: bits_of(c.open.keys().copied()),
                global: bits_of(c.effective_globals(&policy.globals)),
            };
            *conns.get_mut(at)? = Some(conn);
        }
        Some(SpecMinimum {
            conns,
            counts: [0; Reason::COUNT],
        })
    }

    /// Decides one inbound packet on interface `if_index` and counts its
    /// reason; `None` for a packet outside what this decider implements.
    #[inline(always)]
    pub fn decide(&mut self, pkt: &[u8], if_index: u32) -> Option<Reason> {
        let reason = self.reason(pkt, if_index)?;
        if let Some(n) = self.counts.get_mut(reason as usize) {
            *n += 1;
        }
        Some(reason)
    }

    #[inline(always)]
    fn reason(&self, pkt: &[u8], if_index: u32) -> Option<Reason> {
        if version_of(pkt) != Some(IPV6_VERSION) {
            return Some(Reason::NotIpv6);
        }
        let Ok(ip) = Ipv6Packet::new_checked(pkt) else {
            return Some(Reason::Malformed);
        };
        if ip.payload_len() == 0 {
            return None; // a Jumbo payload, or malformed: not implemented
        }
        let Some(data) = pkt.get(..ip.declared_end()) else {
            return Some(Reason::Malformed);
        };
        let conn = self
            .conns
            .get(usize::try_from(if_index).ok()?)
            .and_then(Option::as_ref)?;
        if !conn.enabled {
            return Some(Reason::FirewallDisabled);
        }
        let l4 = data.get(Ipv6Packet::<&[u8]>::HEADER_LEN..)?;
        let (proto, dport) = match ip.next_header() {
            TCP => match TcpPacket::new_checked(l4) {
                Ok(t)
                    if t.flags() & (TcpPacket::<&[u8]>::SYN | TcpPacket::<&[u8]>::ACK)
                        == TcpPacket::<&[u8]>::SYN =>
                {
                    (0, t.dst_port())
                }
                Ok(_) => return None, // may be a reply: needs the flow table
                Err(_) => return Some(Reason::Malformed),
            },
            UDP => match UdpPacket::new_checked(l4) {
                Ok(u) => (1, u.dst_port()),
                Err(_) => return Some(Reason::Malformed),
            },
            _ => return None, // extension headers, ICMPv6, others: not implemented
        };
        if conn.own.get(proto).is_some_and(|b| has(b, dport)) {
            Some(Reason::OpenPort)
        } else if conn.global.get(proto).is_some_and(|b| has(b, dport)) {
            Some(Reason::GlobalPort)
        } else if proto == 0 {
            Some(Reason::PortClosed) // a SYN without ACK is never a reply
        } else {
            None // UDP may be a reply: needs the flow table
        }
    }

    /// How many packets were counted with `reason`.
    pub fn count(&self, reason: Reason) -> u64 {
        self.counts.get(reason as usize).copied().unwrap_or(0)
    }
}

impl BatchDecider for SpecMinimum {
    /// Decides every packet of `batch` on the benchmark's interface; returns
    /// how many it accepted (a packet it does not implement is not one).
    #[inline]
    fn decide_batch(&mut self, batch: &[Vec<u8>]) -> usize {
        batch
            .iter()
            .filter(|p| {
                self.decide(p, crate::baseline::IF_INDEX)
                    .is_some_and(|r| r.verdict() == v6fw_engine::Verdict::Accept)
            })
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::{bench_engine, bench_policy, IF_INDEX, NOW_NS};
    use v6fw_engine::PacketMeta;
    use v6fw_testkit::packets::{self, MixedBatch, OPEN_TCP, OPEN_UDP};

    /// Wherever it answers, it answers as the engine does: on the mixed
    /// batch, and on a SYN and a datagram to every open port and a closed one.
    #[test]
    fn agrees_with_the_engine_where_it_answers() {
        let engine = bench_engine();
        let mut worker = engine.worker();
        let snap = engine.table().pin();
        let Some(mut min) = SpecMinimum::new(&bench_policy()) else {
            panic!("the bench policy has no scope");
        };
        let mut batch = MixedBatch::new(1_024, 1).packets;
        for &p in OPEN_TCP.iter().chain([&2_000]) {
            batch.push(packets::tcp_syn(1, 40_000, p));
        }
        for &p in OPEN_UDP.iter().chain([&2_000]) {
            batch.push(packets::udp(1, 40_000, p));
        }
        let mut answered = 0;
        for p in &batch {
            let want = worker.decide(&snap, p, &PacketMeta::inbound(IF_INDEX, NOW_NS));
            if let Some(got) = min.decide(p, IF_INDEX) {
                assert_eq!(got, want.reason, "packet {p:02x?}");
                answered += 1;
            }
        }
        assert!(answered > 300, "answered only {answered}");
        assert!(min.count(Reason::OpenPort) > 0 && min.count(Reason::GlobalPort) > 0);
        assert!(min.count(Reason::PortClosed) > 0);
        // What it does not implement, it does not answer.
        assert_eq!(min.decide(&packets::icmpv6_ndp(1), IF_INDEX), None);
        assert_eq!(
            min.decide(&packets::ext_chain3(1, 40_000, 22), IF_INDEX),
            None
        );
        assert_eq!(min.decide(&packets::tcp_syn(1, 40_000, 22), 9), None);
    }
}
