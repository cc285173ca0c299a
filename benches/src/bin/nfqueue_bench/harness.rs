//! The harness proper: the checks before it runs, the alternating rounds,
//! the table and the medians.

use std::fs;
use std::process::ExitCode;
use std::time::Instant;

use v6fw_testkit::netns::{require_live, sh};

use crate::bulk::{run_bulk, Bulk, BulkMeasured};
use crate::cli::Args;
use crate::common::{install_signal_handlers, PORT};
use crate::lab::Lab;
use crate::rounds::{run_case, Case, Measured, Setup};

/// Explains why the harness cannot run; a success in --quick mode (so a
/// non-root CI passes) unless V6FW_REQUIRE_LIVE says otherwise.
fn cannot_run(quick: bool, why: &str) -> ExitCode {
    eprintln!("nfqueue_bench: cannot run: {why}");
    if quick && !require_live() {
        eprintln!("nfqueue_bench: --quick: nothing measured, exiting 0");
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn first_line_with(path: &str, key: &str) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    Some(line.split_once(':')?.1.trim().to_string())
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn print_machine() {
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = first_line_with("/proc/cpuinfo", "model name").unwrap_or_else(|| "?".into());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    println!("machine: nproc {nproc}; CPU {cpu}; kernel {kernel}");
    println!("load average (1/5/15 min) at start: {}", loadavg());
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match (v.get(n / 2), n.checked_sub(1).and_then(|m| v.get(m / 2))) {
        (Some(a), Some(b)) if n.is_multiple_of(2) => (a + b) / 2.0,
        (Some(a), _) => *a,
        _ => 0.0,
    }
}

fn mpps(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else {
        format!("{:.1} k", x / 1e3)
    }
}

fn opt(x: Option<u64>) -> String {
    x.map_or_else(|| "?".into(), |v| v.to_string())
}

pub(crate) fn harness(args: &Args) -> ExitCode {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return cannot_run(
            args.quick,
            "not root (network namespaces, ip6tables and NFQUEUE need it); \
             run it with sudo",
        );
    }
    for (cmd, arg) in [("ip", "-V"), ("ip6tables", "-V")] {
        if sh(&[cmd, arg]).is_err() {
            return cannot_run(
                args.quick,
                &format!("`{cmd}` is not usable (apt-get install iproute2 iptables)"),
            );
        }
    }
    let me = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return cannot_run(args.quick, &format!("cannot find this binary: {e}")),
    };
    let v6fw = args
        .v6fw
        .clone()
        .unwrap_or_else(|| me.with_file_name("v6fw"));
    if !v6fw.is_file() {
        eprintln!(
            "nfqueue_bench: no v6fw binary at {} (build it: cargo build --release -p v6fw-api \
             --bin v6fw, or pass --v6fw PATH)",
            v6fw.display()
        );
        return ExitCode::FAILURE;
    }
    install_signal_handlers();
    let setup = Setup {
        me,
        v6fw,
        seconds: if args.quick {
            args.seconds.min(2.0)
        } else {
            args.seconds
        }
        .clamp(0.2, 600.0),
        payload: args.payload,
        consumer_cpu: None,
        sender_cpu: None,
    };
    let mut setup = setup;
    let nproc = std::thread::available_parallelism().map_or(1, |n| n.get());
    if args.pin {
        if nproc < 2 || sh(&["taskset", "-V"]).is_err() {
            eprintln!("nfqueue_bench: --pin needs 2 CPUs and taskset (util-linux)");
            return ExitCode::FAILURE;
        }
        setup.consumer_cpu = Some(0);
        setup.sender_cpu = Some(nproc - 1);
    }
    let rounds = if args.quick {
        1
    } else {
        args.rounds.clamp(1, 100)
    };
    let started = Instant::now();
    let mut lab = match Lab::new() {
        Ok(lab) => lab,
        Err(why) => return cannot_run(args.quick, &format!("cannot build the namespaces: {why}")),
    };
    if let Err(why) = lab.net.nfqueue_target_works() {
        drop(lab);
        return cannot_run(
            args.quick,
            &format!("the ip6tables NFQUEUE target does not work: {why}"),
        );
    }
    if let Err(why) = lab.add_peer_addresses(Case::MULTI_FLOWS) {
        return cannot_run(
            args.quick,
            &format!("cannot add the flows' addresses: {why}"),
        );
    }
    print_machine();
    println!(
        "namespaces {} (fd00::1, filtered) and {} (fd00::2, sender); UDP flood of {}-byte \
         datagrams to [fd00::1]:{PORT} on one flow (its hello answered first, so conntrack tracks \
         it as ESTABLISHED), {:.1} s per case, {rounds} round(s) of C, D, A, B, E, then F, G ({} flows from {} \
         source addresses) and the bulk TCP cases to port {}",
        lab.net.fw,
        lab.net.peer,
        setup.payload,
        setup.seconds,
        Case::MULTI_FLOWS,
        Case::MULTI_FLOWS,
        crate::common::TCP_PORT
    );
    println!("v6fw: {}", setup.v6fw.display());
    println!();
    println!(
        "{:<5} {:<12} {:>7} {:>9} {:>9} {:>11} {:>8} {:>9} {:>8} {:>9} {:>10} {:>8} {:>10} {:>10} {:>10}",
        "round",
        "case",
        "seconds",
        "sent/s",
        "decided/s",
        "delivered/s",
        "of C",
        "cons. CPU",
        "/CPU-s",
        "/flood-s",
        "decided",
        "refused",
        "kernel-acc",
        "full drops",
        "sock drops"
    );
    let mut results: Vec<Measured> = Vec::new();
    let mut bulk: Vec<BulkMeasured> = Vec::new();
    for round in 1..=rounds {
        let mut ceiling = None;
        for case in Case::ALL.into_iter().chain(Case::MULTI) {
            match run_case(&mut lab, &setup, case, round) {
                Ok(m) => {
                    let del = m.rate(m.delivered);
                    if case == Case::Ceiling {
                        ceiling = Some(del);
                    }
                    println!(
                        "{:<5} {:<12} {:>7.2} {:>9} {:>9} {:>11} {:>8} {:>9} {:>8} {:>9} {:>10} {:>8} {:>10} {:>10} {:>10}",
                        round,
                        case.label(),
                        m.seconds,
                        mpps(m.rate(m.sent)),
                        mpps(m.rate(m.decided)),
                        mpps(del),
                        ceiling.map_or_else(|| "?".into(), |c| format!("{:.2}", del / c.max(1e-9))),
                        m.cpu_percent()
                            .map_or_else(|| "-".into(), |c| format!("{c:.0} %")),
                        // E's consumer decides a handful of packets.
                        m.per_cpu()
                            .filter(|_| case != Case::Offload)
                            .map_or_else(|| "-".into(), mpps),
                        mpps(m.per_flood_cpu()),
                        m.decided,
                        m.decided.saturating_sub(m.accepted),
                        opt(m.kernel_accepted),
                        opt(m.queue_dropped),
                        opt(m.user_dropped),
                    );
                    results.push(m);
                }
                Err(e) => {
                    eprintln!("nfqueue_bench: round {round}, {}: {e}", case.label());
                    return ExitCode::FAILURE;
                }
            }
        }
        for case in Bulk::ALL {
            match run_bulk(&mut lab, &setup, case, round) {
                Ok(m) => bulk.push(m),
                Err(e) => {
                    eprintln!("nfqueue_bench: round {round}, {}: {e}", case.label());
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    println!();
    println!(
        "{:<12} {:>7} {:>9} {:>11} {:>9} {:>10} {:>10} {:>10}",
        "bulk TCP",
        "seconds",
        "Gbit/s",
        "CPU-s/GB",
        "v6fw CPU",
        "decided",
        "kernel-acc",
        "of no rule"
    );
    for (i, m) in bulk.iter().enumerate() {
        let ceiling = bulk
            .get(i - i % Bulk::ALL.len())
            .map_or(0.0, BulkMeasured::gbps);
        println!(
            "{:<12} {:>7.2} {:>9.2} {:>11.2} {:>9} {:>10} {:>10} {:>10.2}",
            m.case.label(),
            m.seconds,
            m.gbps(),
            m.cpu_per_gb(),
            m.consumer_cpu
                .map_or_else(|| "-".into(), |c| format!("{c:.2} s")),
            opt(m.decided),
            opt(m.kernel_accepted),
            m.gbps() / ceiling.max(1e-9),
        );
    }
    println!();
    let med = |case: Case, f: &dyn Fn(&Measured) -> Option<f64>| -> f64 {
        median(
            results
                .iter()
                .filter(|m| m.case == case)
                .filter_map(f)
                .collect(),
        )
    };
    let delivered = |case| med(case, &|m| Some(m.rate(m.delivered)));
    let decided = |case| med(case, &|m| Some(m.rate(m.decided)));
    let cons_cpu = |case| med(case, &Measured::per_cpu);
    let flood_cpu = |case| med(case, &|m| Some(m.per_flood_cpu()));
    let ratio = |a: f64, b: f64| a / b.max(1e-9);
    println!("median over {rounds} round(s):");
    for case in Case::ALL.into_iter().chain(Case::MULTI) {
        println!(
            "  {:<12} delivered/s {:>9} ({:.2} of C), decided/s {:>9}, decided per consumer CPU-s {:>9}, delivered per flood CPU-s {:>9}",
            case.label(),
            mpps(delivered(case)),
            ratio(delivered(case), delivered(Case::Ceiling)),
            mpps(decided(case)),
            match case {
                Case::Ceiling | Case::Kernel | Case::Offload => "-".to_string(),
                _ => mpps(cons_cpu(case)),
            },
            mpps(flood_cpu(case)),
        );
    }
    println!(
        "A/B decided/s {:.2}x; A/D delivered per flood CPU-s {:.2}x",
        ratio(decided(Case::V6fw), decided(Case::Naive)),
        ratio(flood_cpu(Case::V6fw), flood_cpu(Case::Kernel)),
    );
    println!(
        "multi-queue ({} flows): G/F delivered/s {:.2}x, decided/s {:.2}x",
        Case::MULTI_FLOWS,
        ratio(delivered(Case::TwoQueues), delivered(Case::OneQueue)),
        ratio(decided(Case::TwoQueues), decided(Case::OneQueue)),
    );
    let bulk_med = |case: Bulk, f: fn(&BulkMeasured) -> f64| {
        median(bulk.iter().filter(|m| m.case == case).map(f).collect())
    };
    for case in [Bulk::V6fw, Bulk::Offload] {
        println!(
            "bulk {}: {:.2} of no rule in Gbit/s; CPU-s per GB {:.2} (no rule {:.2})",
            case.label(),
            ratio(
                bulk_med(case, BulkMeasured::gbps),
                bulk_med(Bulk::Ceiling, BulkMeasured::gbps)
            ),
            bulk_med(case, BulkMeasured::cpu_per_gb),
            bulk_med(Bulk::Ceiling, BulkMeasured::cpu_per_gb),
        );
    }
    println!("load average (1/5/15 min) at end: {}", loadavg());
    drop(lab);
    println!(
        "done in {:.1} s (namespaces removed)",
        started.elapsed().as_secs_f64()
    );
    println!(
        "ratio v6fw/ceiling: {:.2}",
        ratio(delivered(Case::V6fw), delivered(Case::Ceiling))
    );
    println!(
        "ratio v6fw/naive: {:.2}",
        ratio(cons_cpu(Case::V6fw), cons_cpu(Case::Naive))
    );
    println!(
        "ratio kernel/ceiling: {:.2}",
        ratio(delivered(Case::Kernel), delivered(Case::Ceiling))
    );
    println!(
        "ratio offload/ceiling: {:.2}",
        ratio(delivered(Case::Offload), delivered(Case::Ceiling))
    );
    ExitCode::SUCCESS
}
