//! SPEC.md, "Scopes" and step 6: a scoped pair lets in only sources inside
//! its prefixes; a packet to a pair open (own or global) only for other
//! sources is `drop out_of_scope`, unless `established` lets it in. Every
//! case goes down both decision paths (the plain fast path, and the full
//! walk through a destination-options header).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::*;
use v6fw_engine::{Connection, Policy, Protocol, Scope};

/// In fd00::/8.
const LAN: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
/// In 2001:db8::/32 (REMOTE is 2001:db8::2).
const DOC: [u8; 16] = REMOTE;
/// In neither.
const FAR: [u8; 16] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

fn scope(texts: &[&str]) -> Scope {
    Scope::parse(texts).unwrap()
}

/// eth0 (index 2) with `own` open on its own pairs and `global` as globals.
fn policy(own: &[(u16, &[&str])], global: &[(u16, &[&str])]) -> Policy {
    let mut p = Policy::default();
    for (port, from) in global {
        p.open_global_from(pair(*port, Protocol::Tcp), "g", scope(from));
    }
    let mut c = Connection::new("eth0", "Ethernet", ETH0);
    for (port, from) in own {
        c.open_port_from(pair(*port, Protocol::Tcp), "o", scope(from));
    }
    p.add_connection(c).unwrap();
    p
}

/// The line for TCP (ACK) from `src`:40000 to LOCAL:`dport` on eth0, on both
/// paths; they must agree.
fn both(h: &mut Harness, src: [u8; 16], dport: u16) -> String {
    let plain = h.inb(&tcp_pkt(src, LOCAL, 40_000, dport));
    let mut walked = Chain::new(&[Ext::Dst], tcp_to(dport)).from(src).build();
    // The chain's TCP header (after 40 + 8 bytes) is a SYN: make it an ACK.
    walked[40 + 8 + 13] = TCP_ACK;
    let walked = h.inb(&walked);
    assert_eq!(plain, walked, "the two paths disagree from {src:?}");
    plain
}

#[test]
fn in_scope_is_open_out_of_scope_is_out_of_scope() {
    let mut h = Harness::new(policy(&[(22, &["fd00::/8", "2001:db8::/32"])], &[]));
    assert_eq!(both(&mut h, LAN, 22), "accept open_port 6 22");
    assert_eq!(both(&mut h, DOC, 22), "accept open_port 6 22");
    assert_eq!(both(&mut h, FAR, 22), "drop out_of_scope 6 22");
    assert_eq!(
        both(&mut h, FAR, 23),
        "drop port_closed 6 23",
        "closed stays closed"
    );
    // UDP to the same port number is another pair: closed.
    let udp = udp_pkt(FAR, LOCAL, 40_000, 22);
    assert_eq!(h.inb(&udp), "drop port_closed 17 22");
}

#[test]
fn scoped_own_with_unscoped_global_lets_everyone_in_as_global() {
    let mut h = Harness::new(policy(&[(22, &["fd00::/8"])], &[(22, &[])]));
    assert_eq!(both(&mut h, LAN, 22), "accept open_port 6 22");
    assert_eq!(both(&mut h, FAR, 22), "accept global_port 6 22");
}

#[test]
fn scoped_global_is_out_of_scope_for_others() {
    let mut h = Harness::new(policy(&[], &[(443, &["2001:db8::/32"])]));
    assert_eq!(both(&mut h, DOC, 443), "accept global_port 6 443");
    assert_eq!(both(&mut h, LAN, 443), "drop out_of_scope 6 443");
    // On an interface no connection names: the globals alone, scoped alike.
    let far = tcp_pkt(FAR, LOCAL, 40_000, 443);
    assert_eq!(h.inb_at(&far, UNKNOWN_IF, 0), "drop out_of_scope 6 443");
    let doc = tcp_pkt(DOC, LOCAL, 40_000, 443);
    assert_eq!(h.inb_at(&doc, UNKNOWN_IF, 0), "accept global_port 6 443");
}

#[test]
fn ignored_scoped_global_is_closed_not_out_of_scope() {
    let mut p = policy(&[], &[(443, &["2001:db8::/32"])]);
    p.connection_mut("eth0")
        .unwrap()
        .ignore_global(pair(443, Protocol::Tcp));
    let mut h = Harness::new(p);
    assert_eq!(both(&mut h, LAN, 443), "drop port_closed 6 443");
    assert_eq!(both(&mut h, DOC, 443), "drop port_closed 6 443");
}

#[test]
fn established_beats_out_of_scope() {
    let mut h = Harness::new(policy(&[(22, &["fd00::/8"])], &[]));
    // The host talks from its port 22 to FAR:40000; the reply is let in.
    let out = tcp_flags_pkt(LOCAL, FAR, 22, 40_000, TCP_ACK);
    assert_eq!(h.out_at(&out, 0), "accept outbound 6 40000");
    assert_eq!(both(&mut h, FAR, 22), "accept established 6 22");
    // A SYN from FAR never matches the flow: the scope decides it.
    let syn = tcp_flags_pkt(FAR, LOCAL, 40_000, 22, TCP_SYN);
    assert_eq!(h.inb(&syn), "drop out_of_scope 6 22");
    // Another FAR port has no flow.
    let other = tcp_pkt(FAR, LOCAL, 40_001, 22);
    assert_eq!(h.inb(&other), "drop out_of_scope 6 22");
}

#[test]
fn reopening_with_another_scope_replaces_it() {
    let mut h = Harness::new(policy(&[(22, &["fd00::/8"])], &[]));
    assert_eq!(both(&mut h, DOC, 22), "drop out_of_scope 6 22");
    let changed = h
        .publisher
        .update(|p| {
            p.connection_mut("eth0")
                .map(|c| c.open_port_from(pair(22, Protocol::Tcp), "x", scope(&["2001:db8::/32"])))
        })
        .unwrap();
    assert!(changed);
    assert_eq!(both(&mut h, DOC, 22), "accept open_port 6 22");
    assert_eq!(both(&mut h, LAN, 22), "drop out_of_scope 6 22");
    let pol = h.engine.table().policy();
    let conn = pol.connection("eth0").unwrap();
    assert!(
        conn.is_port_open(pair(22, Protocol::Tcp)),
        "whatever its scope"
    );
    assert_eq!(
        conn.open[&pair(22, Protocol::Tcp)].name,
        "o",
        "the first name stays"
    );
}
