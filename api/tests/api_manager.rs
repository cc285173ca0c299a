//! The OpenPorts API: every method, idempotence, names, errors, evaluation
//! order through the engine, snapshot semantics, durability across reopen.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use etherparse::PacketBuilder;
use v6fw_api::fw::{FirewallManager, FwError, PortScope, E_ACCESSDENIED, E_FAIL, E_INVALIDARG};
use v6fw_api::interfaces::Interface;
use v6fw_engine::{PacketMeta, Policy, PortPair, Protocol, Reason};
use v6fw_testkit::raw::{RawConnection, RawManager};

mod common;

use common::tcp_syn;

const TCP: Protocol = Protocol::Tcp;
const UDP: Protocol = Protocol::Udp;

fn iface(id: &str, index: u32) -> Interface {
    Interface {
        id: id.into(),
        name: format!("{id} friendly"),
        index,
    }
}

/// A manager in a fresh state directory with two fake interfaces.
fn manager() -> (tempfile::TempDir, Arc<FirewallManager>) {
    let dir = tempfile::tempdir().unwrap();
    let mgr = FirewallManager::open(dir.path()).unwrap();
    mgr.refresh_from(&[iface("test0", 1000), iface("test1", 1001)])
        .unwrap();
    (dir, mgr)
}

fn udp(dport: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv6(
        [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
        64,
    )
    .udp(5000, dport)
    .write(&mut v, &[1, 2, 3])
    .unwrap();
    v
}

/// Decides one inbound packet on the current snapshot.
fn decide(mgr: &FirewallManager, packet: &[u8], if_index: u32) -> Reason {
    let mut w = mgr.engine().worker();
    let snap = mgr.engine().table().pin();
    w.decide(&snap, packet, &PacketMeta::inbound(if_index, 0))
        .reason
}

fn pair(s: &str) -> PortPair {
    s.parse().unwrap()
}

#[test]
fn global_ports_open_close_idempotent_first_name_stays() {
    let (_d, mgr) = manager();
    assert!(!mgr.is_global_port_open(443, TCP).unwrap());
    assert!(mgr.open_global_port(443, TCP, "https").unwrap());
    assert!(
        !mgr.open_global_port(443, TCP, "other").unwrap(),
        "idempotent"
    );
    assert!(mgr.open_global_port_raw(53, 17, "dns").unwrap());
    assert!(mgr.open_global_port(22, TCP, "ssh").unwrap());
    assert!(mgr.is_global_port_open(443, TCP).unwrap());
    assert!(mgr.is_global_port_open_raw(53, 17).unwrap());
    assert!(!mgr.is_global_port_open(443, UDP).unwrap());
    let ports = mgr.global_open_ports();
    assert_eq!(ports.count(), 3);
    let listed: Vec<(u16, Protocol, &str)> = ports
        .iter()
        .map(|p| (p.port(), p.protocol(), p.name()))
        .collect();
    assert_eq!(
        listed,
        [(22, TCP, "ssh"), (443, TCP, "https"), (53, UDP, "dns")],
        "sorted by protocol then port; the first name stays"
    );
    assert!(ports.iter().all(|p| p.scope() == PortScope::Global));
    assert!(mgr.close_global_port(443, TCP).unwrap());
    assert!(!mgr.close_global_port(443, TCP).unwrap(), "idempotent");
    assert!(mgr.close_global_port_raw(53, 17).unwrap());
    assert!(!mgr.is_global_port_open(443, TCP).unwrap());
    assert_eq!(mgr.global_open_ports().count(), 1);
    // Re-opened after a close: the new name is the first name now.
    assert!(mgr.open_global_port(443, TCP, "web").unwrap());
    let names: Vec<String> = mgr
        .global_open_ports()
        .iter()
        .map(|p| p.name().to_string())
        .collect();
    assert_eq!(names, ["ssh", "web"]);
}

#[test]
fn connection_methods() {
    let (_d, mgr) = manager();
    let ids: Vec<String> = mgr
        .connections()
        .iter()
        .map(|c| c.id().to_string())
        .collect();
    assert!(ids.contains(&"test0".to_string()) && ids.contains(&"test1".to_string()));
    let c = mgr.connection("test0").unwrap();
    assert_eq!(c.id(), "test0");
    assert_eq!(c.name().unwrap(), "test0 friendly");
    assert_eq!(c.if_index().unwrap(), 1000);
    assert!(c.is_firewalled().unwrap(), "new connections are firewalled");
    assert!(c.disable().unwrap());
    assert!(!c.disable().unwrap());
    assert!(!c.is_firewalled().unwrap());
    assert!(c.enable().unwrap());
    assert!(!c.enable().unwrap());
    assert!(c.is_firewalled().unwrap());

    assert!(c.open_port(22, TCP, "ssh").unwrap());
    assert!(!c.open_port(22, TCP, "later").unwrap());
    assert!(c.open_port_raw(53, 17, "dns").unwrap());
    assert!(c.is_port_open(22, TCP).unwrap());
    assert!(c.is_port_open_raw(53, 17).unwrap());
    assert!(!c.is_port_open(22, UDP).unwrap());

    mgr.open_global_port(443, TCP, "https").unwrap();
    mgr.open_global_port(22, TCP, "global ssh").unwrap();
    mgr.open_global_port(8080, TCP, "alt").unwrap();
    assert!(!c.is_port_open(443, TCP).unwrap(), "own pairs only");

    assert!(c.ignore_global(8080, TCP).unwrap());
    assert!(!c.ignore_global(8080, TCP).unwrap());
    assert!(
        c.ignore_global_raw(9999, 6).unwrap(),
        "need not be open yet"
    );
    assert!(c.is_ignored(8080, TCP).unwrap());
    assert_eq!(
        c.ignored_ports().unwrap(),
        [pair("8080/tcp"), pair("9999/tcp")]
    );
    assert!(c.observe_global_raw(9999, 6).unwrap());
    assert!(!c.observe_global(9999, TCP).unwrap());

    let open = c.open_ports().unwrap();
    let got: Vec<(String, &str, PortScope)> = open
        .iter()
        .map(|p| (p.pair().to_string(), p.name(), p.scope()))
        .collect();
    assert_eq!(
        got,
        [
            ("22/tcp".to_string(), "ssh", PortScope::Own),
            ("443/tcp".to_string(), "https", PortScope::Global),
            ("53/udp".to_string(), "dns", PortScope::Own),
        ],
        "effective set: own ∪ (global − ignored), own wins"
    );
    assert_eq!(open.count(), 3);
    let enumerated: Vec<PortPair> = c
        .enumerate_open_ports()
        .unwrap()
        .map(|p| p.pair())
        .collect();
    assert_eq!(
        enumerated,
        [pair("22/tcp"), pair("443/tcp"), pair("53/udp")]
    );
    assert_eq!(c.own_ports().unwrap().count(), 2);

    let info = c.info().unwrap();
    assert_eq!(info.open, ["22/tcp", "53/udp"]);
    assert_eq!(info.ignored, ["8080/tcp"]);

    // The other connection sees only the globals.
    let c1 = mgr.connection("test1").unwrap();
    assert_eq!(c1.open_ports().unwrap().count(), 3);
    assert!(c.close_port(22, TCP).unwrap());
    assert!(!c.close_port(22, TCP).unwrap());
    assert!(c.close_port_raw(53, 17).unwrap());
    assert!(!c.is_port_open(22, TCP).unwrap());
    // Closing an own pair leaves the global one in effect.
    assert!(c.open_ports().unwrap().contains(pair("22/tcp")));
}

#[test]
fn errors_carry_hresults() {
    let (_d, mgr) = manager();
    let c = mgr.connection("test0").unwrap();
    let bad: Vec<FwError> = vec![
        mgr.open_global_port(0, TCP, "x").unwrap_err(),
        mgr.open_global_port_raw(65536, 6, "x").unwrap_err(),
        mgr.open_global_port_raw(-1, 6, "x").unwrap_err(),
        mgr.open_global_port_raw(80, 1, "x").unwrap_err(),
        mgr.close_global_port_raw(80, 58).unwrap_err(),
        mgr.is_global_port_open(0, UDP).unwrap_err(),
        c.open_port(0, TCP, "x").unwrap_err(),
        c.open_port_raw(22, 0, "x").unwrap_err(),
        c.close_port_raw(0, 17).unwrap_err(),
        c.is_port_open_raw(70000, 6).unwrap_err(),
        c.ignore_global_raw(1, 2).unwrap_err(),
        c.observe_global(0, TCP).unwrap_err(),
        c.is_ignored(0, TCP).unwrap_err(),
        c.open_port(22, TCP, "a\nb").unwrap_err(),
        c.open_port(22, TCP, &"x".repeat(300)).unwrap_err(),
        mgr.connection("nope").unwrap_err(),
    ];
    for e in &bad {
        assert_eq!(e.hresult(), E_INVALIDARG, "{e}");
        assert!(e.to_string().ends_with("(E_INVALIDARG 0x80070057)"), "{e}");
    }
    assert_eq!(
        bad[0].to_string(),
        "port 0 is not valid: ports are 1-65535 (E_INVALIDARG 0x80070057)"
    );
    assert!(
        bad[3].to_string().contains("use tcp (6) or udp (17)"),
        "{}",
        bad[3]
    );
    assert!(
        bad[15].to_string().contains("v6fw connections"),
        "{}",
        bad[15]
    );
    // Nothing changed.
    assert_eq!(mgr.global_open_ports().count(), 0);
    assert_eq!(c.open_ports().unwrap().count(), 0);
}

#[test]
fn evaluation_order_through_the_engine() {
    let (_d, mgr) = manager();
    let c = mgr.connection("test0").unwrap();
    assert_eq!(decide(&mgr, &tcp_syn(22), 1000), Reason::PortClosed);
    c.open_port(22, TCP, "ssh").unwrap();
    assert_eq!(decide(&mgr, &tcp_syn(22), 1000), Reason::OpenPort);
    assert_eq!(
        decide(&mgr, &tcp_syn(22), 1001),
        Reason::PortClosed,
        "own to test0 only"
    );
    mgr.open_global_port(443, TCP, "https").unwrap();
    mgr.open_global_port(53, UDP, "dns").unwrap();
    assert_eq!(decide(&mgr, &tcp_syn(443), 1000), Reason::GlobalPort);
    assert_eq!(decide(&mgr, &tcp_syn(443), 1001), Reason::GlobalPort);
    assert_eq!(decide(&mgr, &udp(53), 1001), Reason::GlobalPort);
    c.ignore_global(443, TCP).unwrap();
    assert_eq!(decide(&mgr, &tcp_syn(443), 1000), Reason::PortClosed);
    assert_eq!(decide(&mgr, &tcp_syn(443), 1001), Reason::GlobalPort);
    // Own beats global and survives ignoring.
    mgr.open_global_port(22, TCP, "global ssh").unwrap();
    c.ignore_global(22, TCP).unwrap();
    assert_eq!(decide(&mgr, &tcp_syn(22), 1000), Reason::OpenPort);
    c.observe_global(443, TCP).unwrap();
    assert_eq!(decide(&mgr, &tcp_syn(443), 1000), Reason::GlobalPort);
    c.disable().unwrap();
    assert_eq!(decide(&mgr, &tcp_syn(9), 1000), Reason::FirewallDisabled);
    c.enable().unwrap();
    assert_eq!(decide(&mgr, &tcp_syn(9), 1000), Reason::PortClosed);
}

#[test]
fn a_change_decides_the_very_next_packet() {
    let (_d, mgr) = manager();
    let c = mgr.connection("test1").unwrap();
    let mut worker = mgr.engine().worker();
    for round in 0..50u16 {
        let port = 1000 + round;
        c.open_port(port, TCP, "t").unwrap();
        let snap = mgr.engine().table().pin();
        let d = worker.decide(&snap, &tcp_syn(port), &PacketMeta::inbound(1001, 0));
        assert_eq!(d.reason, Reason::OpenPort);
        drop(snap);
        c.close_port(port, TCP).unwrap();
        let snap = mgr.engine().table().pin();
        let d = worker.decide(&snap, &tcp_syn(port), &PacketMeta::inbound(1001, 0));
        assert_eq!(d.reason, Reason::PortClosed);
    }
}

#[test]
fn snapshots_are_taken_at_the_call() {
    let (_d, mgr) = manager();
    let c = mgr.connection("test0").unwrap();
    c.open_port(1, TCP, "one").unwrap();
    let before = c.open_ports().unwrap();
    let iter = c.enumerate_open_ports().unwrap();
    c.open_port(2, TCP, "two").unwrap();
    c.close_port(1, TCP).unwrap();
    assert_eq!(before.count(), 1);
    assert!(before.contains(pair("1/tcp")), "closed later, still there");
    assert!(!before.contains(pair("2/tcp")), "opened later, not there");
    assert_eq!(iter.map(|p| p.port()).collect::<Vec<_>>(), [1]);

    // A writer opens 100..110 in order, then closes them in order, again and
    // again: every published set is a contiguous run of those ports. Every
    // snapshot read meanwhile must be such a run (never half a change, never
    // a mix of two states), sorted, and unchanged however long it is held.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let mgr = Arc::clone(&mgr);
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let c = mgr.connection("test1").unwrap();
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) && n < 400 {
                let port = 100 + u16::try_from(n % 10).unwrap();
                if (n / 10).is_multiple_of(2) {
                    assert!(c.open_port(port, TCP, "w").unwrap());
                } else {
                    assert!(c.close_port(port, TCP).unwrap());
                }
                n += 1;
            }
        })
    };
    let c1 = mgr.connection("test1").unwrap();
    let mut seen = std::collections::BTreeSet::new();
    let mut reads = 0u32;
    while !writer.is_finished() && reads < 1_000_000 {
        reads += 1;
        let snap = c1.open_ports().unwrap();
        let ports: Vec<u16> = snap.iter().map(|p| p.port()).collect();
        assert!(ports.windows(2).all(|w| w[0] + 1 == w[1]), "{ports:?}");
        assert!(ports.iter().all(|p| (100..110).contains(p)), "{ports:?}");
        seen.insert(ports.len());
        std::thread::yield_now();
        let again: Vec<u16> = snap.enumerate().map(|p| p.port()).collect();
        assert_eq!(again, ports, "a held snapshot never changes");
        assert_eq!(snap.count(), ports.len());
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(
        seen.len() > 1,
        "the reader saw the writer's changes: {seen:?}"
    );
}

#[test]
fn refresh_adds_new_and_keeps_known() {
    let (_d, mgr) = manager();
    let c = mgr.connection("test0").unwrap();
    c.open_port(22, TCP, "ssh").unwrap();
    c.disable().unwrap();
    // test0 changes index, test1 disappears, test2 appears with test1's old index.
    assert!(mgr
        .refresh_from(&[iface("test0", 2000), iface("test2", 1001)])
        .unwrap());
    assert_eq!(c.if_index().unwrap(), 2000);
    assert!(c.is_port_open(22, TCP).unwrap());
    assert!(!c.is_firewalled().unwrap());
    let t1 = mgr.connection("test1").unwrap();
    assert_eq!(t1.if_index().unwrap(), 0, "gone: kept, unmatched");
    let t2 = mgr.connection("test2").unwrap();
    assert!(t2.is_firewalled().unwrap());
    assert_eq!(t2.open_ports().unwrap().count(), 0);
    assert!(!mgr
        .refresh_from(&[iface("test0", 2000), iface("test2", 1001)])
        .unwrap());
}

#[test]
fn policy_survives_reopen_and_is_written_before_ack() {
    let (dir, mgr) = manager();
    let c = mgr.connection("test0").unwrap();
    c.open_port(22, TCP, "ssh").unwrap();
    mgr.open_global_port(53, UDP, "dns").unwrap();
    c.ignore_global(53, UDP).unwrap();
    // Written before the call returned.
    let text = std::fs::read_to_string(dir.path().join("policy.toml")).unwrap();
    assert!(text.contains("\"22/tcp\" = \"ssh\""), "{text}");
    assert!(text.contains("\"53/udp\" = \"dns\""), "{text}");
    let expected: Policy = Policy::clone(&mgr.policy());
    drop(c);
    drop(mgr);
    let again = FirewallManager::open(dir.path()).unwrap();
    let c = again.connection("test0").unwrap();
    assert!(c.is_port_open(22, TCP).unwrap());
    assert!(c.is_ignored(53, UDP).unwrap());
    assert!(again.is_global_port_open(53, UDP).unwrap());
    assert_eq!(again.policy().globals, expected.globals);
    // One writer per state directory: a second one is refused.
    let e = FirewallManager::open(dir.path()).unwrap_err();
    assert_eq!(e.hresult(), E_FAIL);
    assert!(
        e.to_string().contains("in use by another v6fw process"),
        "{e}"
    );
    let ro = FirewallManager::open_read_only(dir.path()).unwrap();
    assert!(ro.is_global_port_open(53, UDP).unwrap());
    let e = ro.open_global_port(80, TCP, "x").unwrap_err();
    assert_eq!(e.hresult(), E_ACCESSDENIED);
    assert!(e.to_string().contains("run with sudo"), "{e}");
}

#[test]
fn corrupt_file_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    let bad = "state = true\n\n[globals]\n\"0/tcp\" = \"zero\"\n";
    std::fs::write(&path, bad).unwrap();
    let e = FirewallManager::open(dir.path()).unwrap_err();
    assert_eq!(e.hresult(), E_FAIL);
    let msg = e.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("line 4"), "{msg}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), bad, "untouched");
    std::fs::write(&path, "[globals\n").unwrap();
    let e = FirewallManager::open_read_only(dir.path()).unwrap_err();
    assert!(e.to_string().contains("line 1"), "{e}");
}

#[test]
fn stale_temp_files_are_removed_and_in_memory_works() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".policy.toml.tmp.1.2"), "half").unwrap();
    let mgr = FirewallManager::open(dir.path()).unwrap();
    assert!(!dir.path().join(".policy.toml.tmp.1.2").exists());
    drop(mgr);
    let mem = FirewallManager::in_memory(Policy::default());
    assert!(mem.open_global_port(1, TCP, "").unwrap());
    assert!(mem.store().is_none());
    mem.add_connection("x", "x", 7).unwrap();
    assert!(mem.set_state_tracking(false).unwrap());
    assert!(!mem.set_state_tracking(false).unwrap());
    assert!(!mem.policy().state.enabled);
    assert_eq!(
        mem.add_connection("x", "x", 7).unwrap_err().hresult(),
        E_INVALIDARG
    );
}
