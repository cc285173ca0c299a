//! The throughput harness: packets per second of v6fw and of the
//! etherparse + lock baseline, in the same run, on the same packets.
//!
//! ```text
//! cargo run --release -p v6fw-benches --bin throughput -- --threads 2 --seconds 5 --writer-rate 10000
//! cargo run --release -p v6fw-benches --bin throughput -- --publishes 10000000
//! cargo run --release -p v6fw-benches --bin throughput -- --quick
//! cargo run --release -p v6fw-benches --bin throughput -- --sweep docs/throughput.csv
//! ```
//! No figure is asserted: the harness reports, docs/benchmarks.md judges.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use v6fw_benches::baseline::{
    baseline_pairs, bench_writer, ArcSwapPorts, ParkingLotPorts, StdRwLockPorts,
};
use v6fw_benches::harness::{publish_rss, run_baseline, run_v6fw, RunConfig, RunResult};
use v6fw_testkit::packets::MixedBatch;

/// Which baseline to race v6fw against.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Baseline {
    /// etherparse + a HashSet behind std::sync::RwLock.
    Std,
    /// etherparse + a HashSet behind parking_lot::RwLock.
    ParkingLot,
    /// etherparse + a HashSet behind arc_swap::ArcSwap.
    ArcSwap,
}

/// Decide a pre-generated mixed batch on N threads, for v6fw and a baseline.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Reader threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Port changes per second made by a writer thread while readers run (0: none).
    #[arg(long, default_value_t = 0)]
    writer_rate: u64,
    /// Packets per batch (v6fw pins once per batch).
    #[arg(long, default_value_t = 1024)]
    batch: usize,
    /// Distinct packets in the mixed batch.
    #[arg(long, default_value_t = 1024)]
    packets: usize,
    /// The baseline.
    #[arg(long, value_enum, default_value_t = Baseline::Std)]
    baseline: Baseline,
    /// Instead: publish this many changes and print RSS before and after.
    #[arg(long)]
    publishes: Option<u64>,
    /// Instead: a short run of every mode (at most ~10 s), to prove it works.
    #[arg(long)]
    quick: bool,
    /// With --writer-rate: measure v6fw with and without the writer this many
    /// times, alternating, and report each cost and the median.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Instead: sweep batch size and writer rate, writing CSV to this file.
    #[arg(long)]
    sweep: Option<PathBuf>,
}

fn print_run(name: &str, r: &RunResult) {
    for (i, pps) in r.per_thread.iter().enumerate() {
        println!("{name:<10} thread {i}: {:>14.0} packets/s", pps);
    }
    println!(
        "{name:<10} total:    {:>14.0} packets/s  ({:.2} ns/packet per thread; writer made {} changes)",
        r.total(),
        r.ns_per_packet(),
        r.changes
    );
}

fn baseline_run(which: Baseline, cfg: &RunConfig, mixed: &MixedBatch) -> RunResult {
    match which {
        Baseline::Std => run_baseline(cfg, &StdRwLockPorts::new(baseline_pairs()), mixed),
        Baseline::ParkingLot => run_baseline(cfg, &ParkingLotPorts::new(baseline_pairs()), mixed),
        Baseline::ArcSwap => run_baseline(cfg, &ArcSwapPorts::new(baseline_pairs()), mixed),
    }
}

/// v6fw and the baseline with the same configuration; prints both and the ratio.
fn race(which: Baseline, cfg: &RunConfig, mixed: &MixedBatch) -> (RunResult, RunResult) {
    println!(
        "-- {} threads, {:.1} s, batch {}, writer {} changes/s, baseline {which:?}",
        cfg.threads,
        cfg.duration.as_secs_f64(),
        cfg.batch,
        cfg.writer_rate
    );
    let v6 = run_v6fw(cfg, &bench_writer(), mixed);
    print_run("v6fw", &v6);
    let base = baseline_run(which, cfg, mixed);
    print_run("baseline", &base);
    println!(
        "ratio v6fw/baseline: {:.2}x",
        v6.total() / base.total().max(1.0)
    );
    (v6, base)
}

fn publishes(n: u64, mixed: &MixedBatch) {
    let writer = bench_writer();
    let start = Instant::now();
    let samples = publish_rss(&writer, mixed, n, 10);
    let secs = start.elapsed().as_secs_f64();
    for (done, rss) in &samples {
        println!("after {done:>10} publishes: RSS {:>8} KiB", rss / 1024);
    }
    if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
        let delta = i128::from(last.1) - i128::from(first.1);
        println!(
            "RSS before {} KiB, after {} KiB, change {} KiB over {n} publishes ({:.2} us/publish with a reader running)",
            first.1 / 1024,
            last.1 / 1024,
            delta / 1024,
            secs * 1e6 / n.max(1) as f64
        );
    }
}

fn sweep(args: &Args, path: &PathBuf, mixed: &MixedBatch) -> std::io::Result<()> {
    let mut csv = String::from("series,x,v6fw_pps,baseline_pps\n");
    let base_cfg = RunConfig {
        threads: args.threads,
        duration: Duration::from_secs_f64(args.seconds),
        writer_rate: 0,
        batch: args.batch,
    };
    for batch in [1usize, 4, 16, 64, 256, 1024] {
        let cfg = RunConfig { batch, ..base_cfg };
        let (v6, base) = race(args.baseline, &cfg, mixed);
        csv.push_str(&format!(
            "batch,{batch},{:.0},{:.0}\n",
            v6.total(),
            base.total()
        ));
    }
    for rate in [0u64, 100, 1_000, 10_000, 100_000] {
        let cfg = RunConfig {
            writer_rate: rate,
            ..base_cfg
        };
        let (v6, base) = race(args.baseline, &cfg, mixed);
        csv.push_str(&format!(
            "writer_rate,{rate},{:.0},{:.0}\n",
            v6.total(),
            base.total()
        ));
    }
    std::fs::write(path, csv)?;
    println!("wrote {}", path.display());
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mixed = MixedBatch::new(args.packets.max(1), 1);
    println!(
        "mixed batch: {} packets, {} bytes; {} outbound packets record flows first",
        mixed.packets.len(),
        mixed.bytes(),
        mixed.outbound.len()
    );
    if args.quick {
        let start = Instant::now();
        let cfg = RunConfig {
            threads: args.threads,
            duration: Duration::from_millis(1_000),
            writer_rate: 0,
            batch: args.batch,
        };
        race(args.baseline, &cfg, &mixed);
        let with_writer = RunConfig {
            writer_rate: 10_000,
            ..cfg
        };
        let v6 = run_v6fw(&with_writer, &bench_writer(), &mixed);
        print_run("v6fw+w10k", &v6);
        publishes(100_000, &mixed);
        println!("quick run took {:.1} s", start.elapsed().as_secs_f64());
        return ExitCode::SUCCESS;
    }
    if let Some(n) = args.publishes {
        publishes(n, &mixed);
        return ExitCode::SUCCESS;
    }
    if let Some(path) = &args.sweep {
        return match sweep(&args, path, &mixed) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: writing {}: {e}", path.display());
                ExitCode::FAILURE
            }
        };
    }
    let cfg = RunConfig {
        threads: args.threads,
        duration: Duration::from_secs_f64(args.seconds),
        writer_rate: args.writer_rate,
        batch: args.batch,
    };
    let (v6, _) = race(args.baseline, &cfg, &mixed);
    if args.writer_rate > 0 {
        let mut costs = Vec::new();
        for round in 0..args.repeat.max(1) {
            let busy = if round == 0 {
                v6.clone()
            } else {
                run_v6fw(&cfg, &bench_writer(), &mixed)
            };
            let idle = run_v6fw(
                &RunConfig {
                    writer_rate: 0,
                    ..cfg
                },
                &bench_writer(),
                &mixed,
            );
            let cost = 100.0 * (1.0 - busy.total() / idle.total().max(1.0));
            println!(
                "round {round}: v6fw {:.0} packets/s with the writer, {:.0} without: cost {cost:.1} %",
                busy.total(),
                idle.total()
            );
            costs.push(cost);
        }
        costs.sort_by(f64::total_cmp);
        let median = costs.get(costs.len() / 2).copied().unwrap_or(0.0);
        println!(
            "writer at {} changes/s costs v6fw readers {median:.1} % (median of {})",
            args.writer_rate,
            costs.len()
        );
    }
    ExitCode::SUCCESS
}
