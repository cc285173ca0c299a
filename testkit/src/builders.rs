//! Packets between given addresses, for the engine's, capture's and api's
//! tests.
//!
//! Simple packets come whole from etherparse's `PacketBuilder`. Chains that
//! `PacketBuilder` cannot express (repeated or misplaced extension headers,
//! truncated headers) are assembled from etherparse's own header types
//! (`Ipv6Header`, `Ipv6RawExtHeader`, `Ipv6FragmentHeader`, `IpAuthHeader`,
//! `TcpHeader`, `UdpHeader`), each serialized with `to_bytes`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test packets of known sizes: a builder that fails should fail its test loudly"
)]

use etherparse::{
    IpAuthHeader, IpFragOffset, IpNumber, Ipv6FlowLabel, Ipv6FragmentHeader, Ipv6Header,
    Ipv6RawExtHeader, PacketBuilder, TcpHeader, UdpHeader,
};

/// This host.
pub const LOCAL: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
/// A peer.
pub const REMOTE: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
/// Another peer.
pub const OTHER: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3];
/// A multicast source, ff02::1 (SPEC.md step 3: `bad_address`).
pub const MULTICAST_SRC: [u8; 16] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

// ---------------------------------------------------------------------------
// Whole packets from PacketBuilder.

/// A TCP segment with ACK set (mid-connection: it may match a flow).
pub fn tcp_pkt(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16) -> Vec<u8> {
    tcp_flags_pkt(src, dst, sport, dport, TCP_ACK)
}

/// TCP flag FIN.
pub const TCP_FIN: u8 = 0x01;
/// TCP flag SYN.
pub const TCP_SYN: u8 = 0x02;
/// TCP flag RST.
pub const TCP_RST: u8 = 0x04;
/// TCP flag ACK.
pub const TCP_ACK: u8 = 0x10;

/// A TCP segment with exactly these flags (the checksum is not fixed up:
/// v6fw does not validate it).
pub fn tcp_flags_pkt(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut h = etherparse::TcpHeader::new(sport, dport, 1, 1024);
    h.fin = flags & 0x01 != 0;
    h.syn = flags & 0x02 != 0;
    h.rst = flags & 0x04 != 0;
    h.psh = flags & 0x08 != 0;
    h.ack = flags & 0x10 != 0;
    h.urg = flags & 0x20 != 0;
    h.ece = flags & 0x40 != 0;
    h.cwr = flags & 0x80 != 0;
    let b = PacketBuilder::ipv6(src, dst, 64).tcp_header(h);
    let mut v = Vec::with_capacity(b.size(4));
    b.write(&mut v, &[1, 2, 3, 4]).unwrap();
    v
}

/// A TCP SYN with no payload (as a client opens a connection).
pub fn tcp_syn_pkt(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv6(src, dst, 64)
        .tcp(sport, dport, 1, 1024)
        .syn()
        .write(&mut v, &[])
        .unwrap();
    v
}

/// A UDP datagram with 4 payload bytes.
pub fn udp_pkt(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16) -> Vec<u8> {
    let b = PacketBuilder::ipv6(src, dst, 64).udp(sport, dport);
    let mut v = Vec::with_capacity(b.size(4));
    b.write(&mut v, &[1, 2, 3, 4]).unwrap();
    v
}

/// Inbound TCP from REMOTE:40000 to LOCAL:dport.
pub fn tcp_in(dport: u16) -> Vec<u8> {
    tcp_pkt(REMOTE, LOCAL, 40_000, dport)
}

/// Inbound UDP from REMOTE:40000 to LOCAL:dport.
pub fn udp_in(dport: u16) -> Vec<u8> {
    udp_pkt(REMOTE, LOCAL, 40_000, dport)
}

/// An ICMPv6 message REMOTE -> LOCAL of this type and code (8 bytes of body).
pub fn icmp_pkt(ty: u8, code: u8, hop_limit: u8) -> Vec<u8> {
    let b = PacketBuilder::ipv6(REMOTE, LOCAL, hop_limit).icmpv6_raw(ty, code, [0; 4]);
    let mut v = Vec::with_capacity(b.size(8));
    b.write(&mut v, &[0; 8]).unwrap();
    v
}

/// An IPv6 packet whose upper layer is `proto` with `payload` as its bytes.
pub fn raw_ip_pkt(proto: u8, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv6(REMOTE, LOCAL, 64);
    let mut v = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut v, IpNumber(proto), payload).unwrap();
    v
}

// ---------------------------------------------------------------------------
// Hand-assembled chains.

/// An extension header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ext {
    /// Hop-by-hop options (8 bytes, PadN).
    Hbh,
    /// Hop-by-hop options holding a Jumbo Payload option with this value.
    Jumbo(u32),
    /// Destination options (8 bytes).
    Dst,
    /// Routing header of this type, segments left 0 (8 bytes).
    Routing(u8),
    /// Fragment header.
    Frag {
        /// Fragment offset, in 8-byte units.
        offset: u16,
        /// The M flag (more fragments follow).
        more: bool,
        /// Identification.
        id: u32,
    },
    /// Authentication header (12 bytes, no ICV).
    Auth,
}

impl Ext {
    /// Its Next Header number.
    pub const fn number(self) -> u8 {
        match self {
            Ext::Hbh | Ext::Jumbo(_) => 0,
            Ext::Dst => 60,
            Ext::Routing(_) => 43,
            Ext::Frag { .. } => 44,
            Ext::Auth => 51,
        }
    }

    /// A first fragment (offset 0, more follow).
    pub const fn first(id: u32) -> Ext {
        Ext::Frag {
            offset: 0,
            more: true,
            id,
        }
    }

    /// A later fragment (offset 185, more follow).
    pub const fn later(id: u32) -> Ext {
        Ext::Frag {
            offset: 185,
            more: true,
            id,
        }
    }

    /// An atomic fragment (offset 0, no more).
    pub const fn atomic(id: u32) -> Ext {
        Ext::Frag {
            offset: 0,
            more: false,
            id,
        }
    }

    fn bytes(self, next: u8) -> Vec<u8> {
        let next = IpNumber(next);
        match self {
            Ext::Hbh | Ext::Dst => Ipv6RawExtHeader::new_raw(next, &[1, 4, 0, 0, 0, 0])
                .unwrap()
                .to_bytes()
                .to_vec(),
            Ext::Jumbo(len) => {
                let l = len.to_be_bytes();
                Ipv6RawExtHeader::new_raw(next, &[0xC2, 4, l[0], l[1], l[2], l[3]])
                    .unwrap()
                    .to_bytes()
                    .to_vec()
            }
            Ext::Routing(ty) => Ipv6RawExtHeader::new_raw(next, &[ty, 0, 0, 0, 0, 0])
                .unwrap()
                .to_bytes()
                .to_vec(),
            Ext::Frag { offset, more, id } => {
                Ipv6FragmentHeader::new(next, IpFragOffset::try_new(offset).unwrap(), more, id)
                    .to_bytes()
                    .to_vec()
            }
            Ext::Auth => IpAuthHeader::new(next, 0x1234, 1, &[])
                .unwrap()
                .to_bytes()
                .to_vec(),
        }
    }
}

/// The upper layer of a hand-assembled chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum L4 {
    /// A TCP SYN header (20 bytes).
    Tcp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
    },
    /// A UDP header (8 bytes).
    Udp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
    },
    /// An ICMPv6 header of this type (8 bytes).
    Icmp {
        /// The ICMPv6 type.
        ty: u8,
    },
    /// Any protocol number with these bytes (59 for "no next header").
    Raw(u8, Vec<u8>),
}

impl L4 {
    /// Its protocol number.
    pub fn number(&self) -> u8 {
        match self {
            L4::Tcp { .. } => 6,
            L4::Udp { .. } => 17,
            L4::Icmp { .. } => 58,
            L4::Raw(n, _) => *n,
        }
    }

    /// Its bytes.
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            L4::Tcp { sport, dport } => {
                let mut h = TcpHeader::new(*sport, *dport, 1, 1024);
                h.syn = true;
                h.to_bytes().to_vec()
            }
            L4::Udp { sport, dport } => UdpHeader {
                source_port: *sport,
                destination_port: *dport,
                length: 8,
                checksum: 0,
            }
            .to_bytes()
            .to_vec(),
            L4::Icmp { ty } => vec![*ty, 0, 0, 0, 0, 0, 0, 0],
            L4::Raw(_, b) => b.clone(),
        }
    }
}

/// TCP from port 40000 to `dport`.
pub fn tcp_to(dport: u16) -> L4 {
    L4::Tcp {
        sport: 40_000,
        dport,
    }
}

/// UDP from port 40000 to `dport`.
pub fn udp_to(dport: u16) -> L4 {
    L4::Udp {
        sport: 40_000,
        dport,
    }
}

/// A packet description: addresses, hop limit, extension headers, upper layer.
#[derive(Debug, Clone)]
pub struct Chain {
    /// Source address.
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
    /// Hop limit.
    pub hop_limit: u8,
    /// The extension headers, in order.
    pub exts: Vec<Ext>,
    /// The upper layer.
    pub l4: L4,
}

impl Chain {
    /// Inbound REMOTE -> LOCAL, hop limit 64.
    pub fn new(exts: &[Ext], l4: L4) -> Self {
        Chain {
            src: REMOTE,
            dst: LOCAL,
            hop_limit: 64,
            exts: exts.to_vec(),
            l4,
        }
    }

    /// The same chain from `src`.
    pub fn from(mut self, src: [u8; 16]) -> Self {
        self.src = src;
        self
    }

    /// Swaps source and destination (an outbound packet from LOCAL).
    pub fn outbound(mut self) -> Self {
        std::mem::swap(&mut self.src, &mut self.dst);
        self
    }

    /// Fixed header + headers + upper bytes, payload length set to what follows
    /// the fixed header (0 when a Jumbo option is present). When a fragment
    /// header has M = 1, zeros after the upper bytes make the fragment a
    /// multiple of 8 bytes long, as a sender must (RFC 8200 §4.5);
    /// [`Chain::build_cut`] and [`Chain::build_unpadded`] do not pad.
    pub fn build(&self) -> Vec<u8> {
        let mut v = self.build_unpadded();
        if let Some(end) = self.fragment_end() {
            let len = v.len() - end;
            v.resize(v.len() + (8 - len % 8) % 8, 0);
            if !self.exts.iter().any(|e| matches!(e, Ext::Jumbo(_))) {
                set_payload_length(&mut v);
            }
        }
        v
    }

    /// Where the last fragment header with M = 1 ends, if there is one.
    fn fragment_end(&self) -> Option<usize> {
        let mut at = v6fw_engine::wire::Ipv6Packet::<&[u8]>::HEADER_LEN;
        let mut end = None;
        for (i, e) in self.exts.iter().enumerate() {
            let next = self.exts.get(i + 1).map_or(0, |n| n.number());
            at += e.bytes(next).len();
            if matches!(e, Ext::Frag { more: true, .. }) {
                end = Some(at);
            }
        }
        end
    }

    /// [`Chain::build`] without the padding of a fragment with M = 1.
    pub fn build_unpadded(&self) -> Vec<u8> {
        let mut body = Vec::new();
        for (i, e) in self.exts.iter().enumerate() {
            let next = self
                .exts
                .get(i + 1)
                .map_or_else(|| self.l4.number(), |n| n.number());
            body.extend(e.bytes(next));
        }
        body.extend(self.l4.bytes());
        let jumbo = self.exts.iter().any(|e| matches!(e, Ext::Jumbo(_)));
        let payload_length = if jumbo {
            0
        } else {
            u16::try_from(body.len()).unwrap()
        };
        let first = self
            .exts
            .first()
            .map_or_else(|| self.l4.number(), |e| e.number());
        let fixed = Ipv6Header {
            traffic_class: 0,
            flow_label: Ipv6FlowLabel::ZERO,
            payload_length,
            next_header: IpNumber(first),
            hop_limit: self.hop_limit,
            source: self.src,
            destination: self.dst,
        };
        let mut v = fixed.to_bytes().to_vec();
        v.extend(body);
        v
    }

    /// Built, then cut short by `n` bytes with the payload length fixed up,
    /// so only the headers' own sizes are wrong (not step 2).
    pub fn build_cut(&self, n: usize) -> Vec<u8> {
        let mut v = self.build_unpadded();
        v.truncate(v.len() - n);
        set_payload_length(&mut v);
        v
    }
}

/// Sets the payload length to the bytes after the fixed header.
pub fn set_payload_length(v: &mut [u8]) {
    let header = v6fw_engine::wire::Ipv6Packet::<&[u8]>::HEADER_LEN;
    let len = u16::try_from(v.len() - header).unwrap();
    v6fw_engine::wire::Ipv6Packet::new_checked(v)
        .unwrap()
        .set_payload_len(len);
}

/// Eight headers of allowed kinds: hop-by-hop, 2 destination options,
/// 3 routing, 2 AH.
pub fn eight() -> Vec<Ext> {
    vec![
        Ext::Hbh,
        Ext::Dst,
        Ext::Routing(2),
        Ext::Auth,
        Ext::Routing(4),
        Ext::Auth,
        Ext::Routing(2),
        Ext::Dst,
    ]
}
