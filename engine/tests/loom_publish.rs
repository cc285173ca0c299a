//! Loom model checks of the port table's publish / read / retire protocol.
//!
//! Run with (crossbeam-epoch then uses loom's atomics, thread-locals and
//! lazy statics inside its collector, so its epoch protocol is explored too):
//!
//! ```text
//! RUSTFLAGS="--cfg loom --cfg crossbeam_loom" \
//!     cargo test -p v6fw-engine --test loom_publish --release
//! ```
//!
//! Two checks:
//! - `real_port_table`: the real `PortTable` (one writer publishing two
//!   changes, one reader pinning twice). Checks every pinned snapshot is one
//!   whole published state (generation, policy and bitsets agree) and that
//!   generations never go back. The writer mutex is parking_lot's (not
//!   instrumented); with a single writer it is never contended.
//! - `protocol_model`: the same protocol on a payload whose bytes are loom
//!   `UnsafeCell`s, so loom also proves the reader's access happens before the
//!   retired snapshot's destruction: writers serialized by a mutex build the
//!   next value, `swap(AcqRel)` it into a `crossbeam_epoch::Atomic`, then
//!   `defer_destroy` the old one under their guard and `flush`; readers
//!   `pin()`, `load(Acquire)` and read under the guard; the last value is freed
//!   through `unprotected()` as in `PortTable::drop`. This is exactly
//!   `PortTable::{pin, update, drop}` with the `Snapshot` replaced.
#![cfg(loom)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::atomic::Ordering;

use crossbeam_epoch::{self as epoch, Atomic, Owned, Shared};
use loom::cell::UnsafeCell;
use loom::sync::{Arc, Mutex};
use loom::thread;
use v6fw_engine::{Connection, Policy, PolicyError, PortPair, PortTable, Protocol};

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

#[test]
fn real_port_table() {
    builder(3).check(|| {
        let mut p = Policy::default();
        p.add_connection(Connection::new("eth0", "Ethernet", 2))
            .unwrap();
        let table = std::sync::Arc::new(PortTable::new(p));

        let reader = {
            let table = std::sync::Arc::clone(&table);
            thread::spawn(move || {
                let first = check_whole(&table.pin());
                let second = check_whole(&table.pin());
                assert!(second >= first, "generation went back");
                let pol = table.policy();
                assert!(pol.connection("eth0").unwrap().open.len() as u64 >= second);
            })
        };
        for port in 1..=2 {
            table
                .update(|p| {
                    p.connection_mut("eth0")
                        .map(|c| c.open_port(pair(port), "t"))
                })
                .map_err(|e: PolicyError| e)
                .unwrap();
        }
        reader.join().unwrap();
        assert_eq!(check_whole(&table.pin()), 2);
    });
}

/// A published value whose contents loom tracks.
struct Value {
    generation: u64,
    /// Always `generation` while the value is alive.
    cell: UnsafeCell<u64>,
}

impl Value {
    fn new(generation: u64) -> Self {
        Value {
            generation,
            cell: UnsafeCell::new(generation),
        }
    }
}

impl Drop for Value {
    fn drop(&mut self) {
        // A write loom checks against every read: if a reader could still
        // see this value, loom reports the race.
        self.cell.with_mut(|p| {
            // SAFETY: `&mut self` is the only access at drop.
            unsafe { *p = u64::MAX }
        });
    }
}

struct Table {
    current: Atomic<Value>,
    writer: Mutex<u64>,
}

impl Table {
    fn new() -> Self {
        Table {
            current: Atomic::new(Value::new(0)),
            writer: Mutex::new(0),
        }
    }

    /// `PortTable::update`.
    fn publish(&self) {
        let mut generation = self.writer.lock().unwrap();
        *generation += 1;
        let next = Owned::new(Value::new(*generation));
        let guard = epoch::pin();
        let old = self.current.swap(next, Ordering::AcqRel, &guard);
        // SAFETY: as in `PortTable::update`: `old` is unlinked, readers that
        // loaded it hold guards pinned before this point.
        unsafe { guard.defer_destroy(old) };
        guard.flush();
    }

    /// `PortTable::pin` + a read through `Pinned`'s `Deref`.
    fn read(&self) -> u64 {
        let guard = epoch::pin();
        let shared = self.current.load(Ordering::Acquire, &guard);
        // SAFETY: loaded under `guard`, which is still pinned; never null.
        let value = unsafe { shared.deref() };
        let seen = value.cell.with(|p| {
            // SAFETY: loom checks this read against the destructor's write.
            unsafe { *p }
        });
        assert_eq!(seen, value.generation, "read a retired or torn value");
        seen
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        // SAFETY: as in `PortTable::drop`: `&mut self` excludes readers.
        unsafe {
            let guard = epoch::unprotected();
            let cur = self.current.swap(Shared::null(), Ordering::AcqRel, guard);
            if !cur.is_null() {
                drop(cur.into_owned());
            }
        }
    }
}

#[test]
fn protocol_model() {
    builder(2).check(|| {
        let table = Arc::new(Table::new());
        let reader = {
            let table = Arc::clone(&table);
            thread::spawn(move || {
                let a = table.read();
                let b = table.read();
                assert!(b >= a, "generation went back");
            })
        };
        let writer = {
            let table = Arc::clone(&table);
            thread::spawn(move || table.publish())
        };
        table.publish();
        writer.join().unwrap();
        reader.join().unwrap();
        assert_eq!(table.read(), 2);
    });
}
