//! `scale/publish/N` and `scale/lookup/N`: what the port table costs as the
//! host's interfaces grow (N = 1, 10, 100, 1,000 connections, as veth
//! interfaces of a container host: no own pairs, ignoring nothing), through
//! the engine's public API with one writer and no readers.
//! - `publish`: one published change (a global pair opened or closed).
//! - `lookup`: finding the connection of a packet's interface plus one bit
//!   test, cycling over all N interfaces.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use v6fw_engine::{Connection, Engine, Policy, PolicyError, PortPair, Protocol, StateConfig};

/// `n` connections `veth0..` on interfaces 2.., and two global pairs.
fn host(n: u32) -> Policy {
    let mut p = Policy::default();
    for port in [80, 443] {
        if let Ok(pair) = PortPair::new(port, Protocol::Tcp) {
            p.open_global(pair, "web");
        }
    }
    for i in 0..n {
        let _ = p.add_connection(Connection::new(format!("veth{i}"), "veth", 2 + i));
    }
    p
}

/// The `scale/publish/N` and `scale/lookup/N` groups.
pub fn scale(c: &mut Criterion) {
    let mut g = c.benchmark_group("scale");
    g.throughput(Throughput::Elements(1));
    for n in [1u32, 10, 100, 1000] {
        let (engine, publisher) = Engine::with_publisher(host(n), StateConfig::default());
        let mut i = 0u16;
        g.bench_function(BenchmarkId::new("publish", n), |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                publisher.update(|p| {
                    let pair = PortPair::new(1000 + i % 2, Protocol::Tcp)?;
                    Ok::<_, PolicyError>(if i % 4 < 2 {
                        p.open_global(pair, "w")
                    } else {
                        p.close_global(pair)
                    })
                })
            })
        });
        let pinned = engine.table().pin();
        let snap = pinned.snapshot();
        let mut k = 0u32;
        g.bench_function(BenchmarkId::new("lookup", n), |b| {
            b.iter(|| {
                k = if k + 1 >= n { 0 } else { k + 1 };
                let conn = snap.connection(black_box(2 + k));
                black_box(conn.global.contains(6, black_box(443)))
            })
        });
    }
    g.finish();
}
