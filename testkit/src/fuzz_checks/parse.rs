//! The `parse_vs_etherparse` target: v6fw's walk against etherparse 0.21.
//!
//! The reference is the strict `SlicedPacket::from_ip`, not
//! `LaxSlicedPacket`: it enforces the payload length (SPEC step 2 for an
//! untruncated packet, which is what `walk(bytes, false)` implements) and
//! returns a transport slice only for a complete, unfragmented header, so
//! "etherparse reached TCP/UDP with a full header" has one clear meaning. The
//! lax parser falls back to the slice length on a bad payload length, which
//! SPEC.md calls `malformed`; comparing against it would need an exception for
//! every such packet.
//!
//! Both directions are checked. Where etherparse slices TCP/UDP, v6fw must
//! reach the same protocol and ports unless SPEC.md deliberately refuses the
//! packet; where v6fw completes TCP/UDP in an unfragmented packet, etherparse
//! must slice the same, unless etherparse is deliberately stricter. Each
//! deliberate difference is named below and checked to really be present in
//! the packet, so nothing is silenced wholesale.

use etherparse::err::packet::SliceError;
use etherparse::err::{ip_auth, ipv6_exts, Layer};
use etherparse::{Ipv6ExtensionSlice, NetSlice, SlicedPacket, TransportSlice};
use v6fw_engine::walk::{walk, Outcome, Upper};
use v6fw_engine::wire::Ipv6Packet;
use v6fw_engine::Reason;

use super::Violation;

/// What etherparse's extension chain holds, counted from its own slices.
#[derive(Debug, Default)]
struct Chain {
    headers: usize,
    fragments: usize,
    dest_opts: usize,
    routing0: bool,
}

fn chain_of(sliced: &SlicedPacket<'_>) -> Chain {
    let mut c = Chain::default();
    if let Some(NetSlice::Ipv6(ip)) = &sliced.net {
        for ext in ip.extensions().clone() {
            c.headers += 1;
            match ext {
                Ipv6ExtensionSlice::Fragment(_) => c.fragments += 1,
                Ipv6ExtensionSlice::DestinationOptions(_) => c.dest_opts += 1,
                Ipv6ExtensionSlice::Routing(r) => {
                    c.routing0 |= r.payload().first() == Some(&0);
                }
                Ipv6ExtensionSlice::HopByHop(_) | Ipv6ExtensionSlice::Authentication(_) => {}
            }
        }
    }
    c
}

fn ports_of(t: &TransportSlice<'_>) -> Option<(u8, u16, u16)> {
    match t {
        TransportSlice::Tcp(t) => Some((6, t.source_port(), t.destination_port())),
        TransportSlice::Udp(u) => Some((17, u.source_port(), u.destination_port())),
        _ => None,
    }
}

fn v6fw_ports(upper: Upper) -> Option<(u8, u16, u16)> {
    match upper {
        Upper::Tcp { sport, dport, .. } => Some((6, sport, dport)),
        Upper::Udp { sport, dport } => Some((17, sport, dport)),
        _ => None,
    }
}

/// Differential check of `walk(data, false)` against `SlicedPacket::from_ip`.
pub fn parse_vs_etherparse(data: &[u8]) -> Result<(), Violation> {
    // DIFFERENCE (scope): `from_ip` also reads IPv4; v6fw says `not_ipv6`
    // for any version other than 6. Only IPv6 is compared.
    if data.first().is_none_or(|b| b >> 4 != 6) {
        return Ok(());
    }
    // DIFFERENCE (jumbo): with payload length 0, etherparse takes the rest of
    // the slice as the payload; SPEC.md requires a Jumbo Payload option in a
    // hop-by-hop header right after the fixed header and ends the packet at
    // its length, else `malformed`. Such packets are not compared.
    let payload_len = Ipv6Packet::new_checked(data).map_or(0, |ip| ip.payload_len());
    if payload_len == 0 {
        return Ok(());
    }
    let w = walk(data, false);
    let ep = SlicedPacket::from_ip(data);
    let fail = |what: &str| Err(format!("{what}: v6fw {w:?}, etherparse {ep:?}"));

    // etherparse → v6fw
    if let Ok(sliced) = &ep {
        if let Some(theirs) = sliced.transport.as_ref().and_then(ports_of) {
            let chain = chain_of(sliced);
            match w.outcome() {
                Outcome::Complete if v6fw_ports(w.upper()) == Some(theirs) => {}
                Outcome::Complete => return fail("same packet, different protocol or ports"),
                // DIFFERENCE (RFC 5095): etherparse parses a type 0 routing header.
                Outcome::Stop(Reason::RoutingHeader0) if chain.routing0 => {}
                // DIFFERENCE (SPEC step 4): etherparse has no limit on the chain.
                Outcome::Stop(Reason::ChainTooLong) if chain.headers > 8 => {}
                // DIFFERENCE (SPEC step 4): etherparse allows a second (atomic)
                // fragment header and any number of destination options.
                Outcome::Stop(Reason::BadExtensionOrder)
                    if chain.fragments > 1 || chain.dest_opts > 2 => {}
                _ => return fail("etherparse reached TCP/UDP but v6fw did not"),
            }
        }
    }

    // v6fw → etherparse
    let Some(ours) = v6fw_ports(w.upper()) else {
        return Ok(());
    };
    if w.outcome() != Outcome::Complete {
        return fail("v6fw filled the upper layer without completing");
    }
    // DIFFERENCE (fragments): etherparse slices no transport header in any
    // fragmented packet (offset > 0 or M = 1); v6fw decides first fragments
    // (RFC 7112). Atomic fragments are compared.
    if w.fragment().is_some_and(|f| !f.is_atomic()) {
        return Ok(());
    }
    match &ep {
        Ok(sliced) => match sliced.transport.as_ref().and_then(ports_of) {
            Some(theirs) if theirs == ours => Ok(()),
            _ => fail("v6fw reached TCP/UDP but etherparse sliced something else"),
        },
        // DIFFERENCE (UDP length): SPEC.md does not validate the UDP length
        // field; etherparse requires 8 <= length <= the bytes there are.
        Err(SliceError::Len(e))
            if ours.0 == 17 && matches!(e.layer, Layer::UdpHeader | Layer::UdpPayload) =>
        {
            Ok(())
        }
        // DIFFERENCE (AH): v6fw takes an AH header's length field as it is
        // ((n + 2) * 4 bytes); etherparse also refuses n = 0 and headers under
        // 12 bytes.
        Err(SliceError::Ipv6Exts(ipv6_exts::HeaderError::IpAuth(
            ip_auth::HeaderError::ZeroPayloadLen,
        ))) => Ok(()),
        Err(SliceError::Len(e)) if e.layer == Layer::IpAuthHeader => Ok(()),
        Err(_) => fail("v6fw reached TCP/UDP but etherparse refused the packet"),
    }
}
