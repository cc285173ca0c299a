//! SPEC.md, rule by rule, on packets built with etherparse (raw bytes for the
//! malformed ones). Each expectation is SPEC.md's per-packet line without the
//! frame number: `verdict reason proto dport`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeSet;

use common::*;
use etherparse::{
    IpFragOffset, IpHeaders, IpNumber, Ipv6Extensions, Ipv6FragmentHeader, PacketBuilder,
};
use v6fw_engine::{IcmpRule, PacketMeta, Policy, Protocol, Reason, StateConfig};

fn h() -> Harness {
    Harness::new(test_policy())
}

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
    q[4..6].copy_from_slice(&10u16.to_be_bytes());
    assert_eq!(h.inb(&q), "drop malformed 6 -");
    // A UDP packet whose payload length is exactly its header.
    let mut u = udp_in(53);
    u[4..6].copy_from_slice(&8u16.to_be_bytes());
    assert_eq!(h.inb(&u), "accept open_port 17 53");
}

#[test]
fn step2_payload_length_zero_needs_jumbo() {
    let mut h = h();
    // Payload length 0 without a hop-by-hop header.
    let mut p = udp_in(53);
    p[4..6].copy_from_slice(&[0, 0]);
    assert_eq!(h.inb(&p), "drop malformed - -");
    assert_eq!(h.out_at(&p, 0), "accept outbound - -");
    // A bare 40-byte header with next header 59 and payload length 0.
    let bare = Chain::new(&[], L4::Raw(59, vec![])).build();
    assert_eq!(bare.len(), 40);
    assert_eq!(h.inb(&bare), "drop malformed - -");
    // Payload length 0 with a hop-by-hop header lacking the Jumbo option.
    let mut hbh = Chain::new(&[Ext::Hbh], udp_to(53)).build();
    hbh[4..6].copy_from_slice(&[0, 0]);
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
    late[4..6].copy_from_slice(&[0, 0]);
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
    h.engine
        .table()
        .update(|p| {
            p.connection_mut("eth1").map(|c| {
                c.enabled = true;
            })
        })
        .unwrap();
    assert_eq!(h.inb_at(&closed, ETH1, 0), "drop port_closed 6 23");
}

// ---------------------------------------------------------------------------
// Step 4: the extension-header walk.

#[test]
fn hop_by_hop_must_be_first() {
    let mut h = h();
    assert_eq!(
        h.inb(&Chain::new(&[Ext::Hbh], tcp_to(22)).build()),
        "accept open_port 6 22"
    );
    assert_eq!(
        h.inb(&Chain::new(&[Ext::Dst, Ext::Hbh], tcp_to(22)).build()),
        "drop bad_extension_order - -"
    );
    assert_eq!(
        h.inb(&Chain::new(&[Ext::Hbh, Ext::Hbh], tcp_to(22)).build()),
        "drop bad_extension_order - -"
    );
}

#[test]
fn second_fragment_header() {
    let mut h = h();
    assert_eq!(
        h.inb(&Chain::new(&[Ext::atomic(1)], tcp_to(22)).build()),
        "accept open_port 6 22"
    );
    assert_eq!(
        h.inb(&Chain::new(&[Ext::atomic(1), Ext::atomic(2)], tcp_to(22)).build()),
        "drop bad_extension_order - -"
    );
    // Second fragment header with offset > 0 behind a first: still the order rule.
    assert_eq!(
        h.inb(&Chain::new(&[Ext::first(3), Ext::later(3)], tcp_to(22)).build()),
        "drop bad_extension_order - -"
    );
}

#[test]
fn destination_options_two_vs_three() {
    let mut h = h();
    assert_eq!(
        h.inb(&Chain::new(&[Ext::Dst, Ext::Routing(2), Ext::Dst], tcp_to(22)).build()),
        "accept open_port 6 22"
    );
    assert_eq!(
        h.inb(&Chain::new(&[Ext::Dst, Ext::Dst], tcp_to(22)).build()),
        "accept open_port 6 22"
    );
    assert_eq!(
        h.inb(&Chain::new(&[Ext::Dst, Ext::Routing(2), Ext::Dst, Ext::Dst], tcp_to(22)).build()),
        "drop bad_extension_order - -"
    );
}

#[test]
fn routing_type_0_vs_2_and_4() {
    let mut h = h();
    assert_eq!(
        h.inb(&Chain::new(&[Ext::Routing(0)], tcp_to(22)).build()),
        "drop routing_header_0 - -"
    );
    for ty in [1, 2, 3, 4, 253] {
        assert_eq!(
            h.inb(&Chain::new(&[Ext::Routing(ty)], tcp_to(22)).build()),
            "accept open_port 6 22",
            "routing type {ty}"
        );
    }
    // Repeated routing and AH headers are allowed.
    assert_eq!(
        h.inb(
            &Chain::new(
                &[Ext::Routing(2), Ext::Auth, Ext::Routing(4), Ext::Auth],
                udp_to(53)
            )
            .build()
        ),
        "accept open_port 17 53"
    );
    // A type 0 behind allowed ones.
    assert_eq!(
        h.inb(&Chain::new(&[Ext::Routing(2), Ext::Routing(0)], udp_to(53)).build()),
        "drop routing_header_0 - -"
    );
}

/// Eight headers of allowed kinds: hop-by-hop, 2 destination options,
/// 3 routing, 2 AH.
fn eight() -> Vec<Ext> {
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

#[test]
fn chain_of_8_vs_9() {
    let mut h = h();
    let mut exts = eight();
    assert_eq!(
        h.inb(&Chain::new(&exts, tcp_to(22)).build()),
        "accept open_port 6 22"
    );
    exts.push(Ext::Auth);
    assert_eq!(
        h.inb(&Chain::new(&exts, tcp_to(22)).build()),
        "drop chain_too_long - -"
    );
    // 8 headers with a fragment header among them.
    let mut with_frag = eight();
    with_frag[3] = Ext::atomic(5);
    assert_eq!(
        h.inb(&Chain::new(&with_frag, udp_to(53)).build()),
        "accept open_port 17 53"
    );
}

#[test]
fn no_next_header() {
    let mut h = h();
    assert_eq!(
        h.inb(&Chain::new(&[], L4::Raw(59, vec![0; 8])).build()),
        "drop no_upper_layer - -"
    );
    assert_eq!(
        h.inb(&Chain::new(&[Ext::Dst], L4::Raw(59, vec![])).build()),
        "drop no_upper_layer - -"
    );
    // 59 is not counted: 8 headers then 59.
    assert_eq!(
        h.inb(&Chain::new(&eight(), L4::Raw(59, vec![])).build()),
        "drop no_upper_layer - -"
    );
    // Outbound: accepted, no columns.
    let out = Chain::new(&[Ext::Dst], L4::Raw(59, vec![]))
        .outbound()
        .build();
    assert_eq!(h.out_at(&out, 0), "accept outbound - -");
}

#[test]
fn extension_header_past_the_end() {
    let mut h = h();
    for ext in [
        Ext::Hbh,
        Ext::Dst,
        Ext::Routing(2),
        Ext::Auth,
        Ext::atomic(1),
    ] {
        let full = Chain::new(&[ext], L4::Raw(59, vec![])).build();
        let hdr_len = full.len() - 40;
        for keep in [0, 1, hdr_len - 1] {
            let mut p = full[..40 + keep].to_vec();
            set_payload_length(&mut p);
            if keep == 0 {
                // Payload length 0 is step 2 for every header but a jumbo HBH.
                assert_eq!(h.inb(&p), "drop malformed - -");
                continue;
            }
            assert_eq!(
                h.inb(&p),
                "drop malformed - -",
                "{ext:?} cut to {keep} bytes"
            );
        }
    }
    // A header whose length field says more than the packet has.
    let mut p = Chain::new(&[Ext::Dst], udp_to(53)).build();
    p[41] = 2; // 24 bytes
    assert_eq!(h.inb(&p), "drop malformed - -");
}

#[test]
fn walk_order_first_violation_wins() {
    let mut h = h();
    let with = |extra: &[Ext], tail: Ext| {
        let mut v = eight();
        v.extend_from_slice(extra);
        v.push(tail);
        v
    };
    // As the 9th header, the order rules come before the count.
    for ninth in [Ext::Hbh, Ext::Dst] {
        assert_eq!(
            h.inb(&Chain::new(&with(&[], ninth), tcp_to(22)).build()),
            "drop bad_extension_order - -",
            "{ninth:?} as the 9th"
        );
    }
    let mut two_frags = eight();
    two_frags[3] = Ext::atomic(1);
    two_frags.push(Ext::atomic(2));
    assert_eq!(
        h.inb(&Chain::new(&two_frags, tcp_to(22)).build()),
        "drop bad_extension_order - -"
    );
    // The count comes before the header's own bytes and before routing type 0.
    let nine_rh0 = with(&[], Ext::Routing(0));
    assert_eq!(
        h.inb(&Chain::new(&nine_rh0, tcp_to(22)).build()),
        "drop chain_too_long - -"
    );
    let nine_auth = with(&[], Ext::Auth);
    let p = Chain::new(&nine_auth, L4::Raw(59, vec![])).build_cut(4);
    assert_eq!(h.inb(&p), "drop chain_too_long - -", "9th header cut short");
    // The header's own bytes come before routing type 0.
    let mut rh0 = Chain::new(&[Ext::Routing(0)], L4::Raw(59, vec![])).build();
    rh0[41] = 1; // says 16 bytes, has 8
    assert_eq!(h.inb(&rh0), "drop malformed - -");
    // Earlier headers' violations win over later ones.
    assert_eq!(
        h.inb(&Chain::new(&[Ext::Routing(0), Ext::Hbh], tcp_to(22)).build()),
        "drop routing_header_0 - -"
    );
    assert_eq!(
        h.inb(&Chain::new(&[Ext::Dst, Ext::Hbh, Ext::Routing(0)], tcp_to(22)).build()),
        "drop bad_extension_order - -"
    );
    assert_eq!(
        h.inb(&Chain::new(&[Ext::Routing(0)], L4::Raw(59, vec![])).build()),
        "drop routing_header_0 - -"
    );
}

// ---------------------------------------------------------------------------
// Step 5: fragments.

#[test]
fn first_fragment_needs_whole_upper_header() {
    let mut h = h();
    let first = Chain::new(&[Ext::first(7)], tcp_to(22));
    assert_eq!(
        h.inb(&first.build()),
        "accept open_port 6 22",
        "whole TCP header"
    );
    assert_eq!(
        h.inb(&first.build_cut(1)),
        "drop incomplete_chain 6 -",
        "TCP cut by one byte"
    );
    assert_eq!(
        h.inb(&first.build_cut(20)),
        "drop incomplete_chain 6 -",
        "no TCP byte at all"
    );
    let udp = Chain::new(&[Ext::first(8)], udp_to(53));
    assert_eq!(h.inb(&udp.build()), "accept open_port 17 53");
    assert_eq!(h.inb(&udp.build_cut(1)), "drop incomplete_chain 17 -");
    let icmp = Chain::new(&[Ext::first(9)], L4::Icmp { ty: 128 });
    assert_eq!(h.inb(&icmp.build()), "accept icmp_allowed 58 128");
    assert_eq!(h.inb(&icmp.build_cut(5)), "drop incomplete_chain 58 -");
    // Headers after the fragment header that run past the end.
    let ext = Chain::new(&[Ext::first(10), Ext::Dst], tcp_to(22));
    assert_eq!(h.inb(&ext.build_cut(21)), "drop incomplete_chain - -");
    // The same cuts in an unfragmented or atomic packet are malformed.
    for exts in [vec![], vec![Ext::atomic(11)]] {
        let c = Chain::new(&exts, tcp_to(22));
        assert_eq!(h.inb(&c.build_cut(1)), "drop malformed 6 -", "{exts:?}");
        let d = Chain::new(&[exts.clone(), vec![Ext::Dst]].concat(), tcp_to(22));
        assert_eq!(h.inb(&d.build_cut(21)), "drop malformed - -", "{exts:?}");
    }
}

#[test]
fn tcp_data_offset() {
    let mut h = h();
    for exts in [vec![], vec![Ext::first(1)], vec![Ext::atomic(2)]] {
        let mut p = Chain::new(&exts, tcp_to(22)).build();
        let doff = p.len() - 20 + 12;
        p[doff] = 4 << 4;
        assert_eq!(h.inb(&p), "drop malformed 6 -", "data offset 4, {exts:?}");
        p[doff] = 0;
        assert_eq!(h.inb(&p), "drop malformed 6 -", "data offset 0, {exts:?}");
        // Data offset 6 (24 bytes) with 20 bytes there.
        p[doff] = 6 << 4;
        let expect = if exts.first().is_some_and(|e| *e == Ext::first(1)) {
            "drop incomplete_chain 6 -"
        } else {
            "drop malformed 6 -"
        };
        assert_eq!(h.inb(&p), expect, "data offset 6 of 5, {exts:?}");
        // ... and with 4 more bytes it fits.
        p.extend([0; 4]);
        set_payload_length(&mut p);
        assert_eq!(
            h.inb(&p),
            "accept open_port 6 22",
            "data offset 6 fits, {exts:?}"
        );
    }
}

#[test]
fn later_fragments_follow_their_first() {
    let mut h = h();
    let later = |id| Chain::new(&[Ext::later(id)], L4::Raw(6, vec![0; 16])).build();
    let cases: Vec<(u32, Chain, &str)> = vec![
        (
            1,
            Chain::new(&[Ext::first(1)], tcp_to(22)),
            "accept open_port",
        ),
        (
            2,
            Chain::new(&[Ext::first(2)], tcp_to(80)),
            "accept global_port",
        ),
        (
            3,
            Chain::new(&[Ext::first(3)], tcp_to(23)),
            "drop port_closed",
        ),
        (
            4,
            Chain::new(&[Ext::first(4)], L4::Raw(132, vec![0; 12])),
            "drop unsupported_protocol",
        ),
        (
            5,
            Chain::new(&[Ext::first(5)], L4::Icmp { ty: 137 }),
            "drop icmp_policy",
        ),
        (
            6,
            Chain::new(&[Ext::first(6)], L4::Icmp { ty: 129 }),
            "accept icmp_allowed",
        ),
        (
            7,
            Chain::new(&[Ext::first(7), Ext::Routing(0)], tcp_to(22)),
            "drop routing_header_0",
        ),
        (
            8,
            Chain::new(&[Ext::first(8), Ext::Hbh], tcp_to(22)),
            "drop bad_extension_order",
        ),
        (
            9,
            Chain::new(&[Ext::first(9)], L4::Raw(59, vec![])),
            "drop no_upper_layer",
        ),
    ];
    for (id, first, _) in &cases {
        let p = first.build();
        assert_eq!(
            h.inb(&later(*id)),
            "drop orphan_fragment - -",
            "before its first"
        );
        h.inb(&p);
    }
    for (id, _, expect) in &cases {
        // Twice: a later fragment does not consume the memory.
        for _ in 0..2 {
            assert_eq!(h.inb(&later(*id)), format!("{expect} - -"), "id {id}");
        }
    }
    // A malformed upper header in a first fragment is remembered too.
    let mut bad = Chain::new(&[Ext::first(20)], tcp_to(22)).build();
    let at = bad.len() - 8;
    bad[at] = 0;
    assert_eq!(h.inb(&bad), "drop malformed 6 -");
    assert_eq!(h.inb(&later(20)), "drop malformed - -");
    // A later fragment's own chain is not walked past its fragment header.
    let later_rh0 = Chain::new(&[Ext::later(1), Ext::Routing(0)], tcp_to(23)).build();
    assert_eq!(h.inb(&later_rh0), "accept open_port - -");
}

#[test]
fn fragment_key_is_source_destination_identification() {
    let mut h = h();
    h.inb(&Chain::new(&[Ext::first(42)], tcp_to(22)).build());
    let later = Chain::new(&[Ext::later(42)], L4::Raw(6, vec![0; 8]));
    assert_eq!(h.inb(&later.build()), "accept open_port - -");
    assert_eq!(
        h.inb(&later.clone().from(OTHER).build()),
        "drop orphan_fragment - -"
    );
    let other_id = Chain::new(&[Ext::later(43)], L4::Raw(6, vec![0; 8]));
    assert_eq!(h.inb(&other_id.build()), "drop orphan_fragment - -");
    let mut other_dst = later.clone();
    other_dst.dst = OTHER;
    assert_eq!(h.inb(&other_dst.build()), "drop orphan_fragment - -");
}

#[test]
fn incomplete_first_fragments_are_not_remembered() {
    let mut h = h();
    let first = Chain::new(&[Ext::first(5)], tcp_to(22));
    let later = Chain::new(&[Ext::later(5)], L4::Raw(6, vec![0; 8])).build();
    assert_eq!(h.inb(&first.build_cut(1)), "drop incomplete_chain 6 -");
    assert_eq!(h.inb(&later), "drop orphan_fragment - -");
    // An incomplete first fragment after a complete one with the same key:
    // "its later fragments are then orphan_fragment".
    assert_eq!(h.inb(&first.build()), "accept open_port 6 22");
    assert_eq!(h.inb(&later), "accept open_port - -");
    assert_eq!(h.inb(&first.build_cut(1)), "drop incomplete_chain 6 -");
    assert_eq!(h.inb(&later), "drop orphan_fragment - -");
}

#[test]
fn atomic_fragments_are_unfragmented_and_never_remembered() {
    let mut h = h();
    let atomic = Chain::new(&[Ext::atomic(77)], tcp_to(22)).build();
    assert_eq!(h.inb(&atomic), "accept open_port 6 22");
    let later = Chain::new(&[Ext::later(77)], L4::Raw(6, vec![0; 8])).build();
    assert_eq!(h.inb(&later), "drop orphan_fragment - -");
    // Atomic fragment to a closed port: same as unfragmented.
    let closed = Chain::new(&[Ext::atomic(78)], tcp_to(23)).build();
    assert_eq!(h.inb(&closed), h.inb(&tcp_in(23)));
    // An atomic fragment does not erase what a first fragment left.
    h.inb(&Chain::new(&[Ext::first(79)], udp_to(53)).build());
    h.inb(&Chain::new(&[Ext::atomic(79)], udp_to(54)).build());
    let later79 = Chain::new(&[Ext::later(79)], L4::Raw(17, vec![0; 8])).build();
    assert_eq!(h.inb(&later79), "accept open_port - -");
}

#[test]
fn later_first_fragment_replaces_memory() {
    let mut h = h();
    let later = Chain::new(&[Ext::later(6)], L4::Raw(6, vec![0; 8])).build();
    assert_eq!(
        h.inb(&Chain::new(&[Ext::first(6)], tcp_to(22)).build()),
        "accept open_port 6 22"
    );
    assert_eq!(h.inb(&later), "accept open_port - -");
    assert_eq!(
        h.inb(&Chain::new(&[Ext::first(6)], tcp_to(23)).build()),
        "drop port_closed 6 23"
    );
    assert_eq!(h.inb(&later), "drop port_closed - -");
    assert_eq!(
        h.inb(&Chain::new(&[Ext::first(6)], tcp_to(80)).build()),
        "accept global_port 6 80"
    );
    assert_eq!(h.inb(&later), "accept global_port - -");
}

#[test]
fn violation_before_fragment_header_is_not_remembered() {
    let mut h = h();
    let later = |id| Chain::new(&[Ext::later(id)], L4::Raw(6, vec![0; 8])).build();
    let before: [(u32, Vec<Ext>, &str); 3] = [
        (
            1,
            vec![Ext::Dst, Ext::Hbh, Ext::first(1)],
            "drop bad_extension_order - -",
        ),
        (
            2,
            vec![Ext::Routing(0), Ext::first(2)],
            "drop routing_header_0 - -",
        ),
        (
            3,
            [eight(), vec![Ext::first(3)]].concat(),
            "drop chain_too_long - -",
        ),
    ];
    for (id, exts, expect) in before {
        assert_eq!(h.inb(&Chain::new(&exts, tcp_to(22)).build()), expect);
        assert_eq!(h.inb(&later(id)), "drop orphan_fragment - -", "id {id}");
    }
    // The same violation in a later fragment, before its fragment header.
    let bad_later = Chain::new(&[Ext::Routing(0), Ext::later(4)], tcp_to(22)).build();
    assert_eq!(h.inb(&bad_later), "drop routing_header_0 - -");
    let dst3 = Chain::new(&[Ext::Dst, Ext::Dst, Ext::Dst, Ext::later(4)], tcp_to(22)).build();
    assert_eq!(h.inb(&dst3), "drop bad_extension_order - -");
}

#[test]
fn fragment_memory_times_out() {
    let mut h = h();
    let first = Chain::new(&[Ext::first(11)], tcp_to(22)).build();
    let later = Chain::new(&[Ext::later(11)], L4::Raw(6, vec![0; 8])).build();
    let t0 = 1_000 * SECOND;
    assert_eq!(h.inb_at(&first, ETH0, t0), "accept open_port 6 22");
    assert_eq!(
        h.inb_at(&later, ETH0, t0 + 60 * SECOND - 1),
        "accept open_port - -"
    );
    assert_eq!(
        h.inb_at(&later, ETH0, t0 + 60 * SECOND),
        "drop orphan_fragment - -"
    );
    // With a configured timeout.
    let cfg = StateConfig {
        frag_timeout_ns: 5,
        ..StateConfig::default()
    };
    let mut h = Harness::with_state(test_policy(), cfg);
    h.inb_at(&first, ETH0, 10);
    assert_eq!(h.inb_at(&later, ETH0, 14), "accept open_port - -");
    assert_eq!(h.inb_at(&later, ETH0, 15), "drop orphan_fragment - -");
}

#[test]
fn fragment_built_by_etherparse() {
    // PacketBuilder with an Ipv6Extensions fragment header.
    let mut h = h();
    let ip = |offset: u16, more: bool| {
        let exts = Ipv6Extensions {
            fragment: Some(Ipv6FragmentHeader::new(
                IpNumber::TCP,
                IpFragOffset::try_new(offset).unwrap(),
                more,
                0xABCD,
            )),
            ..Default::default()
        };
        let hdr = etherparse::Ipv6Header {
            hop_limit: 64,
            source: REMOTE,
            destination: LOCAL,
            ..Default::default()
        };
        IpHeaders::Ipv6(hdr, exts)
    };
    let b = PacketBuilder::ip(ip(0, true)).tcp(1000, 8080, 7, 512);
    let mut first = Vec::new();
    b.write(&mut first, &[0; 16]).unwrap();
    assert_eq!(h.inb(&first), "accept open_port 6 8080");
    let b = PacketBuilder::ip(ip(3, false)).tcp(1000, 8080, 7, 512);
    let mut last = Vec::new();
    b.write(&mut last, &[]).unwrap();
    assert_eq!(h.inb(&last), "accept open_port - -");
}

// ---------------------------------------------------------------------------
// Step 6: upper layer.

#[test]
fn short_upper_headers_are_malformed() {
    let mut h = h();
    for (l4, proto) in [
        (tcp_to(22), 6),
        (udp_to(53), 17),
        (L4::Icmp { ty: 128 }, 58),
    ] {
        let c = Chain::new(&[], l4.clone());
        let full = l4.bytes().len();
        let need = match proto {
            6 => 20,
            17 => 8,
            _ => 4,
        };
        assert!(
            h.inb(&c.build_cut(full - need)).starts_with("accept "),
            "{l4:?} at minimum"
        );
        assert_eq!(
            h.inb(&c.build_cut(full - need + 1)),
            format!("drop malformed {proto} -"),
            "{l4:?} one byte short"
        );
    }
}

#[test]
fn own_then_global_then_closed() {
    let mut h = h();
    assert_eq!(h.inb(&tcp_in(22)), "accept open_port 6 22");
    assert_eq!(h.inb(&udp_in(53)), "accept open_port 17 53");
    assert_eq!(
        h.inb(&tcp_in(8080)),
        "accept open_port 6 8080",
        "own before global"
    );
    assert_eq!(h.inb(&tcp_in(80)), "accept global_port 6 80");
    assert_eq!(h.inb(&udp_in(5353)), "accept global_port 17 5353");
    assert_eq!(
        h.inb(&tcp_in(443)),
        "drop port_closed 6 443",
        "ignored global"
    );
    assert_eq!(
        h.inb(&udp_in(22)),
        "drop port_closed 17 22",
        "protocol matters"
    );
    assert_eq!(h.inb(&tcp_in(53)), "drop port_closed 6 53");
    assert_eq!(h.inb(&tcp_in(0)), "drop port_closed 6 0");
    assert_eq!(h.inb(&tcp_in(65535)), "drop port_closed 6 65535");
    // wlan0: no own pairs, ignores nothing.
    assert_eq!(h.inb_at(&tcp_in(443), WLAN0, 0), "accept global_port 6 443");
    assert_eq!(
        h.inb_at(&tcp_in(8080), WLAN0, 0),
        "accept global_port 6 8080"
    );
    assert_eq!(h.inb_at(&tcp_in(22), WLAN0, 0), "drop port_closed 6 22");
}

#[test]
fn unknown_interface_uses_globals_with_firewall_on() {
    let mut h = h();
    assert_eq!(
        h.inb_at(&tcp_in(80), UNKNOWN_IF, 0),
        "accept global_port 6 80"
    );
    assert_eq!(
        h.inb_at(&tcp_in(443), UNKNOWN_IF, 0),
        "accept global_port 6 443"
    );
    assert_eq!(
        h.inb_at(&tcp_in(22), UNKNOWN_IF, 0),
        "drop port_closed 6 22"
    );
    assert_eq!(
        h.inb_at(&udp_in(5353), UNKNOWN_IF, 0),
        "accept global_port 17 5353"
    );
    let rh0 = Chain::new(&[Ext::Routing(0)], tcp_to(80)).build();
    assert_eq!(h.inb_at(&rh0, UNKNOWN_IF, 0), "drop routing_header_0 - -");
    // No connections at all.
    let mut p = Policy::default();
    p.open_global(pair(25, Protocol::Tcp), "smtp");
    let mut h = Harness::new(p);
    assert_eq!(h.inb_at(&tcp_in(25), 1, 0), "accept global_port 6 25");
    assert_eq!(h.inb_at(&tcp_in(26), 1, 0), "drop port_closed 6 26");
}

#[test]
fn icmp_default_policy() {
    let mut h = h();
    let allowed: BTreeSet<u8> = [
        1, 2, 3, 4, 128, 129, 130, 131, 132, 143, 141, 142, 148, 149, 151, 152, 153,
    ]
    .into_iter()
    .collect();
    for ty in 0..=255u8 {
        for hop in [255, 254, 64, 1] {
            let got = h.inb(&icmp_pkt(ty, 0, hop));
            let ok = allowed.contains(&ty) || ((133..=136).contains(&ty) && hop == 255);
            let expect = if ok {
                format!("accept icmp_allowed 58 {ty}")
            } else {
                format!("drop icmp_policy 58 {ty}")
            };
            assert_eq!(got, expect, "type {ty} hop limit {hop}");
        }
    }
    assert_eq!(
        h.inb(&icmp_pkt(137, 0, 255)),
        "drop icmp_policy 58 137",
        "redirect"
    );
    // Errors are judged by type: the code does not matter.
    assert_eq!(h.inb(&icmp_pkt(1, 200, 1)), "accept icmp_allowed 58 1");
}

#[test]
fn icmp_policy_is_configurable() {
    let mut p = test_policy();
    p.icmp.set(128, IcmpRule::Deny);
    p.icmp.set(137, IcmpRule::Allow);
    p.icmp.set(200, IcmpRule::AllowIfHopLimit255);
    let mut h = Harness::new(p);
    assert_eq!(h.inb(&icmp_pkt(128, 0, 64)), "drop icmp_policy 58 128");
    assert_eq!(h.inb(&icmp_pkt(129, 0, 64)), "accept icmp_allowed 58 129");
    assert_eq!(h.inb(&icmp_pkt(137, 0, 64)), "accept icmp_allowed 58 137");
    assert_eq!(h.inb(&icmp_pkt(200, 0, 255)), "accept icmp_allowed 58 200");
    assert_eq!(h.inb(&icmp_pkt(200, 0, 254)), "drop icmp_policy 58 200");
    // Changed while running.
    h.engine
        .table()
        .update(|p| {
            p.icmp.set(128, IcmpRule::Allow);
            Ok::<_, ()>(())
        })
        .unwrap();
    assert_eq!(h.inb(&icmp_pkt(128, 0, 64)), "accept icmp_allowed 58 128");
}

#[test]
fn other_upper_layers_are_unsupported() {
    let mut h = h();
    for proto in [132u8, 50, 135, 139, 140, 253, 254, 1, 4, 41, 255] {
        assert_eq!(
            h.inb(&raw_ip_pkt(proto, &[0; 32])),
            format!("drop unsupported_protocol {proto} -"),
            "protocol {proto}"
        );
        // No header size is known: even zero bytes.
        let bare = Chain::new(&[Ext::Dst], L4::Raw(proto, vec![])).build();
        assert_eq!(h.inb(&bare), format!("drop unsupported_protocol {proto} -"));
    }
    // ESP after AH.
    assert_eq!(
        h.inb(&Chain::new(&[Ext::Auth], L4::Raw(50, vec![0; 16])).build()),
        "drop unsupported_protocol 50 -"
    );
}

// ---------------------------------------------------------------------------
// Outbound and state.

#[test]
fn outbound_is_always_accepted_with_walk_columns() {
    let mut h = h();
    let out = |exts: &[Ext], l4: L4| Chain::new(exts, l4).outbound().build();
    assert_eq!(h.out_at(&out(&[], tcp_to(23)), 0), "accept outbound 6 23");
    assert_eq!(
        h.out_at(&out(&[Ext::Routing(0)], tcp_to(23)), 0),
        "accept outbound - -"
    );
    assert_eq!(
        h.out_at(&out(&[], L4::Raw(132, vec![0; 8])), 0),
        "accept outbound 132 -"
    );
    assert_eq!(
        h.out_at(&out(&[], L4::Icmp { ty: 137 }), 0),
        "accept outbound 58 137"
    );
    assert_eq!(
        h.out_at(&out(&[Ext::later(1)], tcp_to(23)), 0),
        "accept outbound - -"
    );
    let cut = Chain::new(&[], tcp_to(23)).outbound().build_cut(1);
    assert_eq!(h.out_at(&cut, 0), "accept outbound 6 -");
    // On a disabled connection as well.
    let p = out(&[], tcp_to(23));
    assert_eq!(
        h.line(&p, PacketMeta::outbound(ETH1, 0)),
        "accept outbound 6 23"
    );
}

/// Outbound LOCAL:sport -> REMOTE:dport.
fn out_flow(exts: &[Ext], l4: L4) -> Vec<u8> {
    Chain::new(exts, l4).outbound().build()
}

#[test]
fn established_replies() {
    let mut h = h();
    let reply = tcp_pkt(REMOTE, LOCAL, 443, 50_000);
    assert_eq!(h.inb(&reply), "drop port_closed 6 50000");
    let out = out_flow(
        &[],
        L4::Tcp {
            sport: 50_000,
            dport: 443,
        },
    );
    assert_eq!(h.out_at(&out, 0), "accept outbound 6 443");
    assert_eq!(h.worker.flow_count(0), 1);
    assert_eq!(h.inb(&reply), "accept established 6 50000");
    // Not the reverse of the flow: other remote port, other remote, other protocol.
    assert_eq!(
        h.inb(&tcp_pkt(REMOTE, LOCAL, 444, 50_000)),
        "drop port_closed 6 50000"
    );
    assert_eq!(
        h.inb(&tcp_pkt(OTHER, LOCAL, 443, 50_000)),
        "drop port_closed 6 50000"
    );
    assert_eq!(
        h.inb(&udp_pkt(REMOTE, LOCAL, 443, 50_000)),
        "drop port_closed 17 50000"
    );
    // UDP.
    let out = out_flow(
        &[],
        L4::Udp {
            sport: 50_001,
            dport: 53,
        },
    );
    h.out_at(&out, 0);
    assert_eq!(
        h.inb(&udp_pkt(REMOTE, LOCAL, 53, 50_001)),
        "accept established 17 50001"
    );
    // A reply on another connection (the flow table is the worker's).
    assert_eq!(h.inb_at(&reply, WLAN0, 0), "accept established 6 50000");
}

#[test]
fn open_and_global_ports_come_before_established() {
    let mut h = h();
    h.out_at(
        &out_flow(
            &[],
            L4::Tcp {
                sport: 22,
                dport: 5555,
            },
        ),
        0,
    );
    assert_eq!(
        h.inb(&tcp_pkt(REMOTE, LOCAL, 5555, 22)),
        "accept open_port 6 22"
    );
    h.out_at(
        &out_flow(
            &[],
            L4::Tcp {
                sport: 80,
                dport: 5556,
            },
        ),
        0,
    );
    assert_eq!(
        h.inb(&tcp_pkt(REMOTE, LOCAL, 5556, 80)),
        "accept global_port 6 80"
    );
    // With 80 closed, the same reply is established.
    h.engine
        .table()
        .update(|p| {
            p.close_global(pair(80, Protocol::Tcp));
            Ok::<_, ()>(())
        })
        .unwrap();
    assert_eq!(
        h.inb(&tcp_pkt(REMOTE, LOCAL, 5556, 80)),
        "accept established 6 80"
    );
}

#[test]
fn flows_only_from_checked_headers_in_whole_or_first_fragments() {
    let mut h = h();
    let reply = |sport, dport| tcp_pkt(REMOTE, LOCAL, sport, dport);
    let tcp = |s, d| L4::Tcp { sport: s, dport: d };
    // Not recorded: cut TCP header, later fragment, incomplete first fragment,
    // violation before the upper layer.
    let cut = Chain::new(&[], tcp(1001, 443)).outbound().build_cut(1);
    assert_eq!(h.out_at(&cut, 0), "accept outbound 6 -");
    let later = out_flow(&[Ext::later(1)], tcp(1002, 443));
    assert_eq!(h.out_at(&later, 0), "accept outbound - -");
    let incomplete = Chain::new(&[Ext::first(2)], tcp(1003, 443))
        .outbound()
        .build_cut(1);
    assert_eq!(h.out_at(&incomplete, 0), "accept outbound 6 -");
    let rh0 = out_flow(&[Ext::Routing(0)], tcp(1004, 443));
    assert_eq!(h.out_at(&rh0, 0), "accept outbound - -");
    let mut doff = out_flow(&[], tcp(1005, 443));
    let at = doff.len() - 8;
    doff[at] = 4 << 4;
    assert_eq!(h.out_at(&doff, 0), "accept outbound 6 -");
    assert_eq!(h.worker.flow_count(0), 0);
    for sport in 1001..=1005 {
        assert_eq!(
            h.inb(&reply(443, sport)),
            format!("drop port_closed 6 {sport}")
        );
    }
    // Recorded: unfragmented, atomic, first fragment.
    h.out_at(&out_flow(&[], tcp(2001, 443)), 0);
    h.out_at(&out_flow(&[Ext::atomic(3)], tcp(2002, 443)), 0);
    h.out_at(&out_flow(&[Ext::first(4)], tcp(2003, 443)), 0);
    h.out_at(
        &out_flow(&[Ext::Hbh, Ext::Dst, Ext::first(5)], tcp(2004, 443)),
        0,
    );
    assert_eq!(h.worker.flow_count(0), 4);
    for sport in 2001..=2004 {
        assert_eq!(
            h.inb(&reply(443, sport)),
            format!("accept established 6 {sport}")
        );
    }
}

#[test]
fn state_off_means_no_established() {
    let mut p = test_policy();
    p.state = false;
    let mut h = Harness::new(p);
    h.out_at(
        &out_flow(
            &[],
            L4::Tcp {
                sport: 50_000,
                dport: 443,
            },
        ),
        0,
    );
    assert_eq!(h.worker.flow_count(0), 0, "nothing recorded with state off");
    let reply = tcp_pkt(REMOTE, LOCAL, 443, 50_000);
    assert_eq!(h.inb(&reply), "drop port_closed 6 50000");
    // Open ports still work.
    assert_eq!(h.inb(&tcp_in(22)), "accept open_port 6 22");
    // Switch on: flows from now on are tracked.
    h.engine
        .table()
        .update(|p| {
            p.state = true;
            Ok::<_, ()>(())
        })
        .unwrap();
    assert_eq!(h.inb(&reply), "drop port_closed 6 50000");
    h.out_at(
        &out_flow(
            &[],
            L4::Tcp {
                sport: 50_000,
                dport: 443,
            },
        ),
        0,
    );
    assert_eq!(h.inb(&reply), "accept established 6 50000");
    // And off again: the recorded flow no longer lets replies in.
    h.engine
        .table()
        .update(|p| {
            p.state = false;
            Ok::<_, ()>(())
        })
        .unwrap();
    assert_eq!(h.inb(&reply), "drop port_closed 6 50000");
}

#[test]
fn flow_idle_timeout() {
    let cfg = StateConfig {
        tcp_idle_ns: 10 * SECOND,
        udp_idle_ns: 3 * SECOND,
        ..StateConfig::default()
    };
    let mut h = Harness::with_state(test_policy(), cfg);
    h.out_at(
        &out_flow(
            &[],
            L4::Tcp {
                sport: 50_000,
                dport: 443,
            },
        ),
        0,
    );
    h.out_at(
        &out_flow(
            &[],
            L4::Udp {
                sport: 50_000,
                dport: 443,
            },
        ),
        0,
    );
    let tcp_reply = tcp_pkt(REMOTE, LOCAL, 443, 50_000);
    let udp_reply = udp_pkt(REMOTE, LOCAL, 443, 50_000);
    assert_eq!(
        h.inb_at(&udp_reply, ETH0, 3 * SECOND - 1),
        "accept established 17 50000"
    );
    // The reply refreshed the UDP flow to 2*3 s - 1.
    assert_eq!(
        h.inb_at(&udp_reply, ETH0, 6 * SECOND - 2),
        "accept established 17 50000"
    );
    assert_eq!(
        h.inb_at(&udp_reply, ETH0, 9 * SECOND),
        "drop port_closed 17 50000"
    );
    assert_eq!(
        h.inb_at(&tcp_reply, ETH0, 10 * SECOND - 1),
        "accept established 6 50000"
    );
    assert_eq!(
        h.inb_at(&tcp_reply, ETH0, 30 * SECOND),
        "drop port_closed 6 50000"
    );
    // Outbound traffic refreshes too.
    h.out_at(
        &out_flow(
            &[],
            L4::Tcp {
                sport: 50_002,
                dport: 443,
            },
        ),
        100 * SECOND,
    );
    h.out_at(
        &out_flow(
            &[],
            L4::Tcp {
                sport: 50_002,
                dport: 443,
            },
        ),
        108 * SECOND,
    );
    let r2 = tcp_pkt(REMOTE, LOCAL, 443, 50_002);
    assert_eq!(
        h.inb_at(&r2, ETH0, 117 * SECOND),
        "accept established 6 50002"
    );
    assert_eq!(h.worker.flow_count(200 * SECOND), 0);
}

// ---------------------------------------------------------------------------
// Every reason, and the counters.

#[test]
fn every_reason_is_reachable_and_counted() {
    let mut h = h();
    let mut p4 = Vec::new();
    PacketBuilder::ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64)
        .udp(1, 53)
        .write(&mut p4, &[])
        .unwrap();
    let c = |exts: &[Ext], l4: L4| Chain::new(exts, l4).build();
    h.out_at(
        &out_flow(
            &[],
            L4::Tcp {
                sport: 50_000,
                dport: 443,
            },
        ),
        0,
    );
    let packets: Vec<(Vec<u8>, u32)> = vec![
        (p4, ETH0),
        (tcp_in(22)[..30].to_vec(), ETH0),
        (tcp_in(23), ETH1),
        (c(&[Ext::Dst, Ext::Hbh], tcp_to(22)), ETH0),
        (c(&[Ext::Routing(0)], tcp_to(22)), ETH0),
        (c(&[eight(), vec![Ext::Auth]].concat(), tcp_to(22)), ETH0),
        (c(&[], L4::Raw(59, vec![0; 8])), ETH0),
        (Chain::new(&[Ext::first(1)], tcp_to(22)).build_cut(1), ETH0),
        (c(&[Ext::later(2)], tcp_to(22)), ETH0),
        (tcp_in(22), ETH0),
        (tcp_in(80), ETH0),
        (tcp_pkt(REMOTE, LOCAL, 443, 50_000), ETH0),
        (tcp_in(23), ETH0),
        (icmp_pkt(128, 0, 64), ETH0),
        (icmp_pkt(137, 0, 255), ETH0),
        (raw_ip_pkt(132, &[0; 12]), ETH0),
    ];
    let mut seen = BTreeSet::new();
    seen.insert(Reason::Outbound);
    for (p, ifx) in &packets {
        seen.insert(h.decide(p, PacketMeta::inbound(*ifx, 0)).reason);
    }
    let all: BTreeSet<Reason> = Reason::ALL.into_iter().collect();
    assert_eq!(seen, all);
    let totals = h.engine.counters().totals();
    let sum: u64 = Reason::ALL.iter().map(|r| totals.get(*r)).sum();
    assert_eq!(sum, packets.len() as u64 + 1);
    for r in Reason::ALL {
        assert!(totals.get(r) >= 1, "{r} counted");
    }
}
