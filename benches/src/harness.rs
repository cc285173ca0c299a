//! The throughput harness behind the `throughput` binary: N reader threads
//! decide a pre-generated mixed batch for a while, optionally while a writer
//! changes ports at a fixed rate; and the RSS check over many publishes.
//!
//! Every reader thread has its own decider (a v6fw [`Worker`] or a baseline
//! flow table) and walks the same packets in batches of `batch` packets: v6fw
//! pins the epoch once per batch, the baselines lock per packet. Each thread
//! times itself, so per-thread rates are what that thread saw.
//!
//! [`Worker`]: v6fw_engine::Worker

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use v6fw_engine::{Engine, PortPair, Protocol, Publisher};

use crate::baseline::{BaselineDecider, BatchDecider, PortLookup, V6fwDecider};
use v6fw_testkit::packets::MixedBatch;

/// First port the writer toggles; it cycles over [`WRITER_PORTS`] ports from here.
pub const WRITER_BASE_PORT: u16 = 20_000;
/// How many distinct ports the writer toggles.
pub const WRITER_PORTS: u16 = 512;

/// One measurement's parameters.
#[derive(Debug, Clone, Copy)]
pub struct RunConfig {
    /// Reader threads.
    pub threads: usize,
    /// How long the readers run.
    pub duration: Duration,
    /// Port changes per second by the writer thread (0: no writer).
    pub writer_rate: u64,
    /// Packets per batch (one pin per batch for v6fw).
    pub batch: usize,
}

/// What one measurement saw.
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    /// Packets per second of each reader thread.
    pub per_thread: Vec<f64>,
    /// Changes the writer made.
    pub changes: u64,
    /// Accepted packets (summed; keeps the work observable).
    pub accepted: u64,
}

impl RunResult {
    /// Packets per second of all threads together.
    pub fn total(&self) -> f64 {
        self.per_thread.iter().sum()
    }

    /// Nanoseconds per packet of one thread, on average.
    pub fn ns_per_packet(&self) -> f64 {
        let n = self.per_thread.len().max(1) as f64;
        let avg = self.total() / n;
        if avg > 0.0 {
            1e9 / avg
        } else {
            f64::INFINITY
        }
    }
}

/// Runs `cfg.threads` readers, each with a decider from `make`, over `batch`
/// packets, while a writer calls `change(i)` for i = 0, 1, ... at `cfg.writer_rate`.
fn run<D, M, C>(cfg: &RunConfig, packets: &[Vec<u8>], make: M, change: C) -> RunResult
where
    D: BatchDecider,
    M: Fn() -> D + Sync,
    C: Fn(u64) + Sync,
{
    let stop = AtomicBool::new(false);
    let changes = AtomicU64::new(0);
    let batch = cfg.batch.clamp(1, packets.len().max(1));
    let chunks: Vec<&[Vec<u8>]> = packets.chunks(batch).collect();
    let mut result = RunResult::default();
    std::thread::scope(|s| {
        let readers: Vec<_> = (0..cfg.threads.max(1))
            .map(|_| {
                s.spawn(|| {
                    let mut d = make();
                    let start = Instant::now();
                    let (mut n, mut acc) = (0u64, 0u64);
                    while !stop.load(Ordering::Relaxed) {
                        for c in &chunks {
                            acc += d.decide_batch(std::hint::black_box(c)) as u64;
                            n += c.len() as u64;
                        }
                    }
                    (n as f64 / start.elapsed().as_secs_f64(), acc)
                })
            })
            .collect();
        let writer = (cfg.writer_rate > 0).then(|| {
            s.spawn(|| {
                let start = Instant::now();
                let mut done = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let due = (start.elapsed().as_secs_f64() * cfg.writer_rate as f64) as u64;
                    while done < due {
                        change(done);
                        done += 1;
                    }
                    std::thread::sleep(Duration::from_micros(500));
                }
                changes.store(done, Ordering::Relaxed);
            })
        });
        std::thread::sleep(cfg.duration);
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            if let Ok((rate, acc)) = r.join() {
                result.per_thread.push(rate);
                result.accepted += acc;
            }
        }
        if let Some(w) = writer {
            let _ = w.join();
        }
    });
    result.changes = changes.load(Ordering::Relaxed);
    result
}

/// The port change `i` of a writer: open on even `i`, close on odd, cycling
/// over [`WRITER_PORTS`] ports (never one the mixed batch uses).
pub fn writer_change(i: u64) -> (u16, bool) {
    let port = WRITER_BASE_PORT + u16::try_from((i / 2) % u64::from(WRITER_PORTS)).unwrap_or(0);
    (port, i.is_multiple_of(2))
}

/// v6fw on `engine`: readers decide `mixed`, the writer publishes changes
/// with its one `Publisher`.
pub fn run_v6fw(cfg: &RunConfig, writer: &(Engine, Publisher), mixed: &MixedBatch) -> RunResult {
    let (engine, publisher) = writer;
    run(
        cfg,
        &mixed.packets,
        || V6fwDecider::new(engine, &mixed.outbound),
        |i| {
            let (port, open) = writer_change(i);
            let _ = publisher.update(|p| {
                let pair = PortPair::new(port, Protocol::Tcp)?;
                Ok::<_, v6fw_engine::PolicyError>(if open {
                    p.open_global(pair, "writer")
                } else {
                    p.close_global(pair)
                })
            });
        },
    )
}

/// A baseline on `ports`: readers decide `mixed`, the writer opens and
/// closes pairs in the set.
pub fn run_baseline<P: PortLookup>(cfg: &RunConfig, ports: &P, mixed: &MixedBatch) -> RunResult {
    run(
        cfg,
        &mixed.packets,
        || BaselineDecider::new(ports, &mixed.outbound),
        |i| {
            let (port, open) = writer_change(i);
            if open {
                ports.open(port, 6);
            } else {
                ports.close(port, 6);
            }
        },
    )
}

/// Resident set size of this process in bytes, from `/proc/self/statm`
/// (resident pages × 4 KiB, the page size of x86_64 Linux); `None` elsewhere.
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// RSS samples taken while publishing: `(publishes so far, RSS bytes)`.
pub type RssSamples = Vec<(u64, u64)>;

/// Publishes `n` changes on `engine` (open/close toggles as in
/// [`writer_change`]) while one reader thread keeps deciding `mixed` batches
/// (so epochs advance and retired snapshots are reclaimed), sampling RSS
/// `samples` times. The first sample is taken after a warm-up of `n / 10`
/// publishes (at most 100,000), so the allocator's and the epoch garbage
/// queue's steady state is the reference, not their start-up.
pub fn publish_rss(
    writer: &(Engine, Publisher),
    mixed: &MixedBatch,
    n: u64,
    samples: u64,
) -> RssSamples {
    let (engine, publisher) = writer;
    let stop = AtomicBool::new(false);
    let mut out = Vec::new();
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut d = V6fwDecider::new(engine, &mixed.outbound);
            while !stop.load(Ordering::Relaxed) {
                std::hint::black_box(d.decide_batch(&mixed.packets));
            }
        });
        let publish = |i: u64| {
            let (port, open) = writer_change(i);
            let _ = publisher.update(|p| {
                let pair = PortPair::new(port, Protocol::Tcp)?;
                Ok::<_, v6fw_engine::PolicyError>(if open {
                    p.open_global(pair, "rss")
                } else {
                    p.close_global(pair)
                })
            });
        };
        let warm_up = (n / 10).min(100_000);
        for i in 0..warm_up {
            publish(i);
        }
        let every = (n / samples.max(1)).max(1);
        out.push((0, rss_bytes().unwrap_or(0)));
        for i in 0..n {
            publish(warm_up + i);
            if (i + 1) % every == 0 {
                out.push((i + 1, rss_bytes().unwrap_or(0)));
            }
        }
        stop.store(true, Ordering::Relaxed);
        let _ = reader.join();
    });
    out
}
