//! Packet generators: every packet kind the benchmarks and fuzz seeds use,
//! built with etherparse's [`PacketBuilder`] (the field's parser and writer),
//! plus the mixed batch the throughput figures are measured on.
//!
//! Addresses follow one convention so state can be replayed: the local host
//! is [`LOCAL`], remote peers are [`remote`]`(n)`. Inbound packets go from a
//! remote peer to [`LOCAL`]; outbound packets the other way.

use v6fw_engine::wire::Ipv6Packet;

use etherparse::{
    IpFragOffset, IpHeaders, IpNumber, Ipv6Extensions, Ipv6FlowLabel, Ipv6FragmentHeader,
    Ipv6Header, Ipv6RawExtHeader, Ipv6RoutingExtensions, PacketBuilder,
};

/// The local host's address (2001:db8::1).
pub const LOCAL: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

/// Ports the benchmark policy opens on the connection (TCP and UDP).
pub const OPEN_TCP: [u16; 4] = [22, 80, 443, 8080];
/// UDP ports the benchmark policy opens on the connection.
pub const OPEN_UDP: [u16; 2] = [53, 123];

/// A remote peer's address (2001:db8:1::n).
pub fn remote(n: u16) -> [u8; 16] {
    let mut a = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let [hi, lo] = n.to_be_bytes();
    a[14] = hi;
    a[15] = lo;
    a
}

/// A small, fast, deterministic generator (xorshift64*), so batches are the
/// same in every run without a `rand` dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (0 is replaced by a fixed odd constant).
    pub fn new(seed: u64) -> Self {
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n` (`n` > 0; 0 gives 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// A random element of a non-empty slice (the first on an empty one: never used so).
    pub fn pick<T: Copy + Default>(&mut self, items: &[T]) -> T {
        let i = usize::try_from(self.below(items.len() as u64)).unwrap_or(0);
        items.get(i).copied().unwrap_or_default()
    }
}

fn finish<B>(write: B) -> Vec<u8>
where
    B: FnOnce(&mut Vec<u8>) -> bool,
{
    let mut out = Vec::with_capacity(128);
    if !write(&mut out) {
        out.clear();
    }
    out
}

/// An inbound TCP SYN from `remote(peer)`:`sport` to [`LOCAL`]:`dport`.
pub fn tcp_syn(peer: u16, sport: u16, dport: u16) -> Vec<u8> {
    finish(|out| {
        PacketBuilder::ipv6(remote(peer), LOCAL, 64)
            .tcp(sport, dport, 1, 65_535)
            .syn()
            .write(out, &[])
            .is_ok()
    })
}

/// An outbound TCP ACK from [`LOCAL`]:`sport` to `remote(peer)`:`dport`
/// (records a flow whose replies are `established`).
pub fn tcp_out(peer: u16, sport: u16, dport: u16) -> Vec<u8> {
    finish(|out| {
        PacketBuilder::ipv6(LOCAL, remote(peer), 64)
            .tcp(sport, dport, 1, 65_535)
            .ack(1)
            .write(out, &[0u8; 32])
            .is_ok()
    })
}

/// The reply to [`tcp_out`]: inbound from `remote(peer)`:`rport` to [`LOCAL`]:`lport`.
pub fn tcp_reply(peer: u16, rport: u16, lport: u16) -> Vec<u8> {
    finish(|out| {
        PacketBuilder::ipv6(remote(peer), LOCAL, 64)
            .tcp(rport, lport, 1, 65_535)
            .ack(2)
            .write(out, &[0u8; 64])
            .is_ok()
    })
}

/// An inbound UDP datagram with a 32-byte payload.
pub fn udp(peer: u16, sport: u16, dport: u16) -> Vec<u8> {
    finish(|out| {
        PacketBuilder::ipv6(remote(peer), LOCAL, 64)
            .udp(sport, dport)
            .write(out, &[0u8; 32])
            .is_ok()
    })
}

/// An outbound UDP datagram (records a flow).
pub fn udp_out(peer: u16, sport: u16, dport: u16) -> Vec<u8> {
    finish(|out| {
        PacketBuilder::ipv6(LOCAL, remote(peer), 64)
            .udp(sport, dport)
            .write(out, &[0u8; 16])
            .is_ok()
    })
}

/// An inbound ICMPv6 message of type `ty` with hop limit `hop_limit` and a
/// 24-byte body (the size of a neighbour solicitation's target and option).
pub fn icmpv6(peer: u16, ty: u8, hop_limit: u8) -> Vec<u8> {
    finish(|out| {
        PacketBuilder::ipv6(remote(peer), LOCAL, hop_limit)
            .icmpv6_raw(ty, 0, [0; 4])
            .write(out, &[0u8; 20])
            .is_ok()
    })
}

/// An inbound neighbour solicitation (type 135) with hop limit 255: accepted.
pub fn icmpv6_ndp(peer: u16) -> Vec<u8> {
    icmpv6(peer, 135, 255)
}

fn raw_ext(next: IpNumber, payload: &[u8]) -> Option<Ipv6RawExtHeader> {
    Ipv6RawExtHeader::new_raw(next, payload).ok()
}

fn ipv6_header(src: [u8; 16], dst: [u8; 16]) -> Ipv6Header {
    Ipv6Header {
        traffic_class: 0,
        flow_label: Ipv6FlowLabel::ZERO,
        payload_length: 0,
        next_header: IpNumber::TCP,
        hop_limit: 64,
        source: src,
        destination: dst,
    }
}

/// An inbound TCP SYN behind three extension headers: hop-by-hop (PadN),
/// destination options (PadN) and a type 2 routing header, in RFC 8200 order.
pub fn ext_chain3(peer: u16, sport: u16, dport: u16) -> Vec<u8> {
    // PadN option of 4 bytes of padding: 6 bytes of options in all.
    let padn = [1u8, 4, 0, 0, 0, 0];
    // Routing type 2, segments left 0, 4 reserved bytes, one 16-byte address.
    let mut routing = vec![2u8, 0, 0, 0, 0, 0];
    routing.extend_from_slice(&LOCAL);
    let exts = Ipv6Extensions {
        hop_by_hop_options: raw_ext(IpNumber::IPV6_DESTINATION_OPTIONS, &padn),
        destination_options: raw_ext(IpNumber::IPV6_ROUTE_HEADER, &padn),
        routing: raw_ext(IpNumber::TCP, &routing).map(|routing| Ipv6RoutingExtensions {
            routing,
            final_destination_options: None,
        }),
        fragment: None,
        auth: None,
    };
    finish(|out| {
        PacketBuilder::ip(IpHeaders::Ipv6(ipv6_header(remote(peer), LOCAL), exts))
            .tcp(sport, dport, 1, 65_535)
            .syn()
            .write(out, &[])
            .is_ok()
    })
}

/// An inbound fragment of a UDP datagram with identification `id`. A first
/// fragment (`offset` 0, M = 1) carries the UDP header; a later one (`offset`
/// in 8-octet units, > 0) carries 64 bytes of payload only.
pub fn udp_fragment(peer: u16, dport: u16, id: u32, offset: u16) -> Vec<u8> {
    let frag_offset = IpFragOffset::try_new(offset).unwrap_or(IpFragOffset::ZERO);
    let exts = Ipv6Extensions {
        fragment: Some(Ipv6FragmentHeader::new(
            IpNumber::UDP,
            frag_offset,
            offset == 0,
            id,
        )),
        ..Default::default()
    };
    let header = ipv6_header(remote(peer), LOCAL);
    if offset == 0 {
        return finish(|out| {
            PacketBuilder::ip(IpHeaders::Ipv6(header, exts))
                .udp(40_000, dport)
                .write(out, &[0u8; 64])
                .is_ok()
        });
    }
    // A later fragment has no UDP header: write the fixed header and the
    // fragment header with etherparse, then the raw payload.
    let mut header = header;
    header.next_header = IpNumber::IPV6_FRAGMENTATION_HEADER;
    header.payload_length = 8 + 64;
    let mut out = Vec::with_capacity(112);
    let ok =
        header.write(&mut out).is_ok() && exts.fragment.is_some_and(|f| f.write(&mut out).is_ok());
    if !ok {
        out.clear();
    }
    out.extend_from_slice(&[0u8; 64]);
    out
}

/// A first fragment (offset 0, M = 1) of a UDP datagram to `dport`.
pub fn first_fragment(peer: u16, dport: u16, id: u32) -> Vec<u8> {
    udp_fragment(peer, dport, id, 0)
}

/// A malformed packet: a TCP SYN whose payload length claims 100 bytes more
/// than the packet has (SPEC step 2: `drop malformed`).
pub fn malformed(peer: u16, dport: u16) -> Vec<u8> {
    let mut p = tcp_syn(peer, 50_000, dport);
    if let Ok(mut ip) = Ipv6Packet::new_checked(&mut p[..]) {
        let len = ip.payload_len().saturating_add(100);
        ip.set_payload_len(len);
    }
    p
}

/// What a packet of a batch is, for reports and for the baseline's setup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// TCP SYN to an open port.
    TcpOpen,
    /// TCP SYN to a closed port.
    TcpClosed,
    /// TCP reply of a flow recorded by [`MixedBatch::outbound`].
    TcpEstablished,
    /// UDP to an open or closed port.
    Udp,
    /// UDP reply of a recorded flow.
    UdpEstablished,
    /// ICMPv6 echo request or neighbour discovery.
    Icmp,
    /// Three extension headers then TCP.
    ExtChain,
    /// First fragment of a UDP datagram.
    FirstFragment,
    /// Later fragment of the same datagram.
    LaterFragment,
    /// Payload length larger than the packet.
    Malformed,
}

/// A pre-generated batch of inbound packets plus the outbound packets that
/// must be decided first so that the `established` ones are replies.
#[derive(Debug, Clone)]
pub struct MixedBatch {
    /// Outbound packets (TCP and UDP) recording the flows the replies belong to.
    pub outbound: Vec<Vec<u8>>,
    /// The inbound packets, in batch order.
    pub packets: Vec<Vec<u8>>,
    /// What each inbound packet is.
    pub kinds: Vec<Kind>,
}

impl MixedBatch {
    /// A deterministic mix of `n` inbound packets, resembling a busy host's
    /// inbound traffic: 30 % TCP (half to open ports), 20 % replies of tracked
    /// flows, 20 % UDP, 10 % ICMPv6, 5 % extension-header chains, 6 %
    /// fragments (first and later), 4 % malformed, 5 % TCP to random ports.
    pub fn new(n: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut batch = MixedBatch {
            outbound: Vec::new(),
            packets: Vec::with_capacity(n),
            kinds: Vec::with_capacity(n),
        };
        let mut frag_id = 1u32;
        while batch.packets.len() < n {
            let peer = u16::try_from(rng.below(1_000)).unwrap_or(0) + 1;
            let eph = 32_768 + u16::try_from(rng.below(28_000)).unwrap_or(0);
            let roll = rng.below(100);
            let (pkt, kind) = match roll {
                0..=14 => (tcp_syn(peer, eph, rng.pick(&OPEN_TCP)), Kind::TcpOpen),
                15..=29 => (tcp_syn(peer, eph, 1_000 + (eph % 1_000)), Kind::TcpClosed),
                30..=39 => {
                    batch.outbound.push(tcp_out(peer, eph, 443));
                    (tcp_reply(peer, 443, eph), Kind::TcpEstablished)
                }
                40..=49 => {
                    batch.outbound.push(udp_out(peer, eph, 53));
                    (udp(peer, 53, eph), Kind::UdpEstablished)
                }
                50..=59 => (udp(peer, eph, rng.pick(&OPEN_UDP)), Kind::Udp),
                60..=69 => (udp(peer, eph, 2_000 + (eph % 1_000)), Kind::Udp),
                70..=74 => (icmpv6(peer, 128, 64), Kind::Icmp),
                75..=79 => (icmpv6_ndp(peer), Kind::Icmp),
                80..=84 => (ext_chain3(peer, eph, rng.pick(&OPEN_TCP)), Kind::ExtChain),
                85..=87 => {
                    frag_id += 1;
                    (first_fragment(peer, 53, frag_id), Kind::FirstFragment)
                }
                88..=90 => (udp_fragment(peer, 53, frag_id, 9), Kind::LaterFragment),
                91..=94 => (malformed(peer, 22), Kind::Malformed),
                _ => (
                    tcp_syn(peer, eph, u16::try_from(rng.below(65_535)).unwrap_or(0) + 1),
                    Kind::TcpClosed,
                ),
            };
            batch.packets.push(pkt);
            batch.kinds.push(kind);
        }
        batch
    }

    /// Total bytes of the inbound packets.
    pub fn bytes(&self) -> usize {
        self.packets.iter().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use v6fw_engine::walk::{walk, Outcome};

    #[test]
    fn generators_build_what_they_say() {
        assert_eq!(
            walk(&tcp_syn(1, 1000, 22), false).outcome(),
            Outcome::Complete
        );
        assert_eq!(walk(&udp(1, 1000, 53), false).outcome(), Outcome::Complete);
        assert_eq!(walk(&icmpv6_ndp(1), false).hop_limit(), 255);
        let chain = ext_chain3(1, 1000, 22);
        let chain = walk(&chain, false);
        assert_eq!(
            (chain.outcome(), chain.ext_headers()),
            (Outcome::Complete, 3)
        );
        let first = first_fragment(1, 53, 7);
        let first = walk(&first, false);
        assert!(first.is_first_fragment());
        assert_eq!(first.outcome(), Outcome::Complete);
        let later = udp_fragment(1, 53, 7, 9);
        let later = walk(&later, false);
        assert_eq!(later.outcome(), Outcome::LaterFragment);
        assert_eq!(walk(&malformed(1, 22), false).outcome(), Outcome::BadLength);
    }

    #[test]
    fn mixed_batch_is_deterministic_and_full() {
        let a = MixedBatch::new(1_024, 7);
        let b = MixedBatch::new(1_024, 7);
        assert_eq!(a.packets, b.packets);
        assert_eq!(a.packets.len(), 1_024);
        assert!(a.packets.iter().all(|p| !p.is_empty()));
        assert!(!a.outbound.is_empty());
    }
}
