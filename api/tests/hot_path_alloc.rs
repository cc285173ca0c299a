//! The daemon's packet loop does not allocate (the developers' guide: "the
//! hot path does not allocate"; `DecisionHook::decided`'s contract): the
//! capture crate's `run_loop_with`, as each worker runs it, with the firewall
//! log's hook on for dropped packets and new connections, receives, decides,
//! logs and answers batches of every kind of packet without asking the
//! allocator for anything. The engine's own decision is checked the same way
//! in engine/tests/hot_path_alloc.rs.
//!
//! The allocator is `v6fw_testkit::alloc`'s, counting per thread: the log
//! writer's thread (which formats lines) does not count.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use v6fw_api::fw::{FirewallManager, LogChange};
use v6fw_api::log::{LogConfig, LogHook, LogWriter};
use v6fw_capture::backend::{run_loop_with, Backend, CaptureError, Clock, Packet};
use v6fw_engine::{Connection, Direction, Policy, PortPair, Protocol, Verdict};
use v6fw_testkit::alloc::{allocations_in, counts_an_allocation, Counting};
use v6fw_testkit::packets::MixedBatch;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The connection's interface index.
const IF_INDEX: u32 = 3;
/// Packets per received batch.
const BATCH: usize = 64;

/// Batches from packets in memory, in order and round again; sets `stop`
/// once it has given `batches` batches.
struct Replayed<'a> {
    packets: Vec<(Vec<u8>, Direction)>,
    next: usize,
    current: std::ops::Range<usize>,
    batches: usize,
    stop: &'a AtomicBool,
    answered: u64,
}

impl Backend for Replayed<'_> {
    fn recv_batch(&mut self, _: Duration) -> Result<usize, CaptureError> {
        if self.batches == 0 {
            self.stop.store(true, Ordering::Relaxed);
            return Ok(0);
        }
        self.batches -= 1;
        if self.next >= self.packets.len() {
            self.next = 0;
        }
        let end = (self.next + BATCH).min(self.packets.len());
        self.current = self.next..end;
        self.next = end;
        Ok(end - self.current.start)
    }

    fn packet(&self, i: usize) -> Option<Packet<'_>> {
        let (bytes, direction) = self.packets.get(self.current.start + i)?;
        Some(Packet {
            bytes,
            direction: *direction,
            if_index: IF_INDEX,
            truncated: false,
        })
    }

    fn send_verdicts(&mut self, verdicts: &[Verdict]) -> Result<(), CaptureError> {
        self.answered += verdicts.len() as u64;
        Ok(())
    }

    fn name(&self) -> &str {
        "replayed"
    }
}

fn policy() -> Policy {
    let pair = |port, proto| PortPair::new(port, proto).unwrap();
    let mut p = Policy::default();
    p.open_global(pair(80, Protocol::Tcp), "http");
    p.open_global(pair(443, Protocol::Tcp), "https");
    let mut c = Connection::new("eth0", "Ethernet", IF_INDEX);
    c.open_port(pair(22, Protocol::Tcp), "ssh");
    c.open_port(pair(53, Protocol::Udp), "dns");
    p.add_connection(c).unwrap();
    p
}

#[test]
fn the_counter_sees_an_allocation() {
    // Without this, a counter that never counts would pass the test below.
    assert!(counts_an_allocation());
}

#[test]
fn the_packet_loop_with_logging_on_allocates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = FirewallManager::in_memory(policy());
    let on = LogChange {
        dropped: Some(true),
        connections: Some(true),
        ..LogChange::default()
    };
    assert!(mgr.set_log_settings(&on).unwrap());
    let config = LogConfig {
        path: dir.path().join("pfirewall.log"),
        max_size: 1 << 30,
        utc_offset_s: 0,
    };
    let (tx, writer) = LogWriter::spawn(config, 1 << 16).unwrap();
    let mut hook = LogHook::new(tx, Arc::clone(mgr.shared_log_settings()));
    let engine = mgr.engine();
    let mut worker = engine.worker();
    let clock = Clock::start();

    // The mixed batch's outbound packets first (their replies are in it).
    let mixed = MixedBatch::new(4_096, 11);
    let packets: Vec<(Vec<u8>, Direction)> = (mixed.outbound.iter())
        .map(|p| (p.clone(), Direction::Outbound))
        .chain(
            mixed
                .packets
                .iter()
                .map(|p| (p.clone(), Direction::Inbound)),
        )
        .collect();
    let total = packets.len();
    let stop = AtomicBool::new(false);
    let mut backend = Replayed {
        packets,
        next: 0,
        current: 0..0,
        batches: 4,
        stop: &stop,
        answered: 0,
    };
    // One short run first: the loop's one-time set-up (this thread's epoch
    // registration) is not the per-packet path.
    run_loop_with(&mut backend, engine, &mut worker, &clock, &stop, &mut hook).unwrap();

    // Every packet twice over, in batches of 64.
    stop.store(false, Ordering::Relaxed);
    backend.batches = 2 * total.div_ceil(BATCH);
    let mut decided = 0;
    let n = allocations_in(|| {
        decided =
            run_loop_with(&mut backend, engine, &mut worker, &clock, &stop, &mut hook).unwrap();
    });
    assert_eq!(n, 0, "the packet loop allocated {n} times");
    assert!(
        decided >= 2 * total as u64 - BATCH as u64,
        "{decided} of {total}"
    );
    assert_eq!(backend.answered, decided + 4 * BATCH as u64);

    // The hook did log: the writer got records (dropped packets and new
    // connections).
    drop(hook);
    let stats = writer.finish().unwrap();
    assert!(stats.written > 1_000, "{stats:?}");
}
