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
use crate::{address, Reason};

mod found;
use found::{jumbo_length, COLUMN_SET, ICMP_SET, PORTS_SET, PROTO_SET};
pub use found::{Fragment, Outcome, Quote, Upper, Walk};

/// The fixed header's length.
const FIXED_LEN: usize = Ipv6Packet::<&[u8]>::HEADER_LEN;
/// Most extension headers a chain may have.
const MAX_EXT_HEADERS: u8 = 8;
/// Most destination-options headers a chain may have.
const MAX_DEST_OPTS: u8 = 2;
/// The longest packet a reassembly may give, from the end of the fixed
/// header (RFC 8200 §4.5: the payload length's 16 bits).
const MAX_REASSEMBLED: usize = 65_535;

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

/// Walks one packet. `snap_truncated` says the capture cut the frame short:
/// then the payload-length check of step 2 is skipped and the packet is
/// judged on the bytes it has.
#[inline]
pub fn walk(pkt: &[u8], snap_truncated: bool) -> Walk<'_> {
    match walk_fixed::<false>(pkt, snap_truncated) {
        Start::Walked(w) => w,
        Start::Chain(c) => c.walk(),
        // Never: `walk_fixed::<false>` does not stop at the addresses.
        Start::Odd => Walk::new(pkt, Outcome::Invalid(Reason::Malformed)),
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
    /// One of the addresses starts with 0x00 or 0xff
    /// ([`address::may_refuse`]): the caller walks it with [`walk`] on its
    /// own path, which looks at the addresses. Told only by [`walk_start`],
    /// where the fixed header's 40 bytes are already known to be there.
    Odd,
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
/// A version-6 packet of at least 40 bytes one of whose addresses starts
/// with 0x00 or 0xff is [`Start::Odd`], before its lengths are looked at.
#[inline(always)]
pub fn walk_start(pkt: &[u8], snap_truncated: bool) -> Start<'_> {
    walk_fixed::<true>(pkt, snap_truncated)
}

/// [`walk_start`], with the [`Start::Odd`] exit when `ODD_EXIT`.
#[inline(always)]
fn walk_fixed<const ODD_EXIT: bool>(pkt: &[u8], snap_truncated: bool) -> Start<'_> {
    let done = |outcome| Start::Walked(Walk::new(pkt, outcome));
    // The length first: the version and the addresses are then read with
    // no bounds check of their own. The same reasons as the version first:
    // not version 6 is `not_ipv6` at any length.
    let Ok(ip) = Ipv6Packet::new_checked(pkt) else {
        return done(Outcome::Invalid(if version_of(pkt) == Some(IPV6_VERSION) {
            Reason::Malformed
        } else {
            Reason::NotIpv6
        }));
    };
    if ip.version() != IPV6_VERSION {
        return done(Outcome::Invalid(Reason::NotIpv6));
    }
    // Two compares on bytes the length check above proved are there.
    if ODD_EXIT && address::may_refuse(ip.src_addr_ref()[0], ip.dst_addr_ref()[0]) {
        return Start::Odd;
    }
    let declared_end = if ip.payload_len() == 0 {
        let Some(j) = jumbo_length(ip) else {
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
                let frag_len = declared_end.saturating_sub(after);
                w.frag_len = u32::try_from(frag_len).unwrap_or(u32::MAX);
                if breaks_fragment_length(off, frag.offset(), frag.more_fragments(), frag_len) {
                    return Outcome::BadFragment;
                }
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

/// Step 5's length rule (RFC 8200 §4.5) for a fragment header at `at`
/// (offset `offset` in 8-octet units, M flag `more`) whose fragment is
/// `len` bytes (from the end of the fragment header to the declared end):
/// broken when M = 1 and `len` is not a multiple of 8, or when the bytes
/// before the fragment header (its extension headers, not the fixed 40) +
/// offset × 8 + `len` are over 65,535.
#[inline]
fn breaks_fragment_length(at: usize, offset: u16, more: bool, len: usize) -> bool {
    let before = at.saturating_sub(FIXED_LEN);
    let end = before
        .saturating_add(usize::from(offset) * 8)
        .saturating_add(len);
    (more && !len.is_multiple_of(8)) || end > MAX_REASSEMBLED
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
