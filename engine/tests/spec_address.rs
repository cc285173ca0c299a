//! SPEC.md step 3's addresses (RFC 4291) and step 6's TCP to a multicast
//! destination (RFC 1122 §4.2.3.10): `bad_address`, one test per class and
//! per boundary.
//!
//! Each expectation is SPEC.md's per-packet line without the frame number:
//! `verdict reason proto dport`. The test policy opens 22/tcp and 53/udp on
//! eth0 and 5353/udp globally, so every packet below would be accepted if
//! its addresses were allowed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::net::Ipv6Addr;

use common::*;
use v6fw_engine::PacketMeta;

fn a(text: &str) -> [u8; 16] {
    text.parse::<Ipv6Addr>().unwrap().octets()
}

/// TCP SYN to the open 22/tcp from `src` to `dst`.
fn tcp(src: &str, dst: &str) -> Vec<u8> {
    tcp_syn_pkt(a(src), a(dst), 40_000, 22)
}

/// UDP to the open 53/udp from `src` to `dst`.
fn udp(src: &str, dst: &str) -> Vec<u8> {
    udp_pkt(a(src), a(dst), 40_000, 53)
}

const PEER: &str = "2001:db8::2";
const HOST: &str = "2001:db8::1";

#[test]
fn allowed_addresses_are_decided_by_the_pairs() {
    let mut h = h();
    assert_eq!(h.inb(&tcp(PEER, HOST)), "accept open_port 6 22");
    assert_eq!(h.inb(&udp("fe80::2", "fe80::1")), "accept open_port 17 53");
    assert_eq!(h.inb(&udp("fd00::2", "fd00::1")), "accept open_port 17 53");
    // :: is a valid source (duplicate address detection).
    assert_eq!(h.inb(&udp("::", HOST)), "accept open_port 17 53");
}

#[test]
fn multicast_sources_of_every_scope() {
    let mut h = h();
    for flags in [0u16, 1, 3, 7] {
        for scope in 0..=15u16 {
            let first = 0xff00 | (flags << 4) | scope;
            let src = format!("{first:x}::1");
            assert_eq!(h.inb(&tcp(&src, HOST)), "drop bad_address - -", "{src}");
            assert_eq!(h.inb(&udp(&src, HOST)), "drop bad_address - -", "{src}");
        }
    }
    // The amplifier of issue 30: an echo request from ff02::1.
    let mut echo = icmp_pkt(128, 0, 64);
    echo[8..24].copy_from_slice(&a("ff02::1"));
    assert_eq!(h.inb(&echo), "drop bad_address - -");
    assert_eq!(h.inb(&icmp_pkt(128, 0, 64)), "accept icmp_allowed 58 128");
}

#[test]
fn ipv4_mapped_sources() {
    let mut h = h();
    for src in [
        "::ffff:0.0.0.0",
        "::ffff:192.0.2.1",
        "::ffff:255.255.255.255",
    ] {
        assert_eq!(h.inb(&tcp(src, HOST)), "drop bad_address - -", "{src}");
    }
    // Next to ::ffff:0:0/96, not in it: allowed.
    assert_eq!(
        h.inb(&tcp("::fffe:c000:201", HOST)),
        "accept open_port 6 22"
    );
    assert_eq!(
        h.inb(&tcp("::1:ffff:c000:201", HOST)),
        "accept open_port 6 22"
    );
    // As the destination it is not a step-3 address.
    assert_eq!(
        h.inb(&tcp(PEER, "::ffff:192.0.2.1")),
        "accept open_port 6 22"
    );
}

#[test]
fn loopback_on_either_side_but_not_both() {
    let mut h = h();
    assert_eq!(h.inb(&tcp("::1", HOST)), "drop bad_address - -");
    assert_eq!(h.inb(&tcp(PEER, "::1")), "drop bad_address - -");
    // A host talking to itself, as in a capture of its loopback interface.
    assert_eq!(h.inb(&tcp("::1", "::1")), "accept open_port 6 22");
    // ::2 is not the loopback address.
    assert_eq!(h.inb(&tcp("::2", HOST)), "accept open_port 6 22");
}

#[test]
fn unspecified_destination() {
    let mut h = h();
    assert_eq!(h.inb(&udp(PEER, "::")), "drop bad_address - -");
    assert_eq!(h.inb(&udp("::", "::")), "drop bad_address - -");
}

#[test]
fn reserved_and_interface_local_multicast_destinations() {
    let mut h = h();
    for dst in [
        "ff00::1", "ff01::1", "ff01::2", "ff00::fb", "ff11::1", "ff31::1",
    ] {
        assert_eq!(h.inb(&udp(PEER, dst)), "drop bad_address - -", "{dst}");
    }
    // Link-local scope and wider: decided by the pairs.
    assert_eq!(h.inb(&udp(PEER, "ff02::1")), "accept open_port 17 53");
    let mdns = udp_pkt(a("fe80::2"), a("ff02::fb"), 5353, 5353);
    assert_eq!(h.inb(&mdns), "accept global_port 17 5353");
    assert_eq!(h.inb(&udp(PEER, "ff05::1:3")), "accept open_port 17 53");
    assert_eq!(h.inb(&udp(PEER, "ff0e::1")), "accept open_port 17 53");
    // A neighbour solicitation to a solicited-node group.
    let mut ns = icmp_pkt(135, 0, 255);
    ns[24..40].copy_from_slice(&a("ff02::1:ff00:1"));
    assert_eq!(h.inb(&ns), "accept icmp_allowed 58 135");
}

#[test]
fn tcp_to_a_multicast_destination_prints_its_port() {
    let mut h = h();
    assert_eq!(h.inb(&tcp(PEER, "ff02::1")), "drop bad_address 6 22");
    assert_eq!(h.inb(&tcp(PEER, "ff05::2")), "drop bad_address 6 22");
    let closed = tcp_syn_pkt(a(PEER), a("ff0e::1"), 40_000, 23);
    assert_eq!(h.inb(&closed), "drop bad_address 6 23");
    // After the length check: a short TCP header is malformed.
    let mut short = tcp(PEER, "ff02::1");
    short.truncate(50);
    set_payload_length(&mut short);
    assert_eq!(h.inb(&short), "drop malformed 6 -");
    // After the walk: a violation in the chain wins.
    let mut rh0 = Chain::new(&[Ext::Routing(0)], tcp_to(22));
    rh0.dst = a("ff02::1");
    assert_eq!(h.inb(&rh0.build()), "drop routing_header_0 - -");
    // Remembered for its later fragments, like any first fragment's reason.
    let mut first = Chain::new(&[Ext::first(31)], tcp_to(22));
    first.dst = a("ff02::1");
    assert_eq!(h.inb(&first.build()), "drop bad_address 6 22");
    let mut later = Chain::new(&[Ext::later(31)], L4::Raw(6, vec![0; 16]));
    later.dst = a("ff02::1");
    assert_eq!(h.inb(&later.build()), "drop bad_address - -");
}

#[test]
fn outbound_packets_are_untouched() {
    let mut h = h();
    for (src, dst) in [
        ("ff02::1", PEER),
        ("::ffff:192.0.2.1", PEER),
        ("::1", PEER),
        (HOST, "::1"),
        (HOST, "::"),
        (HOST, "ff01::1"),
        (HOST, "ff02::1"),
    ] {
        assert_eq!(
            h.out_at(&tcp(src, dst), 0),
            "accept outbound 6 22",
            "{src} -> {dst}"
        );
    }
}

#[test]
fn the_payload_length_check_and_the_firewall_switch_come_first() {
    let mut h = h();
    let mut long = tcp("ff02::1", HOST);
    set_payload_len(&mut long, 100);
    assert_eq!(h.inb(&long), "drop malformed - -");
    let mut short = vec![0x60, 0, 0, 0, 0, 0, 6, 64];
    short.extend_from_slice(&a("ff02::1"));
    assert_eq!(h.inb(&short), "drop malformed - -", "under 40 bytes");
    let bad = tcp("ff02::1", HOST);
    assert_eq!(
        h.line(&bad, PacketMeta::inbound(ETH1, 0)),
        "accept firewall_disabled 6 22"
    );
    // A snap-cut frame skips the payload-length check: the address decides.
    let meta = PacketMeta {
        truncated: true,
        ..PacketMeta::inbound(ETH0, 0)
    };
    assert_eq!(h.line(&long, meta), "drop bad_address - -");
}

#[test]
fn addresses_come_before_the_extension_headers() {
    let mut h = h();
    for exts in [
        vec![Ext::Routing(0)],
        vec![Ext::Dst, Ext::Hbh],
        eight().into_iter().chain([Ext::Dst]).collect(),
    ] {
        let c = Chain::new(&exts, tcp_to(22)).from(a("ff02::1"));
        assert_eq!(h.inb(&c.build()), "drop bad_address - -", "{exts:?}");
    }
    let c = Chain::new(&[], L4::Raw(59, vec![0; 8])).from(a("::1"));
    assert_eq!(h.inb(&c.build()), "drop bad_address - -");
}

#[test]
fn fragments_from_a_refused_address_are_bad_address() {
    let mut h = h();
    let src = a("::ffff:192.0.2.1");
    let first = Chain::new(&[Ext::first(7)], tcp_to(22)).from(src);
    let later = Chain::new(&[Ext::later(7)], L4::Raw(6, vec![0; 16])).from(src);
    assert_eq!(h.inb(&first.build()), "drop bad_address - -");
    assert_eq!(h.inb(&later.build()), "drop bad_address - -");
    // The memory of the same key from an allowed source is not touched.
    let first = Chain::new(&[Ext::first(7)], tcp_to(22));
    let later = Chain::new(&[Ext::later(7)], L4::Raw(6, vec![0; 16]));
    assert_eq!(h.inb(&first.build()), "accept open_port 6 22");
    assert_eq!(h.inb(&later.build()), "accept open_port - -");
}

#[test]
fn bad_address_is_counted() {
    let mut h = h();
    h.inb(&tcp("ff02::1", HOST));
    h.inb(&tcp(PEER, "ff02::1"));
    let totals = h.engine.counters().totals();
    assert_eq!(totals.get(v6fw_engine::Reason::BadAddress), 2);
}
