//! The `decide` target: arbitrary bytes through the whole decision.

use std::net::Ipv6Addr;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use v6fw_engine::walk::{walk, Outcome};
use v6fw_engine::wire::next_header::{is_extension, FRAGMENT, HOP_BY_HOP, NO_NEXT};
use v6fw_engine::wire::{ExtHeader, Ipv6Packet};
use v6fw_engine::{
    Connection, Decision, Direction, Engine, IcmpPolicy, PacketMeta, Policy, PortPair, Protocol,
    Reason, StateConfig,
};

use super::Violation;

const CONN: u32 = 1;
const DISABLED: u32 = 2;
const UNKNOWN: u32 = 3;

fn pair(port: u16, proto: Protocol) -> Option<PortPair> {
    PortPair::new(port, proto).ok()
}

/// The fixed policy: `eth0` (if 1) opens 22/tcp and 53/udp and ignores the
/// global 443/tcp; `eth1` (if 2) is disabled; globals 443/tcp, 8080/tcp,
/// 123/udp; interface 3 belongs to no connection (globals only).
fn policy() -> Policy {
    let mut p = Policy::default();
    for (port, proto) in [
        (443, Protocol::Tcp),
        (8080, Protocol::Tcp),
        (123, Protocol::Udp),
    ] {
        if let Some(pair) = pair(port, proto) {
            p.open_global(pair, "g");
        }
    }
    let mut eth0 = Connection::new("eth0", "eth0", CONN);
    for (port, proto) in [(22, Protocol::Tcp), (53, Protocol::Udp)] {
        if let Some(pair) = pair(port, proto) {
            eth0.open_port(pair, "own");
        }
    }
    if let Some(pair) = pair(443, Protocol::Tcp) {
        eth0.ignore_global(pair);
    }
    let mut eth1 = Connection::new("eth1", "eth1", DISABLED);
    eth1.enabled = false;
    let _ = p.add_connection(eth0);
    let _ = p.add_connection(eth1);
    p
}

fn own(if_index: u32, proto: u8, port: u16) -> bool {
    if_index == CONN && matches!((proto, port), (6, 22) | (17, 53))
}

fn global(if_index: u32, proto: u8, port: u16) -> bool {
    match (proto, port) {
        (6, 443) => if_index != CONN,
        (6, 8080) | (17, 123) => true,
        _ => false,
    }
}

/// SPEC step 2, computed from the bytes alone (version 6 assumed): whether
/// the packet is `malformed` before any header is walked. Payload length 0
/// is counted as malformed only when no hop-by-hop header follows (a Jumbo
/// option needs one); the rest of the Jumbo rules are the walk's.
fn step2_malformed(data: &[u8], truncated: bool) -> bool {
    let Ok(ip) = Ipv6Packet::new_checked(data) else {
        return true;
    };
    if ip.payload_len() == 0 {
        return ip.next_header() != HOP_BY_HOP;
    }
    ip.declared_end() > data.len() && !truncated
}

/// SPEC step 3's addresses, read independently of the engine (std's
/// `Ipv6Addr`): whether an inbound packet from `data`'s source to its
/// destination carries an address no other node may send.
fn bad_address(data: &[u8]) -> bool {
    let (Some(src), Some(dst)) = addresses(data) else {
        return false;
    };
    let scope = dst.segments()[0] & 0x000f;
    src.is_multicast()
        || src.to_ipv4_mapped().is_some()
        || src.is_loopback() != dst.is_loopback()
        || dst.is_unspecified()
        || (dst.is_multicast() && scope <= 1)
}

/// The source and destination of a whole fixed header.
fn addresses(data: &[u8]) -> (Option<Ipv6Addr>, Option<Ipv6Addr>) {
    let ip = |at: usize| {
        let b: [u8; 16] = data.get(at..at + 16)?.try_into().ok()?;
        Some(Ipv6Addr::from(b))
    };
    (ip(8), ip(24))
}

/// SPEC step 5's length rule (RFC 8200 §4.5), read independently: whether
/// the first fragment header (found by [`fragment_header_at`]) has M = 1 and
/// a fragment whose length is not a multiple of 8, or extension headers
/// before it + offset × 8 + the fragment's length over 65,535. The
/// fragment's length runs to 40 + the payload length (payload length 0,
/// a Jumbo packet, is left out).
fn fragment_length_broken(data: &[u8]) -> bool {
    let Some(at) = fragment_header_at(data) else {
        return false;
    };
    let (Some(b), Some(lo)) = (data.get(at + 2), data.get(at + 3)) else {
        return false;
    };
    let field = u16::from_be_bytes([*b, *lo]);
    let (offset, more) = (usize::from(field >> 3), field & 1 == 1);
    let payload_len = Ipv6Packet::new_checked(data).map_or(0, |ip| usize::from(ip.payload_len()));
    if payload_len == 0 {
        return false;
    }
    let len = (40 + payload_len).saturating_sub(at + 8);
    (more && !len.is_multiple_of(8)) || (at - 40) + offset * 8 + len > 65_535
}

fn columns_bare(d: &Decision) -> bool {
    d.proto.is_none() && d.dport.is_none()
}

/// Checks one decision against SPEC.md's invariants.
fn check_one(
    data: &[u8],
    truncated: bool,
    meta: &PacketMeta,
    d: &Decision,
    flows_recorded: bool,
) -> Result<(), Violation> {
    let ctx = || {
        format!(
            "{:?} if {} truncated {truncated}: {d:?}",
            meta.direction, meta.if_index
        )
    };
    let fail = |what: &str| Err(format!("{what}; {}", ctx()));
    if d.verdict() != d.reason.verdict() {
        return fail("verdict differs from the reason's verdict");
    }
    let is_v6 = data.first().is_some_and(|b| b >> 4 == 6);
    if !is_v6 {
        if d.reason != Reason::NotIpv6 || !columns_bare(d) {
            return fail("a version nibble other than 6 must be accept not_ipv6 - -");
        }
        return Ok(());
    }
    if d.reason == Reason::NotIpv6 {
        return fail("not_ipv6 for a version-6 packet");
    }
    if data.len() < 40 {
        if d.reason != Reason::Malformed || !columns_bare(d) {
            return fail("a version-6 frame under 40 bytes must be drop malformed - -");
        }
        return Ok(());
    }
    let step2 = step2_malformed(data, truncated);
    let inbound = meta.direction == v6fw_engine::Direction::Inbound;
    if step2 && inbound && (d.reason != Reason::Malformed || !columns_bare(d)) {
        return fail("a step-2 malformed packet must be drop malformed - -");
    }
    if let Some(p) = d.proto {
        if matches!(p, 0 | 43 | 44 | 51 | 59 | 60) {
            return fail("an extension header or 59 printed as the upper layer");
        }
    }
    if d.dport.is_some() && !matches!(d.proto, Some(6 | 17 | 58)) {
        return fail("dport without TCP, UDP or ICMPv6");
    }
    if !inbound {
        // SPEC.md: outbound packets are `accept outbound` whatever their
        // shape, once they have a whole fixed header.
        if d.reason != Reason::Outbound {
            return fail("an outbound IPv6 packet of 40 bytes or more must be accept outbound");
        }
        return Ok(());
    }
    if meta.if_index == DISABLED {
        let expected = match walk(data, truncated).outcome() {
            Outcome::Invalid(r) => r,
            Outcome::BadLength => Reason::Malformed,
            _ => Reason::FirewallDisabled,
        };
        if d.reason != expected {
            return fail("a disabled connection must be accept firewall_disabled");
        }
        return Ok(());
    }
    if d.reason == Reason::FirewallDisabled {
        return fail("firewall_disabled on an enabled connection");
    }
    // Step 2 as the walk judged it (the Jumbo rules are the walk's).
    let step2 = step2 || matches!(walk(data, truncated).outcome(), Outcome::BadLength);
    if !step2 && bad_address(data) {
        if d.reason != Reason::BadAddress || !columns_bare(d) {
            return fail("an address no other node may send must be drop bad_address - -");
        }
        return Ok(());
    }
    let (proto, dport) = (d.proto, d.dport);
    if !step2 && fragment_length_broken(data) {
        let before = matches!(
            d.reason,
            Reason::BadExtensionOrder | Reason::RoutingHeader0 | Reason::ChainTooLong
        );
        if !(before || (d.reason == Reason::Malformed && columns_bare(d))) {
            return fail(
                "a fragment breaking RFC 8200's length rule must be drop malformed - - \
                 (unless a violation before its fragment header decided it)",
            );
        }
    }
    match d.reason {
        Reason::BadExtensionOrder
        | Reason::RoutingHeader0
        | Reason::ChainTooLong
        | Reason::NoUpperLayer
        | Reason::OrphanFragment
        | Reason::FragmentOverlap => {
            if !columns_bare(d) {
                return fail("walk drops and non-first fragments print - -");
            }
        }
        Reason::Malformed | Reason::IncompleteChain => {
            if dport.is_some() || !matches!(proto, None | Some(6 | 17 | 58)) {
                return fail("a short header prints no dport, and only for TCP/UDP/ICMPv6");
            }
        }
        Reason::OpenPort | Reason::GlobalPort | Reason::Established | Reason::PortClosed => {
            let (Some(p @ (6 | 17)), Some(port)) = (proto, dport) else {
                return fail("a port decision without TCP/UDP columns");
            };
            let expected_open = own(meta.if_index, p, port);
            let expected_global = !expected_open && global(meta.if_index, p, port);
            let ok = match d.reason {
                Reason::OpenPort => expected_open,
                Reason::GlobalPort => expected_global,
                Reason::Established => !expected_open && !expected_global && flows_recorded,
                _ => !expected_open && !expected_global,
            };
            if !ok {
                return fail("port decision disagrees with the fixed policy");
            }
            let syn_only = walk(data, truncated)
                .tcp_flags()
                .is_some_and(|f| f & 0x12 == 0x02);
            if d.reason == Reason::Established && syn_only {
                return fail("a TCP SYN without ACK matched a flow");
            }
        }
        Reason::IcmpAllowed | Reason::IcmpPolicy => {
            let (Some(58), Some(ty)) = (proto, dport) else {
                return fail("an ICMPv6 decision without ICMPv6 columns");
            };
            let hop_limit = Ipv6Packet::new_checked(data).map_or(0, |ip| ip.hop_limit());
            let fragmented = walk(data, truncated).fragment().is_some();
            let allowed = u8::try_from(ty)
                .is_ok_and(|ty| IcmpPolicy::default().allows(ty, hop_limit, fragmented));
            if allowed != (d.reason == Reason::IcmpAllowed) {
                return fail("ICMPv6 decision disagrees with the default policy");
            }
        }
        Reason::UnsupportedProtocol => {
            if dport.is_some() || matches!(proto, None | Some(6 | 17 | 58)) {
                return fail("unsupported_protocol must print its protocol and no dport");
            }
        }
        Reason::BadAddress => {
            // The step-3 addresses returned above: only TCP to a multicast
            // destination is left (step 6), with its port.
            let multicast = addresses(data).1.is_some_and(|a| a.is_multicast());
            if !(multicast && proto == Some(6) && dport.is_some()) {
                return fail("bad_address for addresses SPEC allows, or TCP without its port");
            }
        }
        Reason::NotIpv6 | Reason::FirewallDisabled | Reason::Outbound => {
            return fail("impossible inbound reason");
        }
        Reason::IcmpUnrelated => {
            return fail("icmp_unrelated with icmp_errors = \"any\"");
        }
        Reason::OutOfScope => {
            return fail("out_of_scope with no scoped pair in the policy");
        }
    }
    Ok(())
}

/// The reference decision of the fixed policy, from etherparse's slicing
/// alone: `None` where the two parsers deliberately differ (etherparse
/// cannot slice it, it has extension headers, whose order, count and routing
/// type SPEC.md rules on, or a payload length of 0) and where it cannot tell
/// `established` from `port_closed` (the packet is its own reply).
fn reference(data: &[u8], meta: &PacketMeta, flows_recorded: bool) -> Option<Decision> {
    let bare = |reason| Decision {
        reason,
        proto: None,
        dport: None,
    };
    if data.first().is_none_or(|b| b >> 4 != 6) {
        return Some(bare(Reason::NotIpv6));
    }
    let sliced = SlicedPacket::from_ip(data).ok()?;
    let Some(NetSlice::Ipv6(ip)) = &sliced.net else {
        return None;
    };
    let header = ip.header();
    if header.payload_length() == 0 || !ip.extensions().is_empty() {
        return None;
    }
    let proto = ip.payload().ip_number.0;
    let (ports, icmp_type) = match &sliced.transport {
        Some(TransportSlice::Tcp(t)) => (Some((t.source_port(), t.destination_port())), None),
        Some(TransportSlice::Udp(u)) => (Some((u.source_port(), u.destination_port())), None),
        Some(TransportSlice::Icmpv6(i)) => (None, Some(i.type_u8())),
        _ => (None, None),
    };
    if proto == NO_NEXT {
        return Some(match meta.direction {
            Direction::Outbound => bare(Reason::Outbound),
            Direction::Inbound if meta.if_index == DISABLED => bare(Reason::FirewallDisabled),
            Direction::Inbound if bad_address(data) => bare(Reason::BadAddress),
            Direction::Inbound => bare(Reason::NoUpperLayer),
        });
    }
    let decision = |reason| Decision {
        reason,
        proto: Some(proto),
        dport: ports.map(|(_, d)| d).or(icmp_type.map(u16::from)),
    };
    let inbound_enabled = meta.direction == Direction::Inbound && meta.if_index != DISABLED;
    if inbound_enabled && bad_address(data) {
        return Some(bare(Reason::BadAddress));
    }
    let reason = match (meta.direction, ports, icmp_type) {
        (Direction::Outbound, ..) => Reason::Outbound,
        (_, _, _) if meta.if_index == DISABLED => Reason::FirewallDisabled,
        (_, Some((sport, dport)), _) => {
            if proto == 6 && header.destination_addr().is_multicast() {
                Reason::BadAddress
            } else if own(meta.if_index, proto, dport) {
                Reason::OpenPort
            } else if global(meta.if_index, proto, dport) {
                Reason::GlobalPort
            } else if flows_recorded && sport == dport && header.source() == header.destination() {
                return None; // its own reply: established unless the flow state says no
            } else {
                Reason::PortClosed
            }
        }
        (_, None, Some(ty)) => {
            if IcmpPolicy::default().allows(ty, header.hop_limit(), false) {
                Reason::IcmpAllowed
            } else {
                Reason::IcmpPolicy
            }
        }
        (_, None, None) => Reason::UnsupportedProtocol,
    };
    Some(decision(reason))
}

/// The decisions of one sequence on a fresh worker: inbound on the
/// connection, on the disabled connection, on an unknown interface, then
/// outbound, then inbound again (now possibly `established`); each compared
/// with the etherparse reference where it decides.
fn sequence(engine: &Engine, data: &[u8], truncated: bool) -> Result<Vec<Decision>, Violation> {
    let mut worker = engine.worker();
    let snap = engine.table().pin();
    let metas = [
        (PacketMeta::inbound(CONN, 1), false),
        (PacketMeta::inbound(DISABLED, 2), false),
        (PacketMeta::inbound(UNKNOWN, 3), false),
        (PacketMeta::outbound(CONN, 4), false),
        (PacketMeta::inbound(CONN, 5), true),
    ];
    let mut out = Vec::with_capacity(metas.len());
    for (meta, flows_recorded) in metas {
        let meta = PacketMeta { truncated, ..meta };
        let d = worker.decide(&snap, data, &meta);
        if let Some(expected) = reference(data, &meta, flows_recorded) {
            if d != expected {
                return Err(format!(
                    "engine {d:?} but the etherparse reference {expected:?} for {meta:?}"
                ));
            }
        }
        check_one(data, truncated, &meta, &d, flows_recorded)?;
        out.push(d);
    }
    Ok(out)
}

/// The byte offset of the first fragment header in `data`, found by an
/// independent, minimal walk of the chain (hop-by-hop, routing, destination
/// options, AH lengths), at most 9 headers deep.
fn fragment_header_at(data: &[u8]) -> Option<usize> {
    let mut next = Ipv6Packet::new_checked(data).ok()?.next_header();
    let mut off = Ipv6Packet::<&[u8]>::HEADER_LEN;
    for _ in 0..9 {
        if !is_extension(next) {
            return None;
        }
        let h = ExtHeader::new_checked(data.get(off..)?, next).ok()?;
        if next == FRAGMENT {
            return Some(off);
        }
        next = h.next_header();
        off += h.header_len();
    }
    None
}

/// A later fragment (offset 1, M = 0) of the datagram `data` starts: the same
/// bytes up to and including its fragment header, 16 bytes of payload, and a
/// payload length that fits.
fn later_fragment_of(data: &[u8]) -> Option<Vec<u8>> {
    let at = fragment_header_at(data)?;
    let frag_len = ExtHeader::new_checked(data.get(at..)?, FRAGMENT)
        .ok()?
        .header_len();
    let mut later = data.get(..at + frag_len)?.to_vec();
    later.extend_from_slice(&[0xAB; 16]);
    let payload = u16::try_from(later.len() - Ipv6Packet::<&[u8]>::HEADER_LEN).ok()?;
    Ipv6Packet::new_checked(&mut later[..])
        .ok()?
        .set_payload_len(payload);
    ExtHeader::new_checked(later.get_mut(at..)?, FRAGMENT)
        .ok()?
        .set_fragment_offset(1, false);
    Some(later)
}

/// SPEC step 5 on a pair: when `data` has a fragment header, a later
/// fragment of the same datagram (at offset 8 bytes) decided after it on the
/// same worker gets the first fragment's remembered reason, or
/// `fragment_overlap` when the first fragment's fragmentable part is longer
/// than 8 bytes (RFC 5722), or `orphan_fragment` if it was not a first
/// fragment that the walk got past, or was `incomplete_chain`; with columns
/// `- -`.
fn fragment_pair(engine: &Engine, data: &[u8]) -> Result<(), Violation> {
    let Some(later) = later_fragment_of(data) else {
        return Ok(());
    };
    if walk(&later, false).outcome() != Outcome::LaterFragment {
        return Ok(()); // a violation before the fragment header decides it
    }
    let mut worker = engine.worker();
    let snap = engine.table().pin();
    let first = worker.decide(&snap, data, &PacketMeta::inbound(CONN, 10));
    let then = worker.decide(&snap, &later, &PacketMeta::inbound(CONN, 11));
    let w = walk(data, false);
    // Step 5's length rule is the walk's `BadFragment`, not `Stop`: not
    // remembered; a step-3 address decides before the walk.
    let remembered = w.is_first_fragment()
        && matches!(w.outcome(), Outcome::Complete | Outcome::Stop(_))
        && first.reason != Reason::IncompleteChain;
    let overlaps = w.fragment().is_some_and(|f| f.fragmentable_len > 8);
    let expected = match (remembered, overlaps) {
        _ if bad_address(data) => Reason::BadAddress,
        (false, _) => Reason::OrphanFragment,
        (true, true) => Reason::FragmentOverlap,
        (true, false) => first.reason,
    };
    if then.reason != expected || !columns_bare(&then) {
        return Err(format!(
            "later fragment after {first:?} decided {then:?}, expected {expected} - -; \
             later fragment hex {}",
            super::hex(&later)
        ));
    }
    Ok(())
}

/// Decides `data` inbound and outbound, truncated and not, on one fresh
/// engine with a fixed policy (a fresh worker per sequence); checks SPEC.md's
/// invariants on every decision, that
/// an outbound packet's columns are the inbound ones (same walk), and that
/// the truncated flag changes nothing when the packet is complete; and when
/// it has a fragment header, that a later fragment of it follows the memory.
pub fn decide(data: &[u8]) -> Result<(), Violation> {
    let state = StateConfig {
        flow_capacity: 64,
        frag_capacity: 64,
        ..StateConfig::default()
    };
    let engine = Engine::with_state(policy(), state);
    let plain = sequence(&engine, data, false)?;
    let cut = sequence(&engine, data, true)?;
    let again = sequence(&engine, data, false)?;
    if plain != again {
        return Err(format!("not deterministic: {plain:?} then {again:?}"));
    }
    for seq in [&plain, &cut] {
        if let (Some(inb), Some(outb)) = (seq.first(), seq.get(3)) {
            let comparable = outb.reason == Reason::Outbound
                && !matches!(inb.reason, Reason::OrphanFragment | Reason::BadAddress);
            if comparable && (inb.proto, inb.dport) != (outb.proto, outb.dport) {
                return Err(format!(
                    "outbound columns differ from the same walk inbound: {inb:?} vs {outb:?}"
                ));
            }
        }
    }
    // Payload length 0 is left out: a Jumbo length past the end is cut short
    // when truncated, which is the point of the flag.
    let payload_len = Ipv6Packet::new_checked(data).map_or(0, |ip| ip.payload_len());
    let complete = payload_len != 0 && !step2_malformed(data, false);
    if complete && plain != cut {
        return Err(format!(
            "a complete packet decided differently when marked truncated: {plain:?} vs {cut:?}"
        ));
    }
    fragment_pair(&engine, data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packets;

    #[test]
    fn later_fragment_is_built_from_a_first_fragment() {
        let first = packets::first_fragment(1, 53, 77);
        let later = later_fragment_of(&first).unwrap();
        assert_eq!(walk(&later, false).outcome(), Outcome::LaterFragment);
        assert_eq!(later_fragment_of(&packets::tcp_syn(1, 2, 3)), None);
        let chain = packets::ext_chain3(1, 2, 22);
        assert_eq!(fragment_header_at(&chain), None);
    }

    #[test]
    fn the_reference_decides_plain_packets_and_leaves_extension_chains() {
        let inbound = PacketMeta::inbound(CONN, 1);
        let reason = |p: &[u8], meta: &PacketMeta| reference(p, meta, false).map(|d| d.reason);
        let syn = packets::tcp_syn(1, 40_000, 22);
        assert_eq!(reason(&syn, &inbound), Some(Reason::OpenPort));
        let unknown = PacketMeta::inbound(UNKNOWN, 1);
        assert_eq!(
            reason(&packets::tcp_syn(1, 40_000, 443), &unknown),
            Some(Reason::GlobalPort)
        );
        assert_eq!(
            reason(&packets::udp(1, 40_000, 9), &inbound),
            Some(Reason::PortClosed)
        );
        let ndp = reference(&packets::icmpv6_ndp(2), &inbound, false).unwrap();
        assert_eq!(
            (ndp.reason, ndp.proto, ndp.dport),
            (Reason::IcmpAllowed, Some(58), Some(135))
        );
        let disabled = PacketMeta::inbound(DISABLED, 1);
        assert_eq!(reason(&syn, &disabled), Some(Reason::FirewallDisabled));
        assert_eq!(
            reason(&syn, &PacketMeta::outbound(CONN, 1)),
            Some(Reason::Outbound)
        );
        assert_eq!(reason(&packets::ext_chain3(1, 2, 22), &inbound), None);
        assert_eq!(reason(&packets::malformed(1, 22), &inbound), None);
    }

    #[test]
    fn generated_packets_pass() {
        for p in [
            packets::first_fragment(1, 53, 77),
            packets::first_fragment(1, 9, 78),
            packets::udp_fragment(1, 53, 77, 3),
            packets::tcp_syn(1, 40_000, 22),
            packets::ext_chain3(1, 40_000, 8080),
            packets::icmpv6_ndp(2),
            packets::malformed(1, 22),
        ] {
            decide(&p).unwrap();
        }
    }
}
