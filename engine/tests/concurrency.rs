//! Readers pin, decide and read the policy while a writer publishes a known
//! sequence of states: state k (generation k) has TCP ports 1..=k open on
//! eth0 and UDP port k open globally (none for k = 0). Every read must be one
//! published state, whole: the set of open ports is exactly {1..=k}, the
//! bitsets of the same pinned snapshot say the same, and the generation a
//! reader sees never goes backwards.
//!
//! Every loop is bounded in count and in time; sizes shrink under Miri.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{pair, tcp_in, udp_in};
use v6fw_engine::{Connection, Engine, PacketMeta, Policy, PortPair, Protocol, Reason};

const STATES: u16 = if cfg!(miri) { 6 } else { 400 };
const READERS: usize = if cfg!(miri) { 2 } else { 3 };
const MAX_READS: usize = if cfg!(miri) { 20 } else { 200_000 };
const DEADLINE: Duration = Duration::from_secs(if cfg!(miri) { 600 } else { 20 });
const IF: u32 = 2;

fn tcp_open(k: u16) -> BTreeSet<PortPair> {
    (1..=k).map(|p| pair(p, Protocol::Tcp)).collect()
}

/// The k of a policy, checking it is exactly a published state.
fn state_of(policy: &Policy) -> u16 {
    let own: BTreeSet<PortPair> = policy
        .connection("eth0")
        .unwrap()
        .open
        .keys()
        .copied()
        .collect();
    let k = u16::try_from(own.len()).unwrap();
    assert_eq!(own, tcp_open(k), "torn read: own pairs are not 1..=k");
    let globals: Vec<PortPair> = policy.globals.keys().copied().collect();
    let expect: Vec<PortPair> = (k > 0)
        .then(|| pair(k, Protocol::Udp))
        .into_iter()
        .collect();
    assert_eq!(
        globals, expect,
        "torn read: globals do not match own pairs (k = {k})"
    );
    k
}

#[test]
fn readers_see_whole_published_states() {
    let mut p = Policy::default();
    p.add_connection(Connection::new("eth0", "Ethernet", IF))
        .unwrap();
    let engine = Engine::new(p);
    let publisher = engine.table().take_publisher().unwrap();
    let done = AtomicBool::new(false);
    let start = Instant::now();

    std::thread::scope(|s| {
        let readers: Vec<_> = (0..READERS)
            .map(|r| {
                let engine = &engine;
                let done = &done;
                s.spawn(move || {
                    let mut worker = engine.worker();
                    let mut last_gen = 0u64;
                    let mut last_policy_k = 0u16;
                    let mut reads = 0usize;
                    let mut distinct = BTreeSet::new();
                    while reads < MAX_READS && start.elapsed() < DEADLINE {
                        let finished = done.load(Ordering::Acquire);
                        {
                            let snap = engine.table().pin();
                            let generation = snap.generation();
                            assert!(generation >= last_gen, "reader {r}: generation went back");
                            last_gen = generation;
                            let k = state_of(snap.policy());
                            assert_eq!(u64::from(k), generation, "policy and generation disagree");
                            distinct.insert(k);
                            // The bitsets of the same snapshot.
                            let conn = snap.connection(IF);
                            for port in [1, k / 2, k, k + 1, k.saturating_add(2)] {
                                let open = port >= 1 && port <= k;
                                assert_eq!(
                                    conn.own.contains(6, port),
                                    open,
                                    "tcp {port} at k = {k}"
                                );
                                assert_eq!(
                                    conn.global.contains(17, port),
                                    k > 0 && port == k,
                                    "udp {port} at k = {k}"
                                );
                            }
                            // Decisions on the same snapshot.
                            let meta = PacketMeta::inbound(IF, 0);
                            let d = worker.decide(&snap, &tcp_in(k + 1), &meta);
                            assert_eq!(d.reason, Reason::PortClosed);
                            if k > 0 {
                                let d = worker.decide(&snap, &tcp_in(k), &meta);
                                assert_eq!(d.reason, Reason::OpenPort);
                                let d = worker.decide(&snap, &udp_in(k), &meta);
                                assert_eq!(d.reason, Reason::GlobalPort);
                            }
                        }
                        // The API's read: a whole state, never older than one seen before.
                        let pol = engine.table().policy();
                        let k = state_of(&pol);
                        assert!(k >= last_policy_k, "reader {r}: policy went back");
                        assert!(
                            u64::from(k) >= last_gen,
                            "policy older than a pinned snapshot"
                        );
                        last_policy_k = k;
                        reads += 1;
                        if finished {
                            // One full read after the writer finished: the last state.
                            assert_eq!(k, STATES);
                            break;
                        }
                        std::thread::yield_now();
                    }
                    (reads, distinct.len())
                })
            })
            .collect();

        // The writer: states 1..=STATES, one change each.
        for k in 1..=STATES {
            publisher
                .update(|p| {
                    p.connection_mut("eth0")?
                        .open_port(pair(k, Protocol::Tcp), "t");
                    if k > 1 {
                        p.close_global(pair(k - 1, Protocol::Udp));
                    }
                    p.open_global(pair(k, Protocol::Udp), "u");
                    Ok::<_, v6fw_engine::PolicyError>(())
                })
                .unwrap();
            if start.elapsed() > DEADLINE {
                break;
            }
        }
        done.store(true, Ordering::Release);
        for r in readers {
            let (reads, distinct) = r.join().unwrap();
            assert!(reads > 0);
            assert!(distinct >= 1);
        }
    });

    let snap = engine.table().pin();
    assert_eq!(snap.generation(), u64::from(STATES));
    assert_eq!(state_of(snap.policy()), STATES);
}

#[test]
fn a_held_policy_is_unchanged_by_later_publications() {
    let mut p = Policy::default();
    p.add_connection(Connection::new("eth0", "Ethernet", IF))
        .unwrap();
    let engine = Engine::new(p);
    let publisher = engine.table().take_publisher().unwrap();
    let open = |k| {
        publisher
            .update(|p| {
                p.connection_mut("eth0")?
                    .open_port(pair(k, Protocol::Tcp), "t");
                p.open_global(pair(k, Protocol::Udp), "u");
                if k > 1 {
                    p.close_global(pair(k - 1, Protocol::Udp));
                }
                Ok::<_, v6fw_engine::PolicyError>(())
            })
            .unwrap();
    };
    open(1);
    let held = engine.table().policy();
    let pinned = engine.table().pin();
    std::thread::scope(|s| {
        s.spawn(|| {
            for k in 2..=5 {
                open(k);
            }
        });
    });
    // Both the held policy and the old pinned snapshot are still state 1.
    assert_eq!(state_of(&held), 1);
    assert_eq!(pinned.generation(), 1);
    assert!(pinned.connection(IF).own.contains(6, 1));
    assert!(!pinned.connection(IF).own.contains(6, 2));
    drop(pinned);
    assert_eq!(state_of(&engine.table().policy()), 5);
}
