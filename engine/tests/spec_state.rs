//! SPEC.md, "Outbound packets and state", and the rules of step 5 and 6 that
//! the state and the ICMPv6 changes brought: confirmed flows and eviction,
//! SYN without ACK, every idle timeout at T - 1 s and T + 1 s, NDP and MLD
//! conditions, `icmp_errors = "related"`, fragment overlap (RFC 5722).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::*;
use etherparse::PacketBuilder;
use v6fw_engine::flows::FlowTimeouts;
use v6fw_engine::{HashKey, IcmpErrors, IcmpRule, PacketMeta, Reason, StateConfig};

/// Outbound LOCAL:sport -> REMOTE:dport with these TCP flags.
fn out_tcp(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    tcp_flags_pkt(LOCAL, REMOTE, sport, dport, flags)
}

/// The inbound reply REMOTE:sport -> LOCAL:dport with these TCP flags.
fn in_tcp(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    tcp_flags_pkt(REMOTE, LOCAL, sport, dport, flags)
}

fn at(s: u64) -> u64 {
    s * SECOND
}

// ---------------------------------------------------------------------------
// SYN without ACK.

#[test]
fn syn_without_ack_never_matches_a_flow() {
    let mut h = h();
    assert_eq!(
        h.out_at(&out_tcp(50_000, 443, TCP_SYN), 0),
        "accept outbound 6 443"
    );
    assert_eq!(
        h.inb(&in_tcp(443, 50_000, TCP_SYN)),
        "drop port_closed 6 50000",
        "a SYN on a tracked tuple is a new attempt"
    );
    assert_eq!(
        h.inb(&in_tcp(443, 50_000, TCP_SYN | TCP_ACK)),
        "accept established 6 50000"
    );
    // Also on a confirmed flow, and through the full walk (a destination
    // options header keeps the packet off the fast path).
    h.out_at(&out_tcp(50_000, 443, TCP_ACK), 0);
    assert_eq!(
        h.inb(&in_tcp(443, 50_000, TCP_SYN)),
        "drop port_closed 6 50000"
    );
    let walked = |flags| {
        let mut p = Chain::new(
            &[Ext::Dst],
            L4::Tcp {
                sport: 443,
                dport: 50_000,
            },
        )
        .build();
        let at = p.len() - 20 + 13;
        p[at] = flags;
        p
    };
    assert_eq!(h.inb(&walked(TCP_SYN)), "drop port_closed 6 50000");
    assert_eq!(h.inb(&walked(TCP_ACK)), "accept established 6 50000");
    // Open ports do not care.
    assert_eq!(h.inb(&in_tcp(40_000, 22, TCP_SYN)), "accept open_port 6 22");
}

// ---------------------------------------------------------------------------
// Timeouts, after conntrack: each at T - 1 s (still there) and T + 1 s (gone).

/// Sets up a flow on local port `port` with `setup` (which returns the time
/// its timeout runs from), then sends one ACK reply `offset` after that time.
fn reply_after(setup: impl Fn(&mut Harness, u16) -> u64, offset: u64, udp: bool) -> String {
    let mut h = h();
    let port = 50_000;
    let from = setup(&mut h, port);
    let reply = if udp {
        udp_pkt(REMOTE, LOCAL, 443, port)
    } else {
        in_tcp(443, port, TCP_ACK)
    };
    h.inb_at(&reply, ETH0, from + offset)
}

fn check_timeout(name: &str, t: u64, udp: bool, setup: impl Fn(&mut Harness, u16) -> u64) {
    let proto = if udp { 17 } else { 6 };
    assert_eq!(
        reply_after(&setup, at(t - 1), udp),
        format!("accept established {proto} 50000"),
        "{name} at T - 1 s"
    );
    assert_eq!(
        reply_after(&setup, at(t + 1), udp),
        format!("drop port_closed {proto} 50000"),
        "{name} at T + 1 s"
    );
}

#[test]
fn tcp_timeouts() {
    check_timeout("TCP unconfirmed (SYN sent)", 120, false, |h, p| {
        h.out_at(&out_tcp(p, 443, TCP_SYN), 0);
        0
    });
    check_timeout("TCP unconfirmed (SYN-ACK sent)", 120, false, |h, p| {
        h.out_at(&out_tcp(p, 443, TCP_SYN | TCP_ACK), 0);
        0
    });
    check_timeout("TCP confirmed", 432_000, false, |h, p| {
        h.out_at(&out_tcp(p, 443, TCP_ACK), 0);
        0
    });
    check_timeout("TCP confirmed by a reply", 432_000, false, |h, p| {
        h.out_at(&out_tcp(p, 443, TCP_SYN), 0);
        h.inb_at(&in_tcp(443, p, TCP_SYN | TCP_ACK), ETH0, at(1));
        at(1)
    });
    check_timeout("TCP after FIN both ways", 120, false, |h, p| {
        h.out_at(&out_tcp(p, 443, TCP_ACK | TCP_FIN), 0);
        h.inb_at(&in_tcp(443, p, TCP_ACK | TCP_FIN), ETH0, at(2));
        at(2)
    });
    check_timeout("TCP after an inbound RST", 10, false, |h, p| {
        h.out_at(&out_tcp(p, 443, TCP_ACK), 0);
        h.inb_at(&in_tcp(443, p, TCP_RST), ETH0, at(3));
        at(3)
    });
    check_timeout("TCP after an outbound RST", 10, false, |h, p| {
        h.out_at(&out_tcp(p, 443, TCP_ACK), 0);
        h.out_at(&out_tcp(p, 443, TCP_RST | TCP_ACK), at(4));
        at(4)
    });
    // A FIN one way only keeps the confirmed timeout.
    check_timeout("TCP after FIN one way", 432_000, false, |h, p| {
        h.out_at(&out_tcp(p, 443, TCP_ACK | TCP_FIN), 0);
        0
    });
}

#[test]
fn udp_timeouts() {
    check_timeout("UDP unconfirmed", 30, true, |h, p| {
        h.out_at(&udp_pkt(LOCAL, REMOTE, p, 443), 0);
        0
    });
    check_timeout("UDP confirmed", 120, true, |h, p| {
        h.out_at(&udp_pkt(LOCAL, REMOTE, p, 443), 0);
        h.inb_at(&udp_pkt(REMOTE, LOCAL, 443, p), ETH0, at(5));
        at(5)
    });
}

#[test]
fn timeouts_are_configurable() {
    let cfg = StateConfig {
        timeouts: FlowTimeouts {
            tcp_confirmed_ns: at(60),
            ..FlowTimeouts::default()
        },
        ..StateConfig::default()
    };
    let mut h = Harness::with_state(test_policy(), cfg);
    h.out_at(&out_tcp(50_000, 443, TCP_ACK), 0);
    h.out_at(&out_tcp(50_001, 443, TCP_ACK), 0);
    assert_eq!(
        h.inb_at(&in_tcp(443, 50_000, TCP_ACK), ETH0, at(59)),
        "accept established 6 50000"
    );
    assert_eq!(
        h.inb_at(&in_tcp(443, 50_001, TCP_ACK), ETH0, at(61)),
        "drop port_closed 6 50001"
    );
}

// ---------------------------------------------------------------------------
// Confirmed flows are never evicted for new ones.

/// A harness whose flow table is one probe window (8 slots).
fn tiny() -> Harness {
    let cfg = StateConfig {
        flow_capacity: 8,
        hash_key: HashKey::Fixed(1),
        ..StateConfig::default()
    };
    Harness::with_state(test_policy(), cfg)
}

/// The host's SYN-ACK from LOCAL:22 to a spoofed 2001:db8::n:sport.
fn syn_ack_to_spoofed(n: u16) -> Vec<u8> {
    let mut spoofed = REMOTE;
    spoofed[12..14].copy_from_slice(&n.to_be_bytes());
    tcp_flags_pkt(LOCAL, spoofed, 22, 1024 + n, TCP_SYN | TCP_ACK)
}

#[test]
fn a_flood_of_unconfirmed_flows_never_evicts_a_confirmed_one() {
    let mut h = tiny();
    for p in 0..8 {
        h.out_at(&out_tcp(50_000 + p, 443, TCP_ACK), 0);
    }
    for n in 0..1_000 {
        assert_eq!(
            h.out_at(&syn_ack_to_spoofed(n), at(1)),
            format!("accept outbound 6 {}", 1024 + n),
            "still accepted"
        );
    }
    let t = h.worker.totals();
    assert_eq!(t.flows_not_recorded(), 1_000);
    assert_eq!(h.engine.counters().totals().flows_not_recorded(), 1_000);
    for p in 0..8 {
        assert_eq!(
            h.inb_at(&in_tcp(443, 50_000 + p, TCP_ACK), ETH0, at(2)),
            format!("accept established 6 {}", 50_000 + p)
        );
    }
}

#[test]
fn unconfirmed_flows_replace_each_other_closest_to_expiry_first() {
    let mut h = tiny();
    for p in 0..4 {
        h.out_at(&out_tcp(50_000 + p, 443, TCP_ACK), 0);
    }
    for n in 0..100 {
        h.out_at(&syn_ack_to_spoofed(n), at(1) + u64::from(n));
    }
    assert_eq!(h.worker.totals().flows_not_recorded(), 0);
    assert_eq!(h.worker.flow_count(at(1) + 100), 8);
    // The newest four SYN-ACK flows hold the four free slots.
    let now = at(1) + 100;
    let mut syn_acks: Vec<u16> = h
        .worker
        .flows()
        .live(now)
        .filter(|(_, s, _)| !s.confirmed)
        .map(|(k, _, _)| k.remote_port - 1024)
        .collect();
    syn_acks.sort_unstable();
    assert_eq!(syn_acks, [96, 97, 98, 99]);
    for p in 0..4 {
        assert_eq!(
            h.inb_at(&in_tcp(443, 50_000 + p, TCP_ACK), ETH0, now),
            format!("accept established 6 {}", 50_000 + p)
        );
    }
}

#[test]
fn an_accepted_reply_confirms_a_flow() {
    let mut h = tiny();
    for p in 0..8 {
        h.out_at(&out_tcp(50_000 + p, 443, TCP_SYN), 0);
    }
    // Seven replies confirm seven flows; the eighth stays unconfirmed and is
    // the only one a new flow may take.
    for p in 0..7 {
        h.inb_at(&in_tcp(443, 50_000 + p, TCP_SYN | TCP_ACK), ETH0, at(1));
    }
    h.out_at(&syn_ack_to_spoofed(1), at(2));
    h.out_at(&syn_ack_to_spoofed(2), at(2));
    assert_eq!(h.worker.totals().flows_not_recorded(), 0);
    assert_eq!(
        h.inb_at(&in_tcp(443, 50_007, TCP_ACK), ETH0, at(3)),
        "drop port_closed 6 50007",
        "replaced"
    );
    for p in 0..7 {
        assert_eq!(
            h.inb_at(&in_tcp(443, 50_000 + p, TCP_ACK), ETH0, at(3)),
            format!("accept established 6 {}", 50_000 + p)
        );
    }
}

#[test]
fn adopted_flows_are_confirmed() {
    let mut h = tiny();
    for p in 0..8 {
        assert!(h
            .worker
            .adopt_flow(6, (LOCAL, 50_000 + p), (REMOTE, 443), 0));
    }
    assert!(
        !h.worker.adopt_flow(6, (LOCAL, 60_000), (REMOTE, 443), 0),
        "the table is full of confirmed flows"
    );
    assert!(
        h.worker.adopt_flow(6, (LOCAL, 50_000), (REMOTE, 443), 1),
        "adopting a recorded flow again"
    );
    assert!(
        !h.worker.adopt_flow(58, (LOCAL, 1), (REMOTE, 1), 0),
        "TCP/UDP only"
    );
    h.out_at(&syn_ack_to_spoofed(1), at(1));
    assert_eq!(h.worker.totals().flows_not_recorded(), 1);
    assert_eq!(
        h.inb_at(&in_tcp(443, 50_003, TCP_ACK), ETH0, at(431_999)),
        "accept established 6 50003",
        "the confirmed timeout"
    );
    let mut h2 = common::h();
    assert!(h2.worker.adopt_flow(17, (LOCAL, 5_000), (REMOTE, 53), 0));
    assert_eq!(
        h2.inb_at(&udp_pkt(REMOTE, LOCAL, 53, 5_000), ETH0, at(119)),
        "accept established 17 5000"
    );
}

// ---------------------------------------------------------------------------
// ICMPv6: NDP (RFC 4861, RFC 6980) and MLD (RFC 2710, RFC 3810).

fn icmp_chain(exts: &[Ext], ty: u8, hop_limit: u8) -> Vec<u8> {
    let mut c = Chain::new(exts, L4::Icmp { ty });
    c.hop_limit = hop_limit;
    c.build()
}

#[test]
fn ndp_with_any_fragment_header_is_icmp_policy() {
    let mut h = h();
    for ty in 133..=136u8 {
        assert_eq!(
            h.inb(&icmp_chain(&[], ty, 255)),
            format!("accept icmp_allowed 58 {ty}")
        );
        assert_eq!(
            h.inb(&icmp_chain(&[Ext::atomic(1)], ty, 255)),
            format!("drop icmp_policy 58 {ty}"),
            "atomic fragment"
        );
        assert_eq!(
            h.inb(&icmp_chain(&[Ext::first(2)], ty, 255)),
            format!("drop icmp_policy 58 {ty}"),
            "first fragment"
        );
        assert_eq!(
            h.inb(&icmp_chain(&[Ext::Dst], ty, 255)),
            format!("accept icmp_allowed 58 {ty}"),
            "another extension header is not a fragment header"
        );
    }
    // Whatever the type's rule.
    let mut p = test_policy();
    p.icmp.set(135, IcmpRule::Allow);
    let mut h = Harness::new(p);
    assert_eq!(
        h.inb(&icmp_chain(&[Ext::atomic(3)], 135, 255)),
        "drop icmp_policy 58 135"
    );
    assert_eq!(h.inb(&icmp_chain(&[], 135, 64)), "drop icmp_policy 58 135");
}

#[test]
fn mld_only_at_hop_limit_1() {
    let mut p = test_policy();
    p.icmp.set(143, IcmpRule::Allow);
    p.icmp.set(131, IcmpRule::Deny);
    let mut h = Harness::new(p);
    for ty in [130u8, 132, 143] {
        assert_eq!(
            h.inb(&icmp_pkt(ty, 0, 1)),
            format!("accept icmp_allowed 58 {ty}")
        );
        assert_eq!(
            h.inb(&icmp_pkt(ty, 0, 2)),
            format!("drop icmp_policy 58 {ty}")
        );
        // The full walk agrees (a destination options header first).
        assert_eq!(
            h.inb(&icmp_chain(&[Ext::Dst], ty, 1)),
            format!("accept icmp_allowed 58 {ty}")
        );
        assert_eq!(
            h.inb(&icmp_chain(&[Ext::Dst], ty, 2)),
            format!("drop icmp_policy 58 {ty}")
        );
    }
    assert_eq!(
        h.inb(&icmp_pkt(131, 0, 1)),
        "drop icmp_policy 58 131",
        "denied"
    );
}

// ---------------------------------------------------------------------------
// icmp_errors = "related".

/// An ICMPv6 error of type `ty` from REMOTE to LOCAL quoting `quote`.
fn icmp_error(ty: u8, quote: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv6(REMOTE, LOCAL, 64).icmpv6_raw(ty, 0, [0; 4]);
    let mut v = Vec::with_capacity(b.size(quote.len()));
    b.write(&mut v, quote).unwrap();
    v
}

fn related() -> Harness {
    let mut p = test_policy();
    p.icmp_errors = IcmpErrors::Related;
    Harness::new(p)
}

#[test]
fn related_errors_must_quote_what_the_host_sent() {
    let mut h = related();
    let sent = out_tcp(50_000, 443, TCP_SYN);
    let sent_udp = udp_pkt(LOCAL, REMOTE, 50_001, 53);
    // Untracked yet.
    assert_eq!(h.inb(&icmp_error(1, &sent)), "drop icmp_unrelated 58 1");
    h.out_at(&sent, 0);
    h.out_at(&sent_udp, 0);
    for ty in 1..=4u8 {
        assert_eq!(
            h.inb(&icmp_error(ty, &sent)),
            format!("accept icmp_allowed 58 {ty}"),
            "a tracked TCP flow"
        );
        assert_eq!(
            h.inb(&icmp_error(ty, &sent_udp)),
            format!("accept icmp_allowed 58 {ty}"),
            "a tracked UDP flow"
        );
    }
    // Another port, or a quote that is not from this host.
    let other = out_tcp(50_002, 443, TCP_SYN);
    assert_eq!(h.inb(&icmp_error(2, &other)), "drop icmp_unrelated 58 2");
    let spoofed = tcp_flags_pkt(OTHER, REMOTE, 50_000, 443, TCP_SYN);
    assert_eq!(h.inb(&icmp_error(3, &spoofed)), "drop icmp_unrelated 58 3");
    // Any other packet: its source must be the error's destination.
    let echo = {
        let b = PacketBuilder::ipv6(LOCAL, REMOTE, 64).icmpv6_echo_request(1, 1);
        let mut v = Vec::new();
        b.write(&mut v, &[0; 8]).unwrap();
        v
    };
    assert_eq!(h.inb(&icmp_error(1, &echo)), "accept icmp_allowed 58 1");
    let mut echo_from_other = echo.clone();
    v6fw_engine::wire::Ipv6Packet::new_checked(&mut echo_from_other[..])
        .unwrap()
        .set_src_addr(OTHER);
    assert_eq!(
        h.inb(&icmp_error(1, &echo_from_other)),
        "drop icmp_unrelated 58 1"
    );
    // Cut short: under an IPv6 header, or without both ports.
    assert_eq!(
        h.inb(&icmp_error(1, &sent[..39])),
        "drop icmp_unrelated 58 1"
    );
    assert_eq!(
        h.inb(&icmp_error(1, &sent[..43])),
        "drop icmp_unrelated 58 1"
    );
    assert_eq!(
        h.inb(&icmp_error(1, &sent[..44])),
        "accept icmp_allowed 58 1"
    );
    assert_eq!(
        h.inb(&icmp_error(1, &echo[..39])),
        "drop icmp_unrelated 58 1"
    );
    assert_eq!(
        h.inb(&icmp_error(1, &echo[..40])),
        "accept icmp_allowed 58 1"
    );
    // Not errors: judged by type alone.
    assert_eq!(h.inb(&icmp_pkt(128, 0, 64)), "accept icmp_allowed 58 128");
    // State off: no flow is tracked.
    h.publisher
        .update(|p| {
            p.state.enabled = false;
            Ok::<_, ()>(())
        })
        .unwrap();
    assert_eq!(h.inb(&icmp_error(1, &sent)), "drop icmp_unrelated 58 1");
}

#[test]
fn errors_are_judged_by_type_by_default() {
    let mut h = h();
    let unrelated = tcp_flags_pkt(OTHER, REMOTE, 1, 2, TCP_SYN);
    assert_eq!(
        h.inb(&icmp_error(1, &unrelated)),
        "accept icmp_allowed 58 1"
    );
    assert_eq!(h.inb(&icmp_error(4, &[])), "accept icmp_allowed 58 4");
}

// ---------------------------------------------------------------------------
// Fragment overlap (RFC 5722).

/// A fragment of datagram `id` at `offset` (8-byte units) with `body` after
/// the fragment header (`more`: M flag).
fn fragment(id: u32, offset: u16, more: bool, body: Vec<u8>) -> Vec<u8> {
    Chain::new(&[Ext::Frag { offset, more, id }], L4::Raw(6, body)).build()
}

/// A TCP header to port 22 followed by `n` payload bytes.
fn tcp_body(n: usize) -> Vec<u8> {
    let mut b = L4::Tcp {
        sport: 40_000,
        dport: 22,
    }
    .bytes();
    b.extend(std::iter::repeat_n(0xAA, n));
    b
}

#[test]
fn later_fragment_at_the_first_fragments_end_follows_inside_it_overlaps() {
    let mut h = h();
    // Fragmentable part: 20 + 20 = 40 bytes = offset 5.
    assert_eq!(
        h.inb(&fragment(1, 0, true, tcp_body(20))),
        "accept open_port 6 22"
    );
    assert_eq!(
        h.inb(&fragment(1, 4, true, vec![0; 16])),
        "drop fragment_overlap - -",
        "8 bytes before its end"
    );
    assert_eq!(
        h.inb(&fragment(1, 5, false, vec![0; 16])),
        "accept open_port - -",
        "at its end"
    );
    assert_eq!(
        h.inb(&fragment(1, 1, false, vec![0; 16])),
        "drop fragment_overlap - -",
        "the memory stays"
    );
    // A dropped first fragment: its later fragments are still checked first.
    assert_eq!(
        h.inb(&fragment(2, 0, true, {
            let mut b = tcp_body(20);
            b[2..4].copy_from_slice(&23u16.to_be_bytes());
            b
        })),
        "drop port_closed 6 23"
    );
    assert_eq!(
        h.inb(&fragment(2, 1, false, vec![0; 8])),
        "drop fragment_overlap - -"
    );
    assert_eq!(
        h.inb(&fragment(2, 5, false, vec![0; 8])),
        "drop port_closed - -"
    );
    // Without a first fragment.
    assert_eq!(
        h.inb(&fragment(3, 1, false, vec![0; 8])),
        "drop orphan_fragment - -"
    );
}

#[test]
fn a_snap_cut_first_fragment_counts_its_declared_length() {
    let mut h = h();
    // Fragmentable part by the payload length: 20 + 1,000 = 1,020 bytes.
    let mut first = fragment(4, 0, true, tcp_body(1_000));
    first.truncate(100);
    let cut = PacketMeta {
        truncated: true,
        ..PacketMeta::inbound(ETH0, 0)
    };
    assert_eq!(line(&h.decide(&first, cut)), "accept open_port 6 22");
    // 127 x 8 = 1,016 < 1,020: inside, though far past what was captured.
    assert_eq!(
        h.inb(&fragment(4, 127, false, vec![0; 8])),
        "drop fragment_overlap - -"
    );
    assert_eq!(
        h.inb(&fragment(4, 128, false, vec![0; 8])),
        "accept open_port - -"
    );
}

#[test]
fn new_reasons_are_counted() {
    let mut h = related();
    h.inb(&fragment(5, 0, true, tcp_body(20)));
    h.inb(&fragment(5, 1, false, vec![0; 8]));
    h.inb(&icmp_error(1, &[]));
    let t = h.engine.counters().totals();
    assert_eq!(t.get(Reason::FragmentOverlap), 1);
    assert_eq!(t.get(Reason::IcmpUnrelated), 1);
}
