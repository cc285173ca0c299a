//! SPEC.md step 4, the extension-header walk: header order, routing type 0,
//! chain length, no next header, headers past the end, and walk order.
//!
//! Packets are built with etherparse (raw bytes for the malformed ones). Each
//! expectation is SPEC.md's per-packet line without the frame number:
//! `verdict reason proto dport`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::*;

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
    set_first_ext_len(&mut p, 60, 2); // 24 bytes
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
    set_first_ext_len(&mut rh0, 43, 1); // says 16 bytes, has 8
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
