//! The hot path does not allocate (the developers' guide; DESIGN.md's hot
//! path): a counting global allocator shows that pinning a snapshot and
//! deciding packets of every kind — replies of tracked flows, new flows,
//! fragments, extension headers, ICMPv6, malformed packets, a flood that
//! fills and evicts the flow table and the fragment memory, and idle flows
//! expiring — asks the allocator for nothing once a worker exists.
//!
//! The allocator is `v6fw_testkit::alloc`'s, counting per thread.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::*;
use v6fw_engine::{Engine, PacketMeta, Reason, StateConfig};
use v6fw_testkit::alloc::{allocations_in, counts_an_allocation, Counting};
use v6fw_testkit::packets::{self, MixedBatch};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn the_counter_sees_an_allocation() {
    // Without this, a counter that never counts would pass the test below.
    assert!(counts_an_allocation());
}

#[test]
fn deciding_every_kind_of_packet_allocates_nothing() {
    let batch = MixedBatch::new(4_096, 7);
    let state = StateConfig {
        flow_capacity: 1_024,
        frag_capacity: 64,
        ..StateConfig::default()
    };
    let engine = Engine::with_state(test_policy(), state);
    let mut worker = engine.worker();
    // The flood: new flows and first fragments far beyond both tables' capacity.
    let flood: Vec<Vec<u8>> = (0..8_192u32)
        .map(|i| {
            let peer = u16::try_from(i % 4_000).unwrap() + 1;
            let port = 1_024 + u16::try_from(i % 60_000).unwrap();
            if i % 4 == 0 {
                packets::first_fragment(peer, 53, i)
            } else {
                packets::tcp_out(peer, port, 443)
            }
        })
        .collect();
    // The first pin registers this thread with the epoch collector (once).
    drop(engine.table().pin());

    let n = allocations_in(|| {
        for round in 0..3u64 {
            // Far enough apart that the previous round's idle flows expire.
            let now = round * 3_600 * SECOND;
            let snap = engine.table().pin();
            for p in &batch.outbound {
                worker.decide(&snap, p, &PacketMeta::outbound(ETH0, now));
            }
            for p in &batch.packets {
                worker.decide(&snap, p, &PacketMeta::inbound(ETH0, now + 1));
            }
            for p in &flood {
                worker.decide(&snap, p, &PacketMeta::outbound(ETH0, now + 2));
            }
            for p in &batch.packets {
                worker.decide(&snap, p, &PacketMeta::inbound(WLAN0, now + 3));
            }
        }
    });
    assert_eq!(n, 0, "the hot path allocated {n} times");
    // The decisions did take the paths named above.
    let totals = worker.totals();
    for reason in [
        Reason::Outbound,
        Reason::Established,
        Reason::OpenPort,
        Reason::GlobalPort,
        Reason::PortClosed,
        Reason::IcmpAllowed,
        Reason::Malformed,
        Reason::OrphanFragment,
    ] {
        assert!(totals.get(reason) > 0, "no {reason} decision: {totals:?}");
    }
    // The flood filled the flow table: new flows were refused a slot.
    assert!(totals.flows_not_recorded() > 0, "{totals:?}");
}
