//! The snapshot's index by interface and its shared port sets: a thousand
//! connections found by index, equal sets shared, unknown interfaces on the
//! global pairs only, and a publish that rebuilds only what changed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use v6fw_engine::{Connection, Policy, PortPair, PortTable, Protocol, Scope, Snapshot};

const N: u32 = if cfg!(miri) { 20 } else { 1000 };

fn pair(port: u16, proto: Protocol) -> PortPair {
    PortPair::new(port, proto).unwrap()
}

/// Connections `veth{i}` on interface `10 + 3 * i` (sparse, as after churn);
/// every tenth has its own pair `1000 + i`/tcp, every seventh ignores 443/tcp.
fn host() -> Policy {
    let mut p = Policy::default();
    p.open_global(pair(80, Protocol::Tcp), "http");
    p.open_global(pair(443, Protocol::Tcp), "https");
    for i in 0..N {
        let mut c = Connection::new(format!("veth{i:04}"), "veth", 10 + 3 * i);
        if i % 10 == 0 {
            c.open_port(pair(1000 + u16::try_from(i).unwrap(), Protocol::Tcp), "own");
        }
        if i % 7 == 0 {
            c.ignore_global(pair(443, Protocol::Tcp));
        }
        p.add_connection(c).unwrap();
    }
    p
}

fn check_all(snap: &Snapshot) {
    for i in 0..N {
        let c = snap.connection(10 + 3 * i);
        assert_eq!(c.if_index, 10 + 3 * i);
        let own = 1000 + u16::try_from(i).unwrap();
        assert_eq!(c.own.contains(6, own), i % 10 == 0, "veth{i} own");
        assert!(c.global.contains(6, 80));
        assert_eq!(c.global.contains(6, 443), i % 7 != 0, "veth{i} ignored");
    }
    for unknown in [0, 11, 12, 10 + 3 * N, u32::MAX] {
        let f = snap.connection(unknown);
        assert!(f.enabled && f.global.contains(6, 80) && f.global.contains(6, 443));
        assert!(!f.own.contains(6, 1000));
    }
}

#[test]
fn a_thousand_connections_by_index_share_their_sets() {
    let table = PortTable::new(host());
    let snap = table.pin();
    check_all(&snap);
    // The empty own set, all globals, globals − 443, and one own set per
    // tenth connection.
    let own = usize::try_from(N.div_ceil(10)).unwrap();
    assert_eq!(snap.distinct_sets(), 3 + own);
}

#[test]
fn a_publish_rebuilds_only_what_changed() {
    let table = PortTable::new(host());
    let publisher = table.take_publisher().unwrap();
    let before = table.pin();
    publisher
        .update(|p| {
            p.connection_mut("veth0010")
                .map(|c| c.open_port(pair(9, Protocol::Udp), "new"))
        })
        .unwrap();
    let after = table.pin();
    assert_eq!(after.generation(), 1);
    assert!(after.connection(40).own.contains(17, 9));
    assert!(!before.connection(40).own.contains(17, 9));
    for i in (0..N).filter(|&i| i != 10) {
        let (a, b) = (before.connection(10 + 3 * i), after.connection(10 + 3 * i));
        assert!(std::ptr::eq(a.own, b.own), "veth{i} own rebuilt");
        assert!(std::ptr::eq(a.global, b.global), "veth{i} global rebuilt");
    }
    // A global change: one new all-globals set, one new ignoring set, own
    // sets untouched.
    publisher
        .update(|p| {
            p.open_global_from(pair(53, Protocol::Udp), "dns", Scope::ANY);
            Ok::<_, v6fw_engine::PolicyError>(())
        })
        .unwrap();
    let last = table.pin();
    check_all(&last);
    assert!(last.connection(13).global.contains(17, 53));
    assert!(
        last.connection(10).global.contains(17, 53),
        "ignoring set rebuilt"
    );
    assert!(std::ptr::eq(
        after.connection(10).own,
        last.connection(10).own
    ));
    assert_eq!(last.distinct_sets(), after.distinct_sets());
}

#[test]
fn a_shared_interface_index_goes_to_the_first_connection() {
    let mut p = Policy::default();
    let mut a = Connection::new("a", "first", 5);
    a.open_port(pair(22, Protocol::Tcp), "ssh");
    p.add_connection(a).unwrap();
    let mut b = Connection::new("b", "second", 5);
    b.enabled = false;
    p.add_connection(b).unwrap();
    let mut far = Connection::new("c", "far", 4_000_000_000);
    far.enabled = false;
    p.add_connection(far).unwrap();
    let table = PortTable::new(p);
    let snap = table.pin();
    assert!(snap.connection(5).enabled && snap.connection(5).own.contains(6, 22));
    assert!(
        !snap.connection(4_000_000_000).enabled,
        "indices past the table"
    );
    assert!(
        snap.connection(4_000_000_001).enabled,
        "unknown: firewall on"
    );
}
