//! SPEC.md step 6 (upper layer: ICMPv6 policy, own and global ports, other
//! protocols), outbound packets and connection state, and every reason with
//! its counter.
//!
//! Packets are built with etherparse (raw bytes for the malformed ones). Each
//! expectation is SPEC.md's per-packet line without the frame number:
//! `verdict reason proto dport`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeSet;

use common::*;
use etherparse::PacketBuilder;
use v6fw_engine::flows::FlowTimeouts;
use v6fw_engine::{IcmpErrors, IcmpRule, PacketMeta, Policy, Protocol, Reason, StateConfig};

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
    let allowed: BTreeSet<u8> = [1, 2, 3, 4, 128, 129, 141, 142, 148, 149, 151, 152, 153]
        .into_iter()
        .collect();
    let mld = [130, 131, 132, 143];
    for ty in 0..=255u8 {
        for hop in [255, 254, 64, 2, 1] {
            let got = h.inb(&icmp_pkt(ty, 0, hop));
            let ok = allowed.contains(&ty)
                || ((133..=136).contains(&ty) && hop == 255)
                || (mld.contains(&ty) && hop == 1);
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
    h.publisher
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
    h.publisher
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
        .build_cut(4);
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
    p.state.enabled = false;
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
    h.publisher
        .update(|p| {
            p.state.enabled = true;
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
    h.publisher
        .update(|p| {
            p.state.enabled = false;
            Ok::<_, ()>(())
        })
        .unwrap();
    assert_eq!(h.inb(&reply), "drop port_closed 6 50000");
}

#[test]
fn flow_idle_timeout() {
    let cfg = StateConfig {
        timeouts: FlowTimeouts {
            tcp_unconfirmed_ns: 10 * SECOND,
            tcp_confirmed_ns: 10 * SECOND,
            udp_unconfirmed_ns: 3 * SECOND,
            udp_confirmed_ns: 3 * SECOND,
            ..FlowTimeouts::default()
        },
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
        (Chain::new(&[Ext::first(1)], tcp_to(22)).build_cut(4), ETH0),
        (tcp_pkt(MULTICAST_SRC, LOCAL, 1000, 22), ETH0),
        (c(&[Ext::later(2)], tcp_to(22)), ETH0),
        (c(&[Ext::first(5)], tcp_to(22)), ETH0),
        (
            c(
                &[Ext::Frag {
                    offset: 1,
                    more: false,
                    id: 5,
                }],
                tcp_to(22),
            ),
            ETH0,
        ),
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
    // An error quoting nothing the host sent, once errors must be related.
    h.publisher
        .update(|p| {
            p.icmp_errors = IcmpErrors::Related;
            Ok::<_, ()>(())
        })
        .unwrap();
    seen.insert(
        h.decide(&icmp_pkt(1, 0, 64), PacketMeta::inbound(ETH0, 0))
            .reason,
    );
    // A pair open only for other sources.
    h.publisher
        .update(|p| {
            let lan = v6fw_engine::Scope::parse(&["fd00::/8"]).unwrap();
            Ok::<_, ()>(p.open_global_from(pair(9, Protocol::Tcp), "lan", lan))
        })
        .unwrap();
    seen.insert(h.decide(&tcp_in(9), PacketMeta::inbound(ETH0, 0)).reason);
    let all: BTreeSet<Reason> = Reason::ALL.into_iter().collect();
    assert_eq!(seen, all);
    let totals = h.engine.counters().totals();
    let sum: u64 = Reason::ALL.iter().map(|r| totals.get(*r)).sum();
    assert_eq!(sum, packets.len() as u64 + 3);
    for r in Reason::ALL {
        assert!(totals.get(r) >= 1, "{r} counted");
    }
}
