//! `load` while packets are decided (issue 15): decider threads decide a
//! batch of packets on each snapshot they pin while a loader alternates the
//! whole policy between A and B through `FirewallManager::load`. Every
//! batch must be decided exactly as A or exactly as B decides it, never a
//! mix, and both policies must have been seen. In-process, no root needed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use etherparse::PacketBuilder;
use v6fw_api::fw::FirewallManager;
use v6fw_engine::{PacketMeta, Policy, Reason};

/// Two policies that decide every probe differently: ranges, names and
/// scopes, through the same text a policy file holds.
const A: &str = r#"[globals]
"1:4/tcp" = "a"
"5/tcp" = { name = "a5", from = ["fd00::/8"] }
"#;
const B: &str = r#"[globals]
"5:8/tcp" = "b"
"1/tcp" = { name = "b1", from = ["2001:db8::/32"] }
"#;

fn policy(text: &str) -> Policy {
    v6fw_api::store::parse(std::path::Path::new("test.toml"), text)
        .unwrap()
        .policy
}

fn tcp(src: [u8; 16], dport: u16) -> Vec<u8> {
    let mut dst = [0u8; 16];
    dst[0] = 0xfd;
    dst[15] = 1;
    let b = PacketBuilder::ipv6(src, dst, 64)
        .tcp(40_000, dport, 1, 1024)
        .syn();
    let mut v = Vec::new();
    b.write(&mut v, &[]).unwrap();
    v
}

/// The probes: ports 1-8 from a source in fd00::/8, then from 2001:db8::/32.
fn probes() -> Vec<Vec<u8>> {
    let lan = {
        let mut a = [0u8; 16];
        a[0] = 0xfd;
        a[15] = 9;
        a
    };
    let doc = {
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        a[15] = 9;
        a
    };
    [lan, doc]
        .into_iter()
        .flat_map(|src| (1..=8).map(move |p| tcp(src, p)))
        .collect()
}

/// How the current snapshot decides the probes (all on one pin), on an
/// interface no connection names (the globals alone), and its generation.
fn decide_all(mgr: &FirewallManager) -> (u64, Vec<Reason>) {
    let engine = mgr.engine();
    let snap = engine.table().pin();
    let mut w = engine.worker();
    let meta = PacketMeta::inbound(u32::MAX, 0);
    let reasons = probes()
        .iter()
        .map(|p| w.decide(&snap, p, &meta).reason)
        .collect();
    (snap.generation(), reasons)
}

#[test]
fn every_batch_is_decided_by_one_policy_whole() {
    let mgr = FirewallManager::in_memory(policy(A));
    mgr.load(policy(A)).unwrap();
    let expect_a = decide_all(&mgr).1;
    mgr.load(policy(B)).unwrap();
    let expect_b = decide_all(&mgr).1;
    assert_ne!(expect_a, expect_b);
    // A's and B's answers are what SPEC.md says, so the comparison means something.
    use Reason::*;
    let a_lan = [
        GlobalPort, GlobalPort, GlobalPort, GlobalPort, GlobalPort, PortClosed, PortClosed,
        PortClosed,
    ];
    let a_doc = [
        GlobalPort, GlobalPort, GlobalPort, GlobalPort, OutOfScope, PortClosed, PortClosed,
        PortClosed,
    ];
    assert_eq!(expect_a, [a_lan, a_doc].concat());
    let b_lan = [
        OutOfScope, PortClosed, PortClosed, PortClosed, GlobalPort, GlobalPort, GlobalPort,
        GlobalPort,
    ];
    let b_doc = [
        GlobalPort, PortClosed, PortClosed, PortClosed, GlobalPort, GlobalPort, GlobalPort,
        GlobalPort,
    ];
    assert_eq!(expect_b, [b_lan, b_doc].concat());

    let stop = Arc::new(AtomicBool::new(false));
    let deciders: Vec<_> = (0..2)
        .map(|_| {
            let mgr = Arc::clone(&mgr);
            let stop = Arc::clone(&stop);
            let (ea, eb) = (expect_a.clone(), expect_b.clone());
            std::thread::spawn(move || {
                let (mut seen_a, mut seen_b, mut batches) = (0u64, 0u64, 0u64);
                while !stop.load(Ordering::Acquire) && batches < 2_000_000 {
                    let (generation, got) = decide_all(&mgr);
                    if got == ea {
                        seen_a += 1;
                    } else if got == eb {
                        seen_b += 1;
                    } else {
                        panic!("generation {generation} decided a mix: {got:?}");
                    }
                    batches += 1;
                }
                (seen_a, seen_b)
            })
        })
        .collect();
    let until = Instant::now() + Duration::from_secs(3);
    let mut loads = 0u32;
    while Instant::now() < until && loads < 2_000 {
        mgr.load(policy(if loads.is_multiple_of(2) { A } else { B }))
            .unwrap();
        loads += 1;
    }
    stop.store(true, Ordering::Release);
    let (mut a, mut b) = (0, 0);
    for d in deciders {
        let (sa, sb) = d.join().unwrap();
        a += sa;
        b += sb;
    }
    assert!(loads >= 10, "only {loads} loads");
    assert!(
        a > 0 && b > 0,
        "both policies were decided by: A {a}, B {b}"
    );
}
