//! What a walk found: the [`Walk`] a decision reads and its parts.
//!
//! Only the walk (the parent module) writes a [`Walk`]; everything else
//! reads it through its methods, which read field values from the packet
//! on demand.

use crate::wire::next_header::{FRAGMENT, HOP_BY_HOP, ICMPV6, TCP, UDP};
use crate::wire::{self, Icmpv6Packet, Ipv6Packet, TcpPacket, UdpPacket};
use crate::Reason;

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
    /// The walk stopped at a fragment header (of any offset) whose
    /// fragment breaks RFC 8200 §4.5's length rule (SPEC.md step 5: M = 1
    /// and a length not a multiple of 8, or an end past 65,535 bytes):
    /// `malformed`, never remembered. [`Walk::fragment`] is filled.
    BadFragment,
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
    pub(super) data: &'a [u8],
    /// Where the upper-layer header starts (valid once `proto` is set).
    pub(super) l4: u32,
    /// Where the fragment header starts, 0 when none was read whole.
    pub(super) frag_at: u32,
    /// The fragment's fragmentable part (see [`Fragment::fragmentable_len`]).
    pub(super) frag_len: u32,
    /// How the walk ended.
    pub(super) outcome: Outcome,
    /// Extension headers walked (59 not counted).
    pub(super) ext_headers: u8,
    /// The TCP flags byte, once a TCP header passed its length check.
    pub(super) tcp_flags: u8,
    /// The first word of an upper-layer header that passed its length
    /// check, read once by the walk: source and destination port (TCP,
    /// UDP), or type, code and checksum (ICMPv6). The facts every decision
    /// reads; everything else is read from the packet on demand.
    pub(super) l4_word: u32,
    /// The upper-layer protocol number in the low byte, with [`PROTO_SET`]
    /// once the walk reached it and [`PORTS_SET`], [`COLUMN_SET`] once its
    /// header passed its length check: one 16-bit word, written and read
    /// whole, so each question the decision asks is one bit test (an
    /// `Option<u8>` was stored byte by byte and read back as one word, a
    /// store-forwarding stall on every packet).
    pub(super) proto: u16,
    /// The `dport` column (TCP/UDP destination port, ICMPv6 type), valid
    /// with [`COLUMN_SET`].
    pub(super) column: u16,
}

/// The bit of [`Walk::proto`]'s word that says the upper layer was reached.
pub(super) const PROTO_SET: u16 = 0x100;
/// The bit of [`Walk::proto`]'s word that says a TCP or UDP header passed
/// its length check: [`Walk::l4_word`] holds its ports.
pub(super) const PORTS_SET: u16 = 0x200;
/// The bit of [`Walk::proto`]'s word that says [`Walk::column`] is set.
pub(super) const COLUMN_SET: u16 = 0x400;
/// The bit of [`Walk::proto`]'s word that says an ICMPv6 header passed its
/// length check: [`Walk::l4_word`] holds its type, code and checksum.
pub(super) const ICMP_SET: u16 = 0x800;

impl<'a> Walk<'a> {
    pub(super) const fn new(data: &'a [u8], outcome: Outcome) -> Walk<'a> {
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
            .and_then(jumbo_length)
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

    /// SPEC.md step 3: whether the packet carries an address no other node
    /// may send ([`crate::address::refusal`]).
    pub fn bad_address(&self) -> bool {
        refused_in(self.data)
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

/// [`Walk::bad_address`] on the packet's bytes (a whole fixed header).
#[inline(never)]
fn refused_in(data: &[u8]) -> bool {
    let ip = Ipv6Packet::new_unchecked(data);
    crate::address::refusal(ip.src_addr_ref(), ip.dst_addr_ref()).is_some()
}

/// Reads the Jumbo Payload option from a hop-by-hop header right after the
/// fixed header. `None` if there is no such header, no such option, or the
/// option is invalid (length not 4, or a value under 65,536 — RFC 2675).
#[cold]
#[inline(never)]
pub(super) fn jumbo_length(ip: Ipv6Packet<&[u8]>) -> Option<u32> {
    if ip.next_header() != HOP_BY_HOP {
        return None;
    }
    wire::ExtHeader::new_checked(ip.payload(), HOP_BY_HOP)
        .ok()?
        .jumbo_payload_len()
}
