//! A zero-copy, allocation-free, panic-free walk of the IPv6 header chain.
//!
//! [`walk`] reads a packet once, front to back, through the views of
//! [`crate::wire`], and stops at the first violation SPEC.md names (steps 1,
//! 2, 4, 5 and the length checks of step 6). It copies nothing: the [`Walk`]
//! it returns borrows the packet and holds only where the upper layer starts
//! and what the decision needs that the bytes do not say directly (how the
//! walk ended, the fragment header's place); addresses, ports and flags are
//! read from the packet when asked for.

use crate::wire::next_header::{
    is_extension, DEST_OPTS, FRAGMENT, HOP_BY_HOP, ICMPV6, NO_NEXT, ROUTING, TCP, UDP,
};
use crate::wire::{self, version_of, Icmpv6Packet, Ipv6Packet, TcpPacket, UdpPacket, IPV6_VERSION};
use crate::Reason;

/// The fixed header's length.
const FIXED_LEN: usize = Ipv6Packet::<&[u8]>::HEADER_LEN;
/// Most extension headers a chain may have.
const MAX_EXT_HEADERS: u8 = 8;
/// Most destination-options headers a chain may have.
const MAX_DEST_OPTS: u8 = 2;

/// An IPv6 fragment header's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// Fragment offset in 8-octet units.
    pub offset: u16,
    /// The M (more fragments) flag.
    pub more: bool,
    /// Identification.
    pub id: u32,
    /// Bytes from the end of the fragment header to the end the payload
    /// length (or the jumbo length) declares, whatever was captured: the
    /// fragmentable part (RFC 8200 §4.5), which a first fragment's later
    /// fragments must not overlap (RFC 5722).
    pub fragmentable_len: u32,
}

impl Fragment {
    /// Offset 0 and M = 1: the first of several fragments.
    pub const fn is_first(self) -> bool {
        self.offset == 0 && self.more
    }

    /// Offset 0 and M = 0: an atomic fragment (RFC 6946).
    pub const fn is_atomic(self) -> bool {
        self.offset == 0 && !self.more
    }
}

/// The upper-layer header, once it passed its length check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upper {
    /// Not reached, or it failed its length check.
    None,
    /// TCP header fields.
    Tcp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
        /// Flags byte (CWR ECE URG ACK PSH RST SYN FIN).
        flags: u8,
        /// Window.
        window: u16,
        /// Sequence number (for the firewall log).
        seq: u32,
        /// Acknowledgement number (for the firewall log).
        ack: u32,
    },
    /// UDP header fields.
    Udp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
    },
    /// ICMPv6 type and code.
    Icmp {
        /// Message type.
        ty: u8,
        /// Code.
        code: u8,
    },
    /// Any other protocol: no header size is known, nothing is read.
    Other,
}

/// The packet an ICMPv6 error message quotes: the IPv6 header that starts 8
/// bytes into the message (RFC 4443 §2.4), read for `icmp_errors = "related"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quote {
    /// Too short for an IPv6 header, or for the two ports of a quoted TCP or
    /// UDP header.
    Short,
    /// The quoted packet's header.
    Packet {
        /// Its source (the host, if the host sent it).
        src: [u8; 16],
        /// Its destination.
        dst: [u8; 16],
        /// Its next-header field.
        next_header: u8,
        /// Source and destination port, when the next header is TCP or UDP.
        ports: Option<(u16, u16)>,
    },
}

/// How the walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Step 1 or the 40-byte minimum of step 2 decided the packet (`not_ipv6`
    /// or `malformed`) before any header was walked; the packet has no
    /// usable fields, not even its addresses.
    Invalid(Reason),
    /// Step 2's length check failed on a whole fixed header: the payload
    /// length says more bytes than the packet has, or is 0 without a valid
    /// Jumbo Payload option. Inbound this is `malformed`; outbound the packet
    /// is still `outbound` (SPEC.md: "whatever their shape"). Addresses and
    /// hop limit are filled, nothing else.
    BadLength,
    /// The walk stopped at a violation of step 4, 5 or 6.
    Stop(Reason),
    /// The walk stopped at the fragment header of a non-first fragment.
    LaterFragment,
    /// The upper layer was reached and passed its length check.
    Complete,
}

/// What the decision needs from one packet: how the walk ended and where
/// the headers it needs lie, borrowing the packet (the bytes up to the end
/// its lengths declare, or what was captured of them). Field values are
/// read from the packet on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walk<'a> {
    /// The bytes judged: the packet up to its declared end (the whole
    /// packet when the walk did not get that far).
    data: &'a [u8],
    /// Where the upper-layer header starts (valid once `proto` is set).
    l4: u32,
    /// Where the fragment header starts, 0 when none was read whole.
    frag_at: u32,
    /// The fragment's fragmentable part (see [`Fragment::fragmentable_len`]).
    frag_len: u32,
    /// How the walk ended.
    outcome: Outcome,
    /// Extension headers walked (59 not counted).
    ext_headers: u8,
    /// The TCP flags byte, once a TCP header passed its length check.
    tcp_flags: u8,
    /// The first word of an upper-layer header that passed its length
    /// check, read once by the walk: source and destination port (TCP,
    /// UDP), or type, code and checksum (ICMPv6). The facts every decision
    /// reads; everything else is read from the packet on demand.
    l4_word: u32,
    /// The upper-layer protocol number in the low byte, with [`PROTO_SET`]
    /// once the walk reached it and [`PORTS_SET`], [`COLUMN_SET`] once its
    /// header passed its length check: one 16-bit word, written and read
    /// whole, so each question the decision asks is one bit test (an
    /// `Option<u8>` was stored byte by byte and read back as one word, a
    /// store-forwarding stall on every packet).
    proto: u16,
    /// The `dport` column (TCP/UDP destination port, ICMPv6 type), valid
    /// with [`COLUMN_SET`].
    column: u16,
}

/// The bit of [`Walk::proto`]'s word that says the upper layer was reached.
const PROTO_SET: u16 = 0x100;
/// The bit of [`Walk::proto`]'s word that says a TCP or UDP header passed
/// its length check: [`Walk::l4_word`] holds its ports.
const PORTS_SET: u16 = 0x200;
/// The bit of [`Walk::proto`]'s word that says [`Walk::column`] is set.
const COLUMN_SET: u16 = 0x400;
/// The bit of [`Walk::proto`]'s word that says an ICMPv6 header passed its
/// length check: [`Walk::l4_word`] holds its type, code and checksum.
const ICMP_SET: u16 = 0x800;

impl<'a> Walk<'a> {
    const fn new(data: &'a [u8], outcome: Outcome) -> Walk<'a> {
        Walk {
            data,
            l4: 0,
            frag_at: 0,
            frag_len: 0,
            outcome,
            ext_headers: 0,
            tcp_flags: 0,
            l4_word: 0,
            proto: 0,
            column: 0,
        }
    }

    /// How the walk ended.
    #[inline]
    pub const fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// The fixed header, unless the walk ended before it ([`Outcome::Invalid`]).
    #[inline]
    fn ip(&self) -> Option<Ipv6Packet<&'a [u8]>> {
        match self.outcome {
            Outcome::Invalid(_) => None,
            // Every other outcome passed `new_checked` on these bytes.
            _ => Some(Ipv6Packet::new_unchecked(self.data)),
        }
    }

    /// Source address (zeros for [`Outcome::Invalid`]).
    #[inline]
    pub fn src(&self) -> [u8; 16] {
        *self.src_ref()
    }

    /// Destination address (zeros for [`Outcome::Invalid`]).
    #[inline]
    pub fn dst(&self) -> [u8; 16] {
        *self.dst_ref()
    }

    /// Source address, borrowed from the packet.
    #[inline]
    pub fn src_ref(&self) -> &'a [u8; 16] {
        self.ip().map_or(&[0; 16], |ip| ip.src_addr_ref())
    }

    /// Destination address, borrowed from the packet.
    #[inline]
    pub fn dst_ref(&self) -> &'a [u8; 16] {
        self.ip().map_or(&[0; 16], |ip| ip.dst_addr_ref())
    }

    /// Hop limit (0 for [`Outcome::Invalid`]).
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.ip().map_or(0, |ip| ip.hop_limit())
    }

    /// Jumbo Payload length, when payload length was 0 and the option valid.
    pub fn jumbo(&self) -> Option<u32> {
        self.ip()
            .filter(|ip| ip.payload_len() == 0)
            .and_then(|ip| jumbo_length(&ip))
    }

    /// Extension headers walked (59 not counted).
    #[inline]
    pub const fn ext_headers(&self) -> u8 {
        self.ext_headers
    }

    /// The upper-layer protocol number, once the walk reached it.
    #[inline]
    pub const fn proto(&self) -> Option<u8> {
        if self.proto & PROTO_SET == 0 {
            None
        } else {
            Some((self.proto & 0xff) as u8)
        }
    }

    /// Whether a fragment header was read whole (see [`Walk::fragment`]).
    #[inline]
    pub const fn has_fragment(&self) -> bool {
        self.frag_at != 0
    }

    /// The fragment header, once it was read whole.
    #[inline]
    pub fn fragment(&self) -> Option<Fragment> {
        if self.frag_at == 0 {
            return None;
        }
        let at = usize::try_from(self.frag_at).ok()?;
        let h = wire::ExtHeader::new_checked(self.data.get(at..)?, FRAGMENT).ok()?;
        let f = h.fragment()?;
        Some(Fragment {
            offset: f.offset(),
            more: f.more_fragments(),
            id: f.ident(),
            fragmentable_len: self.frag_len,
        })
    }

    /// The upper-layer header's bytes, once it passed its length check
    /// (the views on them need no second check: the walk made it).
    #[inline]
    fn l4(&self) -> Option<&'a [u8]> {
        match self.outcome {
            Outcome::Complete => self.data.get(usize::try_from(self.l4).ok()?..),
            _ => None,
        }
    }

    /// The upper-layer header, once it passed its length check.
    pub fn upper(&self) -> Upper {
        let Some(l4) = self.l4() else {
            return Upper::None;
        };
        match self.proto() {
            Some(TCP) => {
                let t = TcpPacket::new_unchecked(l4);
                Upper::Tcp {
                    sport: t.src_port(),
                    dport: t.dst_port(),
                    flags: t.flags(),
                    window: t.window_len(),
                    seq: t.seq_number(),
                    ack: t.ack_number(),
                }
            }
            Some(UDP) => {
                let u = UdpPacket::new_unchecked(l4);
                Upper::Udp {
                    sport: u.src_port(),
                    dport: u.dst_port(),
                }
            }
            Some(ICMPV6) => {
                let m = Icmpv6Packet::new_unchecked(l4);
                Upper::Icmp {
                    ty: m.msg_type(),
                    code: m.msg_code(),
                }
            }
            _ => Upper::Other,
        }
    }

    /// For an ICMPv6 error (types 1-4) that passed its length check: what it quotes.
    pub fn quote(&self) -> Option<Quote> {
        let m = Some(Icmpv6Packet::new_unchecked(self.l4()?))
            .filter(|m| self.proto() == Some(ICMPV6) && m.is_error())?;
        Some(m.quoted().map_or(Quote::Short, |q| Quote::Packet {
            src: q.src,
            dst: q.dst,
            next_header: q.next_header,
            ports: q.ports,
        }))
    }

    /// The `dport` column: TCP/UDP destination port, ICMPv6 type.
    #[inline]
    pub const fn dport_column(&self) -> Option<u16> {
        if self.proto & COLUMN_SET == 0 {
            None
        } else {
            Some(self.column)
        }
    }

    /// The ICMPv6 type, once that header passed its length check.
    #[inline]
    pub const fn icmp_type(&self) -> Option<u8> {
        if self.proto & ICMP_SET == 0 {
            None
        } else {
            Some((self.l4_word >> 24) as u8)
        }
    }

    /// Whether this packet is the first of several fragments.
    #[inline]
    pub fn is_first_fragment(&self) -> bool {
        self.fragment().is_some_and(Fragment::is_first)
    }

    /// Protocol, source and destination port of a TCP or UDP header that
    /// passed its length check (so may start a flow).
    #[inline]
    pub const fn ports(&self) -> Option<(u8, u16, u16)> {
        if self.proto & PORTS_SET == 0 {
            None
        } else {
            Some((
                (self.proto & 0xff) as u8,
                (self.l4_word >> 16) as u16,
                self.l4_word as u16,
            ))
        }
    }

    /// The TCP flags byte (`None` unless TCP that passed its length check).
    #[inline]
    pub const fn tcp_flags(&self) -> Option<u8> {
        if self.proto & (PORTS_SET | 0xff) == PORTS_SET | TCP as u16 {
            Some(self.tcp_flags)
        } else {
            None
        }
    }
}

/// One extension header of a packet's chain, where it lies (for explaining
/// a walk: the decision does not use it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtHeader<'a> {
    /// Its protocol number (0, 43, 44, 51 or 60).
    pub kind: u8,
    /// Its byte offset in the packet.
    pub offset: usize,
    /// Its bytes, as long as its length field says (8 for a fragment header).
    pub bytes: &'a [u8],
}

/// The extension headers of `pkt` in chain order, each with its offset, as
/// [`walk`] reads them (same lengths, same protocol numbers), up to the
/// first that is not an extension header or does not fit. Read-only: it
/// checks no order or count, so take [`Walk::ext_headers`] of them to see
/// what the walk saw.
pub fn ext_headers(pkt: &[u8]) -> impl Iterator<Item = ExtHeader<'_>> {
    let mut next = Ipv6Packet::new_checked(pkt).map_or(NO_NEXT, |ip| ip.next_header());
    let mut off = FIXED_LEN;
    std::iter::from_fn(move || {
        if !is_extension(next) {
            return None;
        }
        let h = wire::ExtHeader::new_checked(pkt.get(off..)?, next).ok()?;
        let bytes = h.header_bytes();
        let item = ExtHeader {
            kind: next,
            offset: off,
            bytes,
        };
        next = h.next_header();
        off += bytes.len();
        Some(item)
    })
}

/// Reads the Jumbo Payload option from a hop-by-hop header right after the
/// fixed header. `None` if there is no such header, no such option, or the
/// option is invalid (length not 4, or a value under 65,536 — RFC 2675).
#[cold]
#[inline(never)]
fn jumbo_length(ip: &Ipv6Packet<&[u8]>) -> Option<u32> {
    if ip.next_header() != HOP_BY_HOP {
        return None;
    }
    wire::ExtHeader::new_checked(ip.payload(), HOP_BY_HOP)
        .ok()?
        .jumbo_payload_len()
}

/// Walks one packet. `snap_truncated` says the capture cut the frame short:
/// then the payload-length check of step 2 is skipped and the packet is
/// judged on the bytes it has.
#[inline]
pub fn walk(pkt: &[u8], snap_truncated: bool) -> Walk<'_> {
    match walk_start(pkt, snap_truncated) {
        Start::Walked(w) => w,
        Start::Chain(c) => c.walk(),
    }
}

/// The first part of [`walk`]: the fixed header, and the upper layer when
/// no extension header comes first.
#[derive(Debug, Clone, Copy)]
pub enum Start<'a> {
    /// The walk is over (the common case, or the packet ended it early).
    Walked(Walk<'a>),
    /// An extension header comes first: [`Chain::walk`] goes on.
    Chain(Chain<'a>),
}

/// A packet whose first header after the fixed one is an extension header.
#[derive(Debug, Clone, Copy)]
pub struct Chain<'a> {
    data: &'a [u8],
    declared_end: usize,
    next: u8,
}

impl<'a> Chain<'a> {
    /// Walks the extension headers and the upper layer (off the common path:
    /// most packets have no extension header).
    #[inline(never)]
    pub fn walk(self) -> Walk<'a> {
        let mut w = Walk::new(self.data, Outcome::Complete);
        w.outcome = walk_chain(&mut w, self.declared_end, self.next);
        w
    }
}

/// [`walk`] up to the first extension header. Always inlined: a packet with
/// none is walked in the caller's registers, and a caller that decides it
/// can keep the walk there, calling out only for the [`Start::Chain`] case.
#[inline(always)]
pub fn walk_start(pkt: &[u8], snap_truncated: bool) -> Start<'_> {
    let done = |outcome| Start::Walked(Walk::new(pkt, outcome));
    if version_of(pkt) != Some(IPV6_VERSION) {
        return done(Outcome::Invalid(Reason::NotIpv6));
    }
    let Ok(ip) = Ipv6Packet::new_checked(pkt) else {
        return done(Outcome::Invalid(Reason::Malformed));
    };
    let declared_end = if ip.payload_len() == 0 {
        let Some(j) = jumbo_length(&ip) else {
            return done(Outcome::BadLength); // malformed: payload length 0 without a Jumbo option
        };
        usize::try_from(j)
            .ok()
            .and_then(|j| j.checked_add(FIXED_LEN))
            .unwrap_or(usize::MAX)
    } else {
        ip.declared_end()
    };
    let end = if declared_end <= pkt.len() {
        declared_end
    } else if snap_truncated {
        pkt.len()
    } else {
        return done(Outcome::BadLength); // malformed: says more bytes than the packet has
    };
    let Some(data) = pkt.get(..end) else {
        return done(Outcome::BadLength);
    };
    let next = ip.next_header();
    if is_extension(next) || next == NO_NEXT {
        return Start::Chain(Chain {
            data,
            declared_end,
            next,
        });
    }
    // The common case, no extension header: the upper layer right after
    // the fixed header, and the result built in one piece.
    let l4 = data.get(FIXED_LEN..).unwrap_or_default();
    let f = upper_facts(l4, next, false);
    Start::Walked(Walk {
        data,
        l4: FIXED_LEN as u32,
        frag_at: 0,
        frag_len: 0,
        outcome: f.outcome,
        ext_headers: 0,
        tcp_flags: f.tcp_flags,
        l4_word: f.word,
        proto: f.bits | PROTO_SET | u16::from(next),
        column: f.column,
    })
}

/// Steps 4-6 over `w.data` (the packet up to its declared end, or what was
/// captured of it; `declared_end` is where the lengths say it ends).
#[inline]
fn walk_chain(w: &mut Walk<'_>, declared_end: usize, mut next: u8) -> Outcome {
    let data = w.data;
    let mut off = FIXED_LEN;
    let mut dest_opts = 0u8;
    loop {
        if !is_extension(next) {
            if next == NO_NEXT {
                return Outcome::Stop(Reason::NoUpperLayer);
            }
            w.proto = PROTO_SET | u16::from(next);
            w.l4 = u32::try_from(off).unwrap_or(u32::MAX);
            return upper_layer(w, data.get(off..).unwrap_or_default(), next);
        }
        if (next == HOP_BY_HOP && w.ext_headers > 0)
            || (next == FRAGMENT && w.frag_at != 0)
            || (next == DEST_OPTS && dest_opts == MAX_DEST_OPTS)
        {
            return Outcome::Stop(Reason::BadExtensionOrder);
        }
        if next == DEST_OPTS {
            dest_opts += 1;
        }
        w.ext_headers += 1;
        if w.ext_headers > MAX_EXT_HEADERS {
            return Outcome::Stop(Reason::ChainTooLong);
        }
        let header = data
            .get(off..)
            .and_then(|rest| wire::ExtHeader::new_checked(rest, next).ok());
        let Some(header) = header else {
            return Outcome::Stop(short_reason(w));
        };
        match next {
            ROUTING if header.routing_type() == 0 => {
                return Outcome::Stop(Reason::RoutingHeader0);
            }
            FRAGMENT => {
                let Some(frag) = header.fragment() else {
                    return Outcome::Stop(short_reason(w));
                };
                w.frag_at = u32::try_from(off).unwrap_or(0);
                let after = off + header.header_len();
                w.frag_len = u32::try_from(declared_end.saturating_sub(after)).unwrap_or(u32::MAX);
                if frag.offset() > 0 {
                    return Outcome::LaterFragment;
                }
            }
            _ => {}
        }
        next = header.next_header();
        off += header.header_len();
    }
}

/// What a header that does not fit is: `incomplete_chain` in a first
/// fragment (RFC 7112), `malformed` anywhere else.
fn short_reason(w: &Walk<'_>) -> Reason {
    if w.is_first_fragment() {
        Reason::IncompleteChain
    } else {
        Reason::Malformed
    }
}

/// Step 6's length checks on the upper-layer header `l4`; a header that
/// passes leaves its first word (and TCP's flags) in `w`.
#[inline]
fn upper_layer(w: &mut Walk<'_>, l4: &[u8], proto: u8) -> Outcome {
    let f = upper_facts(l4, proto, w.is_first_fragment());
    w.tcp_flags = f.tcp_flags;
    w.l4_word = f.word;
    w.proto |= f.bits;
    w.column = f.column;
    f.outcome
}

/// What step 6's length checks found of an upper-layer header.
struct UpperFacts {
    /// How the walk ends.
    outcome: Outcome,
    /// TCP's flags byte (0 for the others).
    tcp_flags: u8,
    /// See [`Walk::l4_word`].
    word: u32,
    /// [`PORTS_SET`], [`COLUMN_SET`], [`ICMP_SET`]: what `word` and `column` hold.
    bits: u16,
    /// See [`Walk::column`].
    column: u16,
}

impl UpperFacts {
    const fn stop(reason: Reason) -> Self {
        UpperFacts {
            outcome: Outcome::Stop(reason),
            tcp_flags: 0,
            word: 0,
            bits: 0,
            column: 0,
        }
    }
}

/// Step 6's length checks on the upper-layer header `l4` of protocol
/// `proto` (in a first fragment or not): how the walk ends, and for a
/// header that passed, what the decision reads of it.
#[inline(always)]
fn upper_facts(l4: &[u8], proto: u8, first_fragment: bool) -> UpperFacts {
    let fits = match proto {
        TCP => TcpPacket::new_checked(l4).map(|t| {
            let dport = t.dst_port();
            let word = (u32::from(t.src_port()) << 16) | u32::from(dport);
            (t.flags(), word, PORTS_SET | COLUMN_SET, dport)
        }),
        UDP => UdpPacket::new_checked(l4).map(|u| {
            let dport = u.dst_port();
            let word = (u32::from(u.src_port()) << 16) | u32::from(dport);
            (0, word, PORTS_SET | COLUMN_SET, dport)
        }),
        ICMPV6 => Icmpv6Packet::new_checked(l4).map(|m| {
            let word = (u32::from(m.msg_type()) << 24)
                | (u32::from(m.msg_code()) << 16)
                | u32::from(m.checksum());
            (0, word, ICMP_SET | COLUMN_SET, u16::from(m.msg_type()))
        }),
        _ => Ok((0, 0, 0, 0)),
    };
    match fits {
        Ok((tcp_flags, word, bits, column)) => UpperFacts {
            outcome: Outcome::Complete,
            tcp_flags,
            word,
            bits,
            column,
        },
        Err(wire::Error::Malformed) => UpperFacts::stop(Reason::Malformed),
        Err(wire::Error::Truncated) if first_fragment => UpperFacts::stop(Reason::IncompleteChain),
        Err(wire::Error::Truncated) => UpperFacts::stop(Reason::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed header with next header `next` and `payload` after it.
    fn packet(next: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&u16::try_from(payload.len()).unwrap().to_be_bytes());
        p.extend_from_slice(&[next, 64]);
        p.extend_from_slice(&[0; 32]);
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn ext_headers_lists_the_chain_the_walk_reads_with_offsets() {
        // Hop-by-hop (8) -> AH (16) -> fragment (8) -> TCP (20).
        let mut payload = vec![51, 0, 1, 4, 0, 0, 0, 0];
        payload.extend_from_slice(&[44, 2, 0, 0, 0, 0, 0x10, 1, 0, 0, 0, 1, 0, 0, 0, 0]);
        payload.extend_from_slice(&[6, 0, 0, 0, 0, 0, 0, 7]);
        let mut tcp = [0u8; 20];
        tcp[3] = 22;
        tcp[12] = 5 << 4;
        payload.extend_from_slice(&tcp);
        let p = packet(0, &payload);
        let got: Vec<(u8, usize, usize)> = ext_headers(&p)
            .map(|h| (h.kind, h.offset, h.bytes.len()))
            .collect();
        assert_eq!(got, [(0, 40, 8), (51, 48, 16), (44, 64, 8)]);
        let w = walk(&p, false);
        assert_eq!(usize::from(w.ext_headers()), got.len());
        assert_eq!(w.dport_column(), Some(22));
        // A header that runs past the end is not listed.
        let cut = packet(60, &[6, 1, 0, 0]);
        assert_eq!(ext_headers(&cut).count(), 0);
        // No extension header: nothing.
        assert_eq!(ext_headers(&packet(6, &tcp)).count(), 0);
        assert_eq!(ext_headers(&[]).count(), 0);
    }
}
