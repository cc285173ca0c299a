//! Loom model checks of the real port table's publish / read / retire.
//!
//! Run with (the table's mutex, atomics and `Arc` are then loom's through
//! `engine/src/sync.rs`, and crossbeam-epoch uses loom inside its collector,
//! so the epoch protocol is explored too):
//!
//! ```text
//! RUSTFLAGS="--cfg loom --cfg crossbeam_loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p v6fw-engine --release --test loom_publish
//! ```
//!
//! Every snapshot carries a loom cell that its destructor writes and every
//! access through `Pinned` reads, so loom proves each read happens before the
//! retired snapshot is freed. The checks: every pinned snapshot is one whole
//! published state (generation, policy and bitsets agree), generations never
//! go back, and the last state is the one published last.
#![cfg(loom)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use loom::sync::Arc;
use loom::thread;
use v6fw_engine::{Connection, Policy, PolicyError, PortPair, PortTable, Protocol, Publisher};

/// A model with at most `bound` preemptions per execution, unless
/// `LOOM_MAX_PREEMPTIONS` says otherwise.
fn builder(bound: usize) -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(bound);
    }
    b
}

fn pair(port: u16) -> PortPair {
    PortPair::new(port, Protocol::Tcp).unwrap()
}

/// State k: TCP ports 1..=k open on eth0 (if 2).
fn check_whole(snap: &v6fw_engine::Snapshot) -> u64 {
    let g = snap.generation();
    let own = &snap.policy().connection("eth0").unwrap().open;
    assert_eq!(own.len() as u64, g, "policy and generation disagree");
    let conn = snap.connection(2);
    for port in 1..=3u16 {
        assert_eq!(
            conn.own.contains(6, port),
            u64::from(port) <= g,
            "bitset vs generation {g}"
        );
        assert_eq!(own.contains_key(&pair(port)), u64::from(port) <= g);
    }
    g
}

/// Runs `f` on a loom thread with a 1 MiB stack: a snapshot build holds
/// 16 KiB port sets on the stack, more than the model's main thread has.
fn big_stack(f: impl FnOnce() + Send + 'static) {
    thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

fn spawn(f: impl FnOnce() + Send + 'static) -> thread::JoinHandle<()> {
    thread::Builder::new().stack_size(1 << 20).spawn(f).unwrap()
}

/// A table with eth0 and its one publisher.
fn table() -> (PortTable, Publisher) {
    let mut p = Policy::default();
    p.add_connection(Connection::new("eth0", "Ethernet", 2))
        .unwrap();
    let table = PortTable::new(p);
    let publisher = table.take_publisher().unwrap();
    assert!(table.take_publisher().is_none(), "one publisher per table");
    (table, publisher)
}

/// Opens the next port on eth0: publishes state `open.len() + 1`.
fn publish_next(publisher: &Publisher) {
    publisher
        .update(|p| {
            let conn = p.connection_mut("eth0")?;
            let next = u16::try_from(conn.open.len()).unwrap() + 1;
            Ok::<_, PolicyError>(conn.open_port(pair(next), "t"))
        })
        .unwrap();
}

#[test]
fn one_writer_one_reader() {
    builder(2).check(|| {
        big_stack(|| {
            let (table, publisher) = table();
            let table = Arc::new(table);
            let reader = {
                let table = Arc::clone(&table);
                spawn(move || {
                    let first = check_whole(&table.pin());
                    let second = check_whole(&table.pin());
                    assert!(second >= first, "generation went back");
                    let pol = table.policy();
                    assert!(pol.connection("eth0").unwrap().open.len() as u64 >= second);
                })
            };
            publish_next(&publisher);
            publish_next(&publisher);
            reader.join().unwrap();
            assert_eq!(check_whole(&table.pin()), 2);
        })
    });
}

#[test]
fn two_writers_one_reader() {
    builder(1).check(|| {
        big_stack(|| {
            let (table, publisher) = table();
            let publisher = Arc::new(publisher);
            let reader = {
                let publisher = Arc::clone(&publisher);
                spawn(move || {
                    let table = publisher.table();
                    let pinned = table.pin();
                    let held = check_whole(&pinned);
                    let later = check_whole(&table.pin());
                    assert!(later >= held, "generation went back");
                    // The snapshot pinned first is unchanged, whatever was
                    // published meanwhile.
                    assert_eq!(check_whole(pinned.snapshot()), held);
                })
            };
            let writer = {
                let publisher = Arc::clone(&publisher);
                spawn(move || publish_next(&publisher))
            };
            publish_next(&publisher);
            writer.join().unwrap();
            reader.join().unwrap();
            assert_eq!(check_whole(&table.pin()), 2);
        })
    });
}
