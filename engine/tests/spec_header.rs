//! SPEC.md steps 1-3: IP version, fixed-header and payload lengths, jumbo
//! payloads, and the per-connection firewall switch.
//!
//! Packets are built with etherparse (raw bytes for the malformed ones). Each
//! expectation is SPEC.md's per-packet line without the frame number:
//! `verdict reason proto dport`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::*;
use etherparse::PacketBuilder;
use v6fw_engine::{PacketMeta, Reason};

// ---------------------------------------------------------------------------
// Steps 1-3.

#[test]
fn step1_not_ipv6() {
    let mut h = h();
    let b = PacketBuilder::ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64).udp(1, 53);
    let mut v4 = Vec::new();
    b.write(&mut v4, &[]).unwrap();
    assert_eq!(h.inb(&v4), "accept not_ipv6 - -");
    assert_eq!(h.out_at(&v4, 0), "accept not_ipv6 - -");
    assert_eq!(h.inb(&[]), "accept not_ipv6 - -");
    // Version nibble 4 on an otherwise valid IPv6 packet.
    let mut p = tcp_in(23);
    p[0] = 0x40;
    assert_eq!(h.inb(&p), "accept not_ipv6 - -");
    // On a disabled connection too (step 1 comes first).
    assert_eq!(h.inb_at(&p, ETH1, 0), "accept not_ipv6 - -");
}

#[test]
fn step2_short_fixed_header() {
    let mut h = h();
    let p = tcp_in(22);
    assert_eq!(
        h.inb(&p[..40]),
        "drop malformed - -",
        "40 bytes, payload length says more"
    );
    assert_eq!(h.inb(&p[..39]), "drop malformed - -");
    assert_eq!(h.inb(&p[..1]), "drop malformed - -");
    let t = PacketMeta {
        truncated: true,
        ..PacketMeta::inbound(ETH0, 0)
    };
    assert_eq!(
        h.line(&p[..39], t),
        "drop malformed - -",
        "truncation does not help under 40"
    );
    // Outbound cannot be placed under 40 bytes.
    assert_eq!(h.out_at(&p[..39], 0), "drop malformed - -");
}

#[test]
fn step2_payload_length_larger_than_packet() {
    let mut h = h();
    let p = udp_in(53);
    assert_eq!(h.inb(&p), "accept open_port 17 53");
    let cut = &p[..p.len() - 1];
    assert_eq!(h.inb(cut), "drop malformed - -");
    // Before the firewall switch (step 2 before step 3).
    assert_eq!(h.inb_at(cut, ETH1, 0), "drop malformed - -");
    // A snap-length cut skips the check and judges the bytes it has.
    let t = PacketMeta {
        truncated: true,
        ..PacketMeta::inbound(ETH0, 0)
    };
    assert_eq!(h.line(cut, t), "accept open_port 17 53");
    // Cut inside the UDP header: the rest of the rules apply (length check of step 6).
    assert_eq!(h.line(&p[..45], t), "drop malformed 17 -");
    // Outbound packets with a whole fixed header are `outbound` whatever their shape.
    assert_eq!(h.out_at(cut, 0), "accept outbound - -");
}

#[test]
fn step2_padding_after_payload_is_ignored() {
    let mut h = h();
    let mut p = tcp_in(22);
    let clean = h.inb(&p);
    assert_eq!(clean, "accept open_port 6 22");
    p.extend([0xAA; 13]);
    assert_eq!(h.inb(&p), clean);
    // The TCP header lies in the padding: the payload length only covers 10 bytes.
    let mut q = tcp_in(22);
    set_payload_len(&mut q, 10);
    assert_eq!(h.inb(&q), "drop malformed 6 -");
    // A UDP packet whose payload length is exactly its header.
    let mut u = udp_in(53);
    set_payload_len(&mut u, 8);
    assert_eq!(h.inb(&u), "accept open_port 17 53");
}

#[test]
fn step2_payload_length_zero_needs_jumbo() {
    let mut h = h();
    // Payload length 0 without a hop-by-hop header.
    let mut p = udp_in(53);
    set_payload_len(&mut p, 0);
    assert_eq!(h.inb(&p), "drop malformed - -");
    assert_eq!(h.out_at(&p, 0), "accept outbound - -");
    // A bare 40-byte header with next header 59 and payload length 0.
    let bare = Chain::new(&[], L4::Raw(59, vec![])).build();
    assert_eq!(bare.len(), 40);
    assert_eq!(h.inb(&bare), "drop malformed - -");
    // Payload length 0 with a hop-by-hop header lacking the Jumbo option.
    let mut hbh = Chain::new(&[Ext::Hbh], udp_to(53)).build();
    set_payload_len(&mut hbh, 0);
    assert_eq!(h.inb(&hbh), "drop malformed - -");

    // A real jumbogram: HBH(Jumbo) + UDP + 65,536 bytes of data.
    let data = 65_536usize;
    let jumbo_len = u32::try_from(8 + 8 + data).unwrap();
    let mut j = Chain::new(&[Ext::Jumbo(jumbo_len)], udp_to(53)).build();
    j.resize(40 + jumbo_len as usize, 0x55);
    assert_eq!(h.inb(&j), "accept open_port 17 53");
    let mut padded = j.clone();
    padded.extend([0xEE; 7]);
    assert_eq!(
        h.inb(&padded),
        "accept open_port 17 53",
        "padding after the jumbo length"
    );
    let short = &j[..j.len() - 1];
    assert_eq!(
        h.inb(short),
        "drop malformed - -",
        "jumbo length says more than there is"
    );
    let t = PacketMeta {
        truncated: true,
        ..PacketMeta::inbound(ETH0, 0)
    };
    assert_eq!(h.line(&j[..100], t), "accept open_port 17 53");
    // The Jumbo option must sit in a hop-by-hop header right after the fixed header.
    let mut late = Chain::new(&[Ext::Dst], udp_to(53)).build();
    set_payload_len(&mut late, 0);
    assert_eq!(h.inb(&late), "drop malformed - -");
}

#[test]
fn step3_firewall_disabled() {
    let mut h = h();
    let closed = tcp_in(23);
    assert_eq!(h.inb(&closed), "drop port_closed 6 23");
    let d = h.decide(&closed, PacketMeta::inbound(ETH1, 0));
    assert_eq!(d.reason, Reason::FirewallDisabled);
    assert_eq!(
        h.line(&closed, PacketMeta::inbound(ETH1, 0)),
        "accept firewall_disabled 6 23"
    );
    // Step 3 comes before the walk's violations.
    let rh0 = Chain::new(&[Ext::Routing(0)], tcp_to(23)).build();
    assert_eq!(h.inb(&rh0), "drop routing_header_0 - -");
    assert_eq!(
        h.decide(&rh0, PacketMeta::inbound(ETH1, 0)).reason,
        Reason::FirewallDisabled
    );
    let orphan = Chain::new(&[Ext::later(9)], L4::Raw(6, vec![0; 16])).build();
    assert_eq!(
        h.decide(&orphan, PacketMeta::inbound(ETH1, 0)).reason,
        Reason::FirewallDisabled
    );
    // Re-enabled through the table.
    h.publisher
        .update(|p| {
            p.connection_mut("eth1").map(|c| {
                c.enabled = true;
            })
        })
        .unwrap();
    assert_eq!(h.inb_at(&closed, ETH1, 0), "drop port_closed 6 23");
}
