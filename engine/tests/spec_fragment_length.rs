//! SPEC.md step 5's first bullet, the fragment length rule of RFC 8200 §4.5:
//! with M = 1 the fragment's length must be a multiple of 8, and the bytes
//! before the fragment header (extension headers only) + offset × 8 + the
//! fragment's length must not be over 65,535; else `drop malformed - -`,
//! met when the walk reaches the fragment header, and never remembered.
//!
//! Each expectation is SPEC.md's per-packet line without the frame number:
//! `verdict reason proto dport`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::*;
use v6fw_engine::PacketMeta;

fn frag(offset: u16, more: bool, id: u32) -> Ext {
    Ext::Frag { offset, more, id }
}

/// A fragment (offset, M) whose fragment is `len` bytes of SCTP (132: no
/// known header size, so a first fragment is decided and remembered), with
/// `exts` before the fragment header.
fn sctp(exts: &[Ext], offset: u16, more: bool, id: u32, len: usize) -> Vec<u8> {
    let mut all = exts.to_vec();
    all.push(frag(offset, more, id));
    Chain::new(&all, L4::Raw(132, vec![0; len])).build_unpadded()
}

#[test]
fn m1_lengths_7_8_9() {
    let mut h = h();
    // First fragments.
    assert_eq!(h.inb(&sctp(&[], 0, true, 1, 7)), "drop malformed - -");
    assert_eq!(
        h.inb(&sctp(&[], 0, true, 2, 8)),
        "drop unsupported_protocol 132 -"
    );
    assert_eq!(h.inb(&sctp(&[], 0, true, 3, 9)), "drop malformed - -");
    // Later fragments: malformed, not orphan_fragment.
    assert_eq!(h.inb(&sctp(&[], 5, true, 4, 7)), "drop malformed - -");
    assert_eq!(h.inb(&sctp(&[], 5, true, 4, 8)), "drop orphan_fragment - -");
    assert_eq!(h.inb(&sctp(&[], 5, true, 4, 9)), "drop malformed - -");
    // A TCP first fragment of 20 bytes: the rule comes before the upper layer.
    let tcp = Chain::new(&[Ext::first(5)], tcp_to(22));
    assert_eq!(h.inb(&tcp.build_unpadded()), "drop malformed - -");
    assert_eq!(h.inb(&tcp.build()), "accept open_port 6 22", "padded to 24");
}

#[test]
fn m0_lengths_7_8_9() {
    let mut h = h();
    // Atomic fragments: any length.
    for len in [7, 8, 9] {
        assert_eq!(
            h.inb(&sctp(&[], 0, false, 10, len)),
            "drop unsupported_protocol 132 -",
            "atomic, {len} bytes"
        );
    }
    // Last fragments: any length, decided by the memory.
    for len in [7, 8, 9] {
        assert_eq!(
            h.inb(&sctp(&[], 5, false, 11, len)),
            "drop orphan_fragment - -",
            "last, {len} bytes"
        );
    }
    // After a remembered first fragment (open 22/tcp, 40 bytes): its verdict.
    let first = Chain::new(&[Ext::first(12)], L4::Raw(6, vec![0; 0]));
    let mut first = first.build_unpadded();
    let mut tcp = tcp_to(22).bytes();
    tcp.resize(40, 0);
    first.extend(tcp);
    set_payload_length(&mut first);
    assert_eq!(h.inb(&first), "accept open_port 6 22");
    for len in [7, 8, 9] {
        assert_eq!(
            h.inb(&sctp(&[], 5, false, 12, len)),
            "accept open_port - -",
            "last, {len} bytes"
        );
    }
}

#[test]
fn the_65535_boundary_without_an_extension_header_before() {
    let mut h = h();
    // Offset 8191 (65,528 bytes) + 7 = 65,535: allowed; + 8: over.
    assert_eq!(
        h.inb(&sctp(&[], 8191, false, 20, 7)),
        "drop orphan_fragment - -"
    );
    assert_eq!(h.inb(&sctp(&[], 8191, false, 20, 8)), "drop malformed - -");
    // With M = 1 (a multiple of 8): 65,520 + 8 = 65,528 allowed;
    // 65,528 + 8 and 65,520 + 16 = 65,536 over.
    assert_eq!(
        h.inb(&sctp(&[], 8190, true, 21, 8)),
        "drop orphan_fragment - -"
    );
    assert_eq!(h.inb(&sctp(&[], 8191, true, 21, 8)), "drop malformed - -");
    assert_eq!(h.inb(&sctp(&[], 8190, true, 21, 16)), "drop malformed - -");
}

#[test]
fn the_65535_boundary_with_an_extension_header_before() {
    let mut h = h();
    // 8 bytes of destination options + 65,520 + 7 = 65,535: allowed; + 8: over.
    assert_eq!(
        h.inb(&sctp(&[Ext::Dst], 8190, false, 30, 7)),
        "drop orphan_fragment - -"
    );
    assert_eq!(
        h.inb(&sctp(&[Ext::Dst], 8190, false, 30, 8)),
        "drop malformed - -"
    );
    // Hop-by-hop + destination options (16 bytes): 16 + 65,512 + 7.
    let two = [Ext::Hbh, Ext::Dst];
    assert_eq!(
        h.inb(&sctp(&two, 8189, false, 31, 7)),
        "drop orphan_fragment - -"
    );
    assert_eq!(h.inb(&sctp(&two, 8189, false, 31, 8)), "drop malformed - -");
    // Headers after the fragment header count in the fragment's length.
    let after = Chain::new(&[frag(8190, false, 32), Ext::Dst], L4::Raw(132, vec![0; 8]));
    assert_eq!(h.inb(&after.build_unpadded()), "drop malformed - -");
}

#[test]
fn a_malformed_first_fragment_leaves_its_later_fragments_orphans() {
    let mut h = h();
    let later = sctp(&[], 5, false, 40, 8);
    assert_eq!(h.inb(&sctp(&[], 0, true, 40, 9)), "drop malformed - -");
    assert_eq!(h.inb(&later), "drop orphan_fragment - -");
    // After a good first fragment with the same key: the malformed one
    // replaces its memory.
    assert_eq!(
        h.inb(&sctp(&[], 0, true, 40, 8)),
        "drop unsupported_protocol 132 -"
    );
    assert_eq!(h.inb(&later), "drop unsupported_protocol - -");
    assert_eq!(h.inb(&sctp(&[], 0, true, 40, 15)), "drop malformed - -");
    assert_eq!(h.inb(&later), "drop orphan_fragment - -");
}

#[test]
fn a_malformed_later_fragment_after_a_good_first() {
    let mut h = h();
    let first = Chain::new(&[Ext::first(50)], tcp_to(22)).build();
    assert_eq!(h.inb(&first), "accept open_port 6 22");
    assert_eq!(h.inb(&sctp(&[], 5, true, 50, 12)), "drop malformed - -");
    assert_eq!(h.inb(&sctp(&[], 8191, false, 50, 9)), "drop malformed - -");
    // The memory is still there for a good later fragment.
    assert_eq!(h.inb(&sctp(&[], 5, true, 50, 16)), "accept open_port - -");
}

#[test]
fn the_length_runs_to_the_declared_end_in_a_snap_cut_frame() {
    let mut h = h();
    let cut = |p: &[u8], n: usize| p[..p.len() - n].to_vec();
    let meta = PacketMeta {
        truncated: true,
        ..PacketMeta::inbound(ETH0, 0)
    };
    // Declared 24 bytes (a multiple of 8), 10 captured: the TCP header is cut.
    let first = Chain::new(&[Ext::first(60)], tcp_to(22)).build();
    assert_eq!(h.line(&cut(&first, 14), meta), "drop incomplete_chain 6 -");
    // Declared 20 bytes: the rule, whatever was captured.
    let odd = Chain::new(&[Ext::first(61)], tcp_to(22)).build_unpadded();
    assert_eq!(h.line(&cut(&odd, 10), meta), "drop malformed - -");
}

#[test]
fn outbound_fragments_are_accepted_whatever_their_length() {
    let mut h = h();
    let odd = Chain::new(&[Ext::first(70)], tcp_to(22)).outbound();
    assert_eq!(h.out_at(&odd.build_unpadded(), 0), "accept outbound - -");
    assert_eq!(h.out_at(&odd.build(), 0), "accept outbound 6 22");
}

#[test]
fn violations_before_the_fragment_header_come_first() {
    let mut h = h();
    assert_eq!(
        h.inb(&sctp(&[Ext::Routing(0)], 0, true, 80, 9)),
        "drop routing_header_0 - -"
    );
    assert_eq!(
        h.inb(&sctp(&[Ext::Dst, Ext::Hbh], 0, true, 81, 9)),
        "drop bad_extension_order - -"
    );
    // A second fragment header: the first one's rule is met first.
    let two = Chain::new(
        &[frag(0, true, 82), frag(0, true, 82)],
        L4::Raw(132, vec![0; 9]),
    );
    assert_eq!(h.inb(&two.build_unpadded()), "drop malformed - -");
    assert_eq!(h.inb(&two.build()), "drop bad_extension_order - -");
}
