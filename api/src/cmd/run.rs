//! `v6fw run`: the live firewall. Diverts IPv6 to this process (NFQUEUE on
//! Linux, WinDivert on Windows), decides every packet, hands verdicts back.
//!
//! The shape follows mini-redis: [`run`] parses nothing and owns nothing it
//! does not have to — it checks rights, builds the engine, installs the stop
//! handler and calls [`serve`] with an `Arc<Engine>` and a shutdown flag.
//! To run on the persistent store with the control socket, `run` becomes
//! (the signatures below are those of `crate::fw` and `crate::control`):
//!
//! ```text
//! let manager = crate::fw::FirewallManager::open(&args.state_dir)?;
//! let engine = Arc::clone(manager.engine());
//! let control = crate::control::server::serve(
//!     Arc::clone(&manager), &args.socket, Arc::clone(&shutdown))?;
//! let outcome = serve(&args, engine, Arc::clone(&shutdown))?; // sets `shutdown` when done
//! let _ = control.join();
//! ```
//!
//! (`--open` would then be written to the store, or dropped in favour of
//! `v6fw ports open`.)
//!
//! Shutdown: SIGINT/SIGTERM (Ctrl-C on Windows) or a worker that fails or
//! panics stops the daemon. The ip6tables rules go first (so no packet is
//! queued to a process that is leaving), then the workers finish their
//! batch and release their queues, then the totals per reason are printed.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use v6fw_capture::backend::{CaptureError, Clock, DEFAULT_BATCH, MAX_BATCH};
use v6fw_capture::privilege;
use v6fw_capture::rules::QueueRange;
use v6fw_engine::{Engine, Policy, PortPair, Totals};

use crate::cmd::replay::Summary;

/// Arguments of `v6fw run`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Pairs open on every interface (global pairs), e.g. `8080/tcp,5353/udp`.
    #[arg(long, value_delimiter = ',', value_name = "PORT/PROTO,...")]
    pub open: Vec<PortPair>,
    /// NFQUEUE numbers, one worker thread each: `0`, or a range `0-3` spread
    /// with --queue-balance (Linux; Windows uses one WinDivert handle).
    #[arg(long, default_value = "0", value_name = "N|A-B")]
    pub queues: QueueRange,
    /// Bytes of each packet handed to v6fw (Linux): must cover the IPv6
    /// header chain and the TCP/UDP header; longer chains are judged on
    /// what was copied.
    #[arg(long, default_value_t = 256, value_name = "BYTES",
          value_parser = clap::value_parser!(u16).range(64..))]
    pub copy_range: u16,
    /// Packets the kernel holds per queue while v6fw is busy; more are
    /// dropped (accepted with --fail-open).
    #[arg(long, default_value_t = 4096, value_name = "PACKETS")]
    pub queue_len: u32,
    /// Accept packets the queue cannot take (full, or no v6fw bound to it)
    /// instead of dropping them. The default fails closed.
    #[arg(long)]
    pub fail_open: bool,
    /// Install no ip6tables rules: you send traffic to the queues yourself
    /// (Linux; see docs/live.md for the rules v6fw would install).
    #[arg(long)]
    pub no_rules: bool,
    /// Log the counters every N seconds (0: never).
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub stats_interval: u64,
    /// Packets received and answered per system call.
    #[arg(long, default_value_t = DEFAULT_BATCH as u16, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=MAX_BATCH as i64))]
    pub batch: u16,
    /// Track no outbound flows (replies are then let in only to open ports).
    #[arg(long)]
    pub no_state: bool,
    /// Print the totals at exit as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The policy `--open` and `--no-state` describe.
pub fn policy_from(args: &Args) -> Policy {
    let mut policy = Policy::default();
    for pair in &args.open {
        policy.open_global(*pair, "v6fw run --open");
    }
    policy.state &= !args.no_state;
    policy
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .try_init();
}

/// Runs `v6fw run` until SIGINT/SIGTERM.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_tracing();
    privilege::check()?;
    privilege::install_stop_handler().context("cannot install the SIGINT/SIGTERM handler")?;
    let engine = Arc::new(Engine::new(policy_from(&args)));
    let shutdown = Arc::new(AtomicBool::new(false));
    let outcome = serve(&args, Arc::clone(&engine), shutdown)?;
    print_totals(&outcome.totals, outcome.elapsed, args.json).context("cannot write the totals")?;
    if outcome.errors.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for e in &outcome.errors {
        eprintln!("v6fw: {e}");
    }
    Ok(ExitCode::FAILURE)
}

/// How a [`serve`] ended.
#[derive(Debug)]
pub struct Outcome {
    /// Counts per reason over the whole run.
    pub totals: Totals,
    /// How long it ran.
    pub elapsed: Duration,
    /// What went wrong (a failed worker, rules that could not be removed).
    pub errors: Vec<String>,
}

/// The running backends: worker threads, and what must be undone.
struct Live {
    workers: Vec<JoinHandle<Result<u64, CaptureError>>>,
    #[cfg(target_os = "linux")]
    rules: Option<v6fw_capture::rules::Installed>,
    #[cfg(windows)]
    stoppers: Vec<v6fw_capture::windivert::Stopper>,
}

/// Filters live until `shutdown` is set, a stop signal arrives or a worker
/// ends; then cleans up and returns the totals. `engine` may be changed
/// (ports opened and closed) by others while this runs.
pub fn serve(
    args: &Args,
    engine: Arc<Engine>,
    shutdown: Arc<AtomicBool>,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let clock = Clock::start();
    let live = match start(args, &engine, &shutdown, clock) {
        Ok(live) => live,
        Err(e) => {
            shutdown.store(true, Ordering::SeqCst); // let others (control socket) stop too
            return Err(e);
        }
    };
    let open: Vec<String> = args.open.iter().map(ToString::to_string).collect();
    tracing::info!(
        "v6fw run: filtering IPv6 with {}; global open ports: {}; state {}",
        describe(args),
        if open.is_empty() {
            "none".to_string()
        } else {
            open.join(", ")
        },
        if args.no_state { "off" } else { "on" },
    );

    let interval = Duration::from_secs(args.stats_interval);
    let mut next_stats = started + interval;
    loop {
        if privilege::stop_requested() {
            tracing::info!("v6fw run: stop requested, removing rules and draining queues");
            break;
        }
        if shutdown.load(Ordering::SeqCst) {
            tracing::info!("v6fw run: shutdown requested");
            break;
        }
        if live.workers.iter().any(JoinHandle::is_finished) {
            tracing::warn!("v6fw run: a worker stopped; shutting down");
            break;
        }
        if args.stats_interval > 0 && Instant::now() >= next_stats {
            log_stats(&engine.counters().totals());
            next_stats += interval;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(stop(live, &engine, &shutdown, started))
}

/// Removes the rules, stops and joins the workers, sums up.
fn stop(live: Live, engine: &Engine, shutdown: &AtomicBool, started: Instant) -> Outcome {
    let mut errors = Vec::new();
    #[cfg(target_os = "linux")]
    if let Some(rules) = live.rules {
        for e in rules.remove() {
            errors.push(format!(
                "{e}\nremove the rules by hand: ip6tables -D INPUT -j V6FW-IN; \
                 ip6tables -D OUTPUT -j V6FW-OUT; ip6tables -F V6FW-IN; ip6tables -X V6FW-IN; \
                 ip6tables -F V6FW-OUT; ip6tables -X V6FW-OUT"
            ));
        }
    }
    shutdown.store(true, Ordering::SeqCst);
    #[cfg(windows)]
    for s in &live.stoppers {
        s.stop();
    }
    for w in live.workers {
        match w.join() {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => errors.push(e.to_string()),
            Err(_) => errors.push("a worker thread panicked".to_string()),
        }
    }
    let totals = engine.counters().totals();
    tracing::info!("v6fw run: stopped; {} packets decided", totals.packets());
    Outcome {
        totals,
        elapsed: started.elapsed(),
        errors,
    }
}

fn spawn<B>(
    mut backend: B,
    engine: &Arc<Engine>,
    shutdown: &Arc<AtomicBool>,
    clock: Clock,
) -> anyhow::Result<JoinHandle<Result<u64, CaptureError>>>
where
    B: v6fw_capture::backend::Backend + Send + 'static,
{
    let engine = Arc::clone(engine);
    let shutdown = Arc::clone(shutdown);
    let name = backend.name().replace(' ', "-");
    std::thread::Builder::new()
        .name(format!("v6fw-{name}"))
        .spawn(move || {
            let r = v6fw_capture::backend::run_worker(&mut backend, &engine, &clock, &shutdown);
            if let Err(e) = &r {
                tracing::error!("{}: {e}", backend.name());
            }
            r
        })
        .context("cannot start a worker thread")
}

#[cfg(target_os = "linux")]
fn describe(args: &Args) -> String {
    format!(
        "NFQUEUE {} (copy range {} B, queue length {}, fail-{}), {}",
        args.queues,
        args.copy_range,
        args.queue_len,
        if args.fail_open { "open" } else { "closed" },
        if args.no_rules {
            "no rules installed (--no-rules)"
        } else {
            "ip6tables chains V6FW-IN/V6FW-OUT installed"
        }
    )
}

#[cfg(target_os = "linux")]
fn start(
    args: &Args,
    engine: &Arc<Engine>,
    shutdown: &Arc<AtomicBool>,
    clock: Clock,
) -> anyhow::Result<Live> {
    use v6fw_capture::nfqueue::{NfQueue, QueueConfig};
    use v6fw_capture::rules::Rules;

    // Bind every queue before any rule sends packets to it.
    let mut queues = Vec::with_capacity(args.queues.len());
    for queue in args.queues.iter() {
        let config = QueueConfig {
            queue,
            copy_range: args.copy_range,
            queue_len: args.queue_len,
            fail_open: args.fail_open,
            batch: usize::from(args.batch),
        };
        queues.push(NfQueue::open(&config)?);
    }
    let rules = if args.no_rules {
        None
    } else {
        let rules = Rules {
            queues: args.queues,
            bypass: args.fail_open,
        };
        Some(rules.install()?)
    };
    let mut live = Live {
        workers: Vec::new(),
        rules,
    };
    for q in queues {
        match spawn(q, engine, shutdown, clock) {
            Ok(w) => live.workers.push(w),
            Err(e) => {
                // Undo: rules first, then the workers already running.
                let _ = stop(live, engine, shutdown, Instant::now());
                return Err(e);
            }
        }
    }
    Ok(live)
}

#[cfg(windows)]
fn describe(args: &Args) -> String {
    format!(
        "WinDivert (filter \"ipv6 and not loopback\", batch {}, queue length {})",
        args.batch, args.queue_len
    )
}

#[cfg(windows)]
fn start(
    args: &Args,
    engine: &Arc<Engine>,
    shutdown: &Arc<AtomicBool>,
    clock: Clock,
) -> anyhow::Result<Live> {
    use v6fw_capture::windivert::{WinDivert, WinDivertConfig};

    let config = WinDivertConfig {
        batch: usize::from(args.batch),
        queue_len: args.queue_len,
        priority: 0,
    };
    let handle = WinDivert::open(&config, 0)?;
    let stoppers = vec![handle.stopper()];
    let worker = spawn(handle, engine, shutdown, clock)?;
    Ok(Live {
        workers: vec![worker],
        stoppers,
    })
}

#[cfg(not(any(target_os = "linux", windows)))]
fn describe(_args: &Args) -> String {
    String::new()
}

#[cfg(not(any(target_os = "linux", windows)))]
fn start(_: &Args, _: &Arc<Engine>, _: &Arc<AtomicBool>, _: Clock) -> anyhow::Result<Live> {
    anyhow::bail!("v6fw run works on Linux (NFQUEUE) and Windows (WinDivert) only")
}

fn log_stats(t: &Totals) {
    let reasons: Vec<String> = t
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| format!("{}={n}", r.as_str()))
        .collect();
    tracing::info!(
        "stats: packets={} accepted={} dropped={} {}",
        t.packets(),
        t.accepted(),
        t.dropped(),
        reasons.join(" ")
    );
}

/// Prints the totals per reason (as `v6fw replay` prints its summary).
fn print_totals(t: &Totals, elapsed: Duration, json: bool) -> io::Result<()> {
    let mut out = io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &Summary::new(t))?;
        writeln!(out)?;
        return out.flush();
    }
    writeln!(out, "ran       {:.1} s", elapsed.as_secs_f64())?;
    writeln!(out, "packets   {}", t.packets())?;
    writeln!(out, "accepted  {}", t.accepted())?;
    writeln!(out, "dropped   {}", t.dropped())?;
    writeln!(out)?;
    writeln!(out, "{:<22}{:<8}{:>8}", "reason", "verdict", "count")?;
    for (reason, n) in t.iter() {
        writeln!(
            out,
            "{:<22}{:<8}{:>8}",
            reason.as_str(),
            reason.verdict().as_str(),
            n
        )?;
    }
    out.flush()
}
