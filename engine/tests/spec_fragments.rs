//! SPEC.md step 5: fragments, the first fragment's upper header, and the
//! memory of first fragments that later fragments follow.
//!
//! Packets are built with etherparse (raw bytes for the malformed ones). Each
//! expectation is SPEC.md's per-packet line without the frame number:
//! `verdict reason proto dport`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::*;
use etherparse::{
    IpFragOffset, IpHeaders, IpNumber, Ipv6Extensions, Ipv6FragmentHeader, PacketBuilder,
};
use v6fw_engine::StateConfig;

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
    // Cut by 4: 16 bytes, a multiple of 8 (a cut to another length breaks
    // step 5's length rule first: spec_fragment_length.rs).
    assert_eq!(
        h.inb(&first.build_cut(4)),
        "drop incomplete_chain 6 -",
        "TCP cut to 16 bytes"
    );
    assert_eq!(
        h.inb(&first.build_cut(20)),
        "drop incomplete_chain 6 -",
        "no TCP byte at all"
    );
    let udp = Chain::new(&[Ext::first(8)], udp_to(53));
    assert_eq!(h.inb(&udp.build()), "accept open_port 17 53");
    assert_eq!(h.inb(&udp.build_cut(8)), "drop incomplete_chain 17 -");
    let icmp = Chain::new(&[Ext::first(9)], L4::Icmp { ty: 128 });
    assert_eq!(h.inb(&icmp.build()), "accept icmp_allowed 58 128");
    assert_eq!(h.inb(&icmp.build_cut(8)), "drop incomplete_chain 58 -");
    // Headers after the fragment header that run past the end.
    let ext = Chain::new(&[Ext::first(10), Ext::Dst], tcp_to(22));
    assert_eq!(h.inb(&ext.build_cut(28)), "drop incomplete_chain - -");
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
        // A first fragment is padded to 24 bytes (M = 1: a multiple of 8).
        let mut p = Chain::new(&exts, tcp_to(22)).build();
        let doff = 40 + 8 * exts.len() + 12;
        let there = p.len() - (40 + 8 * exts.len());
        p[doff] = 4 << 4;
        assert_eq!(h.inb(&p), "drop malformed 6 -", "data offset 4, {exts:?}");
        p[doff] = 0;
        assert_eq!(h.inb(&p), "drop malformed 6 -", "data offset 0, {exts:?}");
        // A data offset 4 bytes past the bytes there.
        let words = u8::try_from(there / 4 + 1).unwrap();
        p[doff] = words << 4;
        let first = exts.first().is_some_and(|e| *e == Ext::first(1));
        let expect = if first {
            "drop incomplete_chain 6 -"
        } else {
            "drop malformed 6 -"
        };
        assert_eq!(
            h.inb(&p),
            expect,
            "data offset {words} of {there} bytes, {exts:?}"
        );
        // ... and with 8 more bytes it fits (8: a first fragment stays a
        // multiple of 8).
        p.extend([0; 8]);
        set_payload_length(&mut p);
        assert_eq!(
            h.inb(&p),
            "accept open_port 6 22",
            "data offset {words} fits, {exts:?}"
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
    let at = 40 + 8 + 12; // the TCP data offset, before the padding
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
    assert_eq!(h.inb(&first.build_cut(4)), "drop incomplete_chain 6 -");
    assert_eq!(h.inb(&later), "drop orphan_fragment - -");
    // An incomplete first fragment after a complete one with the same key:
    // "its later fragments are then orphan_fragment".
    assert_eq!(h.inb(&first.build()), "accept open_port 6 22");
    assert_eq!(h.inb(&later), "accept open_port - -");
    assert_eq!(h.inb(&first.build_cut(4)), "drop incomplete_chain 6 -");
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
    b.write(&mut first, &[0; 20]).unwrap();
    assert_eq!(h.inb(&first), "accept open_port 6 8080");
    // Its fragmentable part is 20 + 20 = 40 bytes: offset 3 (24 bytes)
    // starts inside it (RFC 5722), offset 5 (40 bytes) after it.
    let later = |offset| {
        let b = PacketBuilder::ip(ip(offset, false)).tcp(1000, 8080, 7, 512);
        let mut v = Vec::new();
        b.write(&mut v, &[]).unwrap();
        v
    };
    assert_eq!(h.inb(&later(3)), "drop fragment_overlap - -");
    assert_eq!(h.inb(&later(5)), "accept open_port - -");
}
