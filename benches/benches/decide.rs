//! Criterion benchmarks of v6fw's decision against the obvious baselines.
//!
//! Groups (each compares v6fw with etherparse + `std::sync::RwLock<HashSet>`,
//! `parking_lot::RwLock<HashSet>` and `arc_swap::ArcSwap<HashSet>`):
//! - `kind/<packet>`: one packet of each kind, decided inbound (v6fw on a
//!   snapshot pinned outside the timing loop, as a batch would), v6fw's
//!   header walk alone, and for a TCP SYN and UDP the least SPEC.md lets
//!   the decision cost (`spec_minimum`, see `v6fw_benches::minimum`).
//! - `mixed_1024`: the mixed batch of 1,024 packets, one pin per batch; plus
//!   v6fw with flow state off, the bare floor (port at a fixed offset and a
//!   bit test) and one epoch pin.
//! - `open_ports/<n>`: reading a connection's open pairs with n entries:
//!   `table.policy()` then iterating; the baselines copy the set under the
//!   lock (a snapshot that later changes cannot touch).
//! - `publish`: the cost of one published change.
//!
//! `cargo bench -p v6fw-benches --bench decide`; figures in docs/benchmarks.md.

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::collections::HashSet;
use std::hint::black_box;
use std::time::Duration;

mod scale;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use v6fw_benches::baseline::{
    baseline_pairs, bench_engine, bench_policy, ArcSwapPorts, BaselineDecider, BatchDecider, Floor,
    ParkingLotPorts, PortLookup, StdRwLockPorts, V6fwDecider, IF_INDEX, NOW_NS,
};
use v6fw_benches::minimum::SpecMinimum;
use v6fw_engine::{Connection, Engine, Policy, PortPair, Protocol};
use v6fw_testkit::packets::{self, MixedBatch};

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

/// Runs `f` under each baseline's name with a fresh port set.
fn baselines(mut f: impl FnMut(&str, &dyn PortLookupDyn)) {
    f(
        "etherparse_std_rwlock",
        &StdRwLockPorts::new(baseline_pairs()),
    );
    f(
        "etherparse_parking_lot",
        &ParkingLotPorts::new(baseline_pairs()),
    );
    f("etherparse_arc_swap", &ArcSwapPorts::new(baseline_pairs()));
}

type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;

/// Object-safe view of a baseline, so one loop covers all three.
trait PortLookupDyn {
    /// Benchmarks deciding one packet.
    fn bench_one(&self, g: &mut Group<'_>, id: BenchmarkId, pkt: &[u8]);
    /// Benchmarks deciding a batch.
    fn bench_batch(&self, g: &mut Group<'_>, id: BenchmarkId, batch: &MixedBatch);
    /// Opens or closes a TCP port.
    fn toggle(&self, port: u16, open: bool);
}

impl<P: PortLookup> PortLookupDyn for P {
    fn bench_one(&self, g: &mut Group<'_>, id: BenchmarkId, pkt: &[u8]) {
        let mut d = BaselineDecider::new(self, &[]);
        g.bench_function(id, |b| b.iter(|| d.decide(black_box(pkt), true, NOW_NS)));
    }
    fn bench_batch(&self, g: &mut Group<'_>, id: BenchmarkId, batch: &MixedBatch) {
        let mut d = BaselineDecider::new(self, &batch.outbound);
        g.bench_function(id, |b| b.iter(|| d.decide_batch(black_box(&batch.packets))));
    }
    fn toggle(&self, port: u16, open: bool) {
        if open {
            self.open(port, 6);
        } else {
            self.close(port, 6);
        }
    }
}

fn kinds(c: &mut Criterion) {
    let cases: [(&str, Vec<u8>); 6] = [
        ("tcp_syn", packets::tcp_syn(1, 40_000, 22)),
        ("udp", packets::udp(1, 40_000, 53)),
        ("icmpv6_ndp_hl255", packets::icmpv6_ndp(1)),
        ("ext_chain3", packets::ext_chain3(1, 40_000, 22)),
        ("first_fragment", packets::first_fragment(1, 53, 9)),
        ("malformed", packets::malformed(1, 22)),
    ];
    let engine = bench_engine();
    for (name, pkt) in &cases {
        let mut g = c.benchmark_group(format!("kind/{name}"));
        g.throughput(Throughput::Elements(1));
        let mut d = V6fwDecider::new(&engine, &[]);
        let snap = engine.table().pin();
        g.bench_function("v6fw", |b| b.iter(|| d.decide_one(&snap, black_box(pkt))));
        drop(snap);
        g.bench_function("v6fw_walk_only", |b| {
            b.iter(|| v6fw_engine::walk::walk(black_box(pkt), false))
        });
        // The least a decision of this packet can cost (TCP SYN and UDP only).
        if let Some(mut min) = SpecMinimum::new(&bench_policy()) {
            if min.decide(pkt, IF_INDEX).is_some() {
                g.bench_function("spec_minimum", |b| {
                    b.iter(|| min.decide(black_box(pkt), IF_INDEX))
                });
            }
        }
        baselines(|base, ports| ports.bench_one(&mut g, BenchmarkId::from_parameter(base), pkt));
        g.finish();
    }
}

fn mixed(c: &mut Criterion) {
    let batch = MixedBatch::new(1_024, 1);
    let engine = bench_engine();
    let mut g = c.benchmark_group("mixed_1024");
    g.throughput(Throughput::Elements(batch.packets.len() as u64));
    let mut d = V6fwDecider::new(&engine, &batch.outbound);
    g.bench_function("v6fw", |b| {
        b.iter(|| d.decide_batch(black_box(&batch.packets)))
    });
    // The same batch with flow state off (replies become port_closed, no
    // flow-table probes): how much of v6fw's time the flow table takes.
    let mut stateless = v6fw_benches::baseline::bench_policy();
    stateless.state.enabled = false;
    let engine_stateless = Engine::new(stateless);
    let mut d_stateless = V6fwDecider::new(&engine_stateless, &batch.outbound);
    g.bench_function("v6fw_state_off", |b| {
        b.iter(|| d_stateless.decide_batch(black_box(&batch.packets)))
    });
    baselines(|base, ports| ports.bench_batch(&mut g, BenchmarkId::from_parameter(base), &batch));
    let mut floor = Floor::new();
    g.bench_function("bare_floor", |b| {
        b.iter(|| floor.decide_batch(black_box(&batch.packets)))
    });
    g.bench_function("epoch_pin_only", |b| {
        b.iter(|| black_box(engine.table().pin().generation()))
    });
    g.finish();
}

/// A policy whose connection `eth0` has `n` own TCP pairs (ports 1..=n).
fn policy_with(n: u16) -> Policy {
    let mut policy = Policy::default();
    let mut conn = Connection::new("eth0", "Ethernet", 1);
    for port in 1..=n {
        if let Ok(pair) = PortPair::new(port, Protocol::Tcp) {
            conn.open_port(pair, "p");
        }
    }
    let _ = policy.add_connection(conn);
    policy
}

fn open_ports(c: &mut Criterion) {
    for n in [10u16, 1_000, 65_535] {
        let mut g = c.benchmark_group(format!("open_ports/{n}"));
        g.throughput(Throughput::Elements(u64::from(n)));
        let engine = Engine::new(policy_with(n));
        g.bench_function("v6fw", |b| {
            b.iter(|| {
                let policy = engine.table().policy();
                let conn = policy.connections.get("eth0");
                conn.map_or(0, |c| {
                    c.open.keys().map(|p| usize::from(p.port())).sum::<usize>()
                })
            })
        });
        let set: HashSet<(u16, u8)> = (1..=n).map(|p| (p, 6u8)).collect();
        let std_lock = std::sync::RwLock::new(set.clone());
        g.bench_function("std_rwlock_copy", |b| {
            b.iter(|| {
                let copy: Vec<(u16, u8)> = std_lock
                    .read()
                    .map(|s| s.iter().copied().collect())
                    .unwrap_or_default();
                copy.iter().map(|p| usize::from(p.0)).sum::<usize>()
            })
        });
        let pl_lock = parking_lot::RwLock::new(set.clone());
        g.bench_function("parking_lot_copy", |b| {
            b.iter(|| {
                let copy: Vec<(u16, u8)> = pl_lock.read().iter().copied().collect();
                copy.iter().map(|p| usize::from(p.0)).sum::<usize>()
            })
        });
        let swap = arc_swap::ArcSwap::from_pointee(set);
        g.bench_function("arc_swap_load_full", |b| {
            b.iter(|| {
                let snap = swap.load_full();
                snap.iter().map(|p| usize::from(p.0)).sum::<usize>()
            })
        });
        g.finish();
    }
}

fn publish(c: &mut Criterion) {
    let mut g = c.benchmark_group("publish");
    g.throughput(Throughput::Elements(1));
    let (_engine, publisher) = v6fw_benches::baseline::bench_writer();
    let mut i = 0u64;
    g.bench_function("v6fw_update", |b| {
        b.iter(|| {
            i += 1;
            let (port, open) = v6fw_benches::harness::writer_change(i);
            publisher.update(|p| {
                let pair = PortPair::new(port, Protocol::Tcp)?;
                Ok::<_, v6fw_engine::PolicyError>(if open {
                    p.open_global(pair, "w")
                } else {
                    p.close_global(pair)
                })
            })
        })
    });
    baselines(|base, ports| {
        let mut i = 0u64;
        g.bench_function(BenchmarkId::from_parameter(base), |b| {
            b.iter(|| {
                i += 1;
                let (port, open) = v6fw_benches::harness::writer_change(i);
                ports.toggle(port, open);
            })
        });
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = kinds, mixed, open_ports, publish, scale::scale
}
criterion_main!(benches);
