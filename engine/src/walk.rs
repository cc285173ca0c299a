//! A zero-copy, allocation-free, panic-free walk of the IPv6 header chain.
//!
//! [`walk`] reads a packet once, front to back, and stops at the first
//! violation SPEC.md names (steps 1, 2, 4, 5 and the length checks of step 6).
//! It never copies the payload and never indexes past the bytes it was given:
//! every access is a `get` on the slice or a constant index into a fixed-size
//! array obtained with `first_chunk`, so arbitrary bytes cannot make it panic.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Traffic Class |           Flow Label                  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Payload Length        |  Next Header  |   Hop Limit   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 Source Address (16 octets)                    |
//! |              Destination Address (16 octets)                  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use crate::Reason;

/// Offsets and protocol numbers of the headers the walk reads.
mod field {
    /// Fixed IPv6 header length.
    pub const FIXED_LEN: usize = 40;
    /// Hop-by-hop options.
    pub const HOP_BY_HOP: u8 = 0;
    /// Routing header.
    pub const ROUTING: u8 = 43;
    /// Fragment header.
    pub const FRAGMENT: u8 = 44;
    /// Authentication header.
    pub const AUTH: u8 = 51;
    /// Destination options.
    pub const DEST_OPTS: u8 = 60;
    /// No next header.
    pub const NO_NEXT: u8 = 59;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// Jumbo Payload option type (RFC 2675).
    pub const OPT_JUMBO: u8 = 0xC2;
    /// Most extension headers a chain may have.
    pub const MAX_EXT_HEADERS: u8 = 8;
    /// Most destination-options headers a chain may have.
    pub const MAX_DEST_OPTS: u8 = 2;
    /// Minimum TCP header.
    pub const TCP_MIN: usize = 20;
    /// UDP header.
    pub const UDP_LEN: usize = 8;
    /// ICMPv6 type, code, checksum.
    pub const ICMP_MIN: usize = 4;
}

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

/// Everything the decision needs from one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walk {
    /// How the walk ended.
    pub outcome: Outcome,
    /// Source address.
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
    /// Hop limit.
    pub hop_limit: u8,
    /// Jumbo Payload length, when payload length was 0 and the option valid.
    pub jumbo: Option<u32>,
    /// Extension headers walked (59 not counted).
    pub ext_headers: u8,
    /// The fragment header, once it was read whole.
    pub fragment: Option<Fragment>,
    /// The upper-layer protocol number, once the walk reached it.
    pub proto: Option<u8>,
    /// The upper-layer header, once it passed its length check.
    pub upper: Upper,
    /// For an ICMPv6 error (types 1-4) that passed its length check: what it quotes.
    pub quote: Option<Quote>,
}

impl Walk {
    const fn invalid(reason: Reason) -> Walk {
        Walk {
            outcome: Outcome::Invalid(reason),
            src: [0; 16],
            dst: [0; 16],
            hop_limit: 0,
            jumbo: None,
            ext_headers: 0,
            fragment: None,
            proto: None,
            upper: Upper::None,
            quote: None,
        }
    }

    /// The `dport` column: TCP/UDP destination port, ICMPv6 type.
    pub const fn dport_column(&self) -> Option<u16> {
        match self.upper {
            Upper::Tcp { dport, .. } | Upper::Udp { dport, .. } => Some(dport),
            Upper::Icmp { ty, .. } => Some(ty as u16),
            Upper::None | Upper::Other => None,
        }
    }

    /// Whether this packet is the first of several fragments.
    pub fn is_first_fragment(&self) -> bool {
        self.fragment.is_some_and(Fragment::is_first)
    }

    /// Whether this packet's upper-layer header may start a flow: it passed
    /// its length check and the packet is not a non-first fragment.
    pub const fn ports(&self) -> Option<(u8, u16, u16)> {
        match self.upper {
            Upper::Tcp { sport, dport, .. } => Some((field::TCP, sport, dport)),
            Upper::Udp { sport, dport } => Some((field::UDP, sport, dport)),
            _ => None,
        }
    }
}

#[inline]
fn be16(b: [u8; 2]) -> u16 {
    u16::from_be_bytes(b)
}

/// Reads the Jumbo Payload option from a hop-by-hop header right after the
/// fixed header. `None` if there is no such header, no such option, or the
/// option is invalid (length not 4, or a value under 65,536 — RFC 2675).
fn jumbo_length(pkt: &[u8], next_header: u8) -> Option<u32> {
    if next_header != field::HOP_BY_HOP {
        return None;
    }
    let hbh = pkt.get(field::FIXED_LEN..)?;
    let len = (usize::from(*hbh.get(1)?) + 1) * 8;
    let mut opts = hbh.get(2..len)?;
    while let Some((&ty, rest)) = opts.split_first() {
        if ty == 0 {
            opts = rest; // Pad1
            continue;
        }
        let (&olen, rest) = rest.split_first()?;
        let (value, rest) = rest.split_at_checked(usize::from(olen))?;
        if ty == field::OPT_JUMBO {
            let v = u32::from_be_bytes(*value.first_chunk::<4>()?);
            return (olen == 4 && v > 65_535).then_some(v);
        }
        opts = rest;
    }
    None
}

/// Walks one packet. `snap_truncated` says the capture cut the frame short:
/// then the payload-length check of step 2 is skipped and the packet is
/// judged on the bytes it has.
pub fn walk(pkt: &[u8], snap_truncated: bool) -> Walk {
    match pkt.first() {
        Some(b) if b >> 4 == 6 => {}
        _ => return Walk::invalid(Reason::NotIpv6),
    }
    let Some(fixed) = pkt.first_chunk::<{ field::FIXED_LEN }>() else {
        return Walk::invalid(Reason::Malformed);
    };
    let payload_len = be16([fixed[4], fixed[5]]);
    let first_next = fixed[6];
    let mut w = Walk::invalid(Reason::Malformed);
    w.outcome = Outcome::BadLength;
    w.hop_limit = fixed[7];
    if let (Some(src), Some(dst)) = (fixed.get(8..24), fixed.get(24..40)) {
        w.src.copy_from_slice(src);
        w.dst.copy_from_slice(dst);
    }

    let declared_end = if payload_len == 0 {
        let Some(j) = jumbo_length(pkt, first_next) else {
            return w; // malformed: payload length 0 without a Jumbo option
        };
        w.jumbo = Some(j);
        usize::try_from(j)
            .ok()
            .and_then(|j| j.checked_add(field::FIXED_LEN))
            .unwrap_or(usize::MAX)
    } else {
        field::FIXED_LEN + usize::from(payload_len)
    };
    let end = if declared_end <= pkt.len() {
        declared_end
    } else if snap_truncated {
        pkt.len()
    } else {
        return w; // malformed: says more bytes than the packet has
    };
    let Some(data) = pkt.get(..end) else {
        return w;
    };
    w.outcome = walk_chain(&mut w, data, declared_end, first_next);
    w
}

/// Steps 4-6 over `data` (the packet up to its declared end, or what was
/// captured of it; `declared_end` is where the lengths say it ends).
fn walk_chain(w: &mut Walk, data: &[u8], declared_end: usize, mut next: u8) -> Outcome {
    let mut off = field::FIXED_LEN;
    let mut dest_opts = 0u8;
    loop {
        match next {
            field::HOP_BY_HOP
            | field::ROUTING
            | field::FRAGMENT
            | field::AUTH
            | field::DEST_OPTS => {}
            field::NO_NEXT => return Outcome::Stop(Reason::NoUpperLayer),
            proto => {
                w.proto = Some(proto);
                return upper_layer(w, data.get(off..).unwrap_or_default(), proto);
            }
        }
        if (next == field::HOP_BY_HOP && w.ext_headers > 0)
            || (next == field::FRAGMENT && w.fragment.is_some())
            || (next == field::DEST_OPTS && dest_opts == field::MAX_DEST_OPTS)
        {
            return Outcome::Stop(Reason::BadExtensionOrder);
        }
        if next == field::DEST_OPTS {
            dest_opts += 1;
        }
        w.ext_headers += 1;
        if w.ext_headers > field::MAX_EXT_HEADERS {
            return Outcome::Stop(Reason::ChainTooLong);
        }
        let Some(header) = ext_header(data, off, next) else {
            return Outcome::Stop(short_reason(w));
        };
        match next {
            field::ROUTING if header.get(2) == Some(&0) => {
                return Outcome::Stop(Reason::RoutingHeader0);
            }
            field::FRAGMENT => {
                let Some(h) = header.first_chunk::<8>() else {
                    return Outcome::Stop(short_reason(w));
                };
                let frag = Fragment {
                    offset: be16([h[2], h[3]]) >> 3,
                    more: h[3] & 1 == 1,
                    id: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
                    fragmentable_len: u32::try_from(declared_end.saturating_sub(off + 8))
                        .unwrap_or(u32::MAX),
                };
                w.fragment = Some(frag);
                if frag.offset > 0 {
                    return Outcome::LaterFragment;
                }
            }
            _ => {}
        }
        next = header.first().copied().unwrap_or(field::NO_NEXT);
        off += header.len();
    }
}

/// One extension header's bytes, or `None` if it runs past the end.
fn ext_header(data: &[u8], off: usize, kind: u8) -> Option<&[u8]> {
    let rest = data.get(off..)?;
    let len = match kind {
        field::FRAGMENT => 8,
        field::AUTH => (usize::from(*rest.get(1)?) + 2) * 4,
        _ => (usize::from(*rest.get(1)?) + 1) * 8,
    };
    rest.get(..len)
}

/// What a header that does not fit is: `incomplete_chain` in a first
/// fragment (RFC 7112), `malformed` anywhere else.
fn short_reason(w: &Walk) -> Reason {
    if w.is_first_fragment() {
        Reason::IncompleteChain
    } else {
        Reason::Malformed
    }
}

/// Step 6's length checks; fills `w.upper` when the header passes.
fn upper_layer(w: &mut Walk, l4: &[u8], proto: u8) -> Outcome {
    let ports = |h: &[u8; 4]| (be16([h[0], h[1]]), be16([h[2], h[3]]));
    w.upper = match proto {
        field::TCP => {
            let Some(h) = l4.first_chunk::<{ field::TCP_MIN }>() else {
                return Outcome::Stop(short_reason(w));
            };
            let data_offset = usize::from(h[12] >> 4) * 4;
            if data_offset < field::TCP_MIN {
                return Outcome::Stop(Reason::Malformed);
            }
            if data_offset > l4.len() {
                return Outcome::Stop(short_reason(w));
            }
            let (sport, dport) = ports(&[h[0], h[1], h[2], h[3]]);
            Upper::Tcp {
                sport,
                dport,
                flags: h[13],
                window: be16([h[14], h[15]]),
                seq: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
                ack: u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
            }
        }
        field::UDP => {
            let Some(h) = l4.first_chunk::<{ field::UDP_LEN }>() else {
                return Outcome::Stop(short_reason(w));
            };
            let (sport, dport) = ports(&[h[0], h[1], h[2], h[3]]);
            Upper::Udp { sport, dport }
        }
        field::ICMPV6 => {
            let Some(h) = l4.first_chunk::<{ field::ICMP_MIN }>() else {
                return Outcome::Stop(short_reason(w));
            };
            if (1..=4).contains(&h[0]) {
                w.quote = Some(quote(l4.get(8..).unwrap_or_default()));
            }
            Upper::Icmp {
                ty: h[0],
                code: h[1],
            }
        }
        _ => Upper::Other,
    };
    Outcome::Complete
}

/// Reads the packet an ICMPv6 error quotes (`q`: the message from byte 8 on).
fn quote(q: &[u8]) -> Quote {
    let Some(h) = q.first_chunk::<{ field::FIXED_LEN }>() else {
        return Quote::Short;
    };
    let mut src = [0; 16];
    let mut dst = [0; 16];
    if let (Some(s), Some(d)) = (h.get(8..24), h.get(24..40)) {
        src.copy_from_slice(s);
        dst.copy_from_slice(d);
    }
    let next_header = h[6];
    let ports = match next_header {
        field::TCP | field::UDP => {
            let Some(p) = q.get(field::FIXED_LEN..).and_then(<[u8]>::first_chunk::<4>) else {
                return Quote::Short;
            };
            Some((be16([p[0], p[1]]), be16([p[2], p[3]])))
        }
        _ => None,
    };
    Quote::Packet {
        src,
        dst,
        next_header,
        ports,
    }
}
