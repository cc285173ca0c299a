//! `v6fw run`: the live firewall. Diverts IPv6 to this process (NFQUEUE on
//! Linux, WinDivert on Windows), decides every packet, hands verdicts back.
//!
//! The shape follows mini-redis: [`run`] checks rights, opens the durable
//! policy ([`FirewallManager::open`] on `--state-dir`), applies `--open` and
//! `--no-state` through it (persisted), starts the firewall log's writer and
//! the control socket (`--socket`), and calls [`serve`] with the manager and
//! a shutdown flag that all of them share:
//!
//! - the workers decide on the manager's engine, so a change made through
//!   the control socket (`v6fw ports open ...`) applies from the next batch;
//! - the connections are the host's interfaces (refreshed at start and every
//!   [`REFRESH_INTERVAL`]); the interface index of a packet selects its
//!   connection;
//! - each worker has a [`LogHook`](crate::log::LogHook) that reads the log
//!   switches from its batch's snapshot; one writer thread follows the
//!   policy's `logging` settings ([`crate::log::config_for`]).
//!
//! Shutdown: SIGINT/SIGTERM (Ctrl-C on Windows), a worker that fails or
//! panics, or a control socket that dies stops the daemon. The ip6tables
//! rules go first (so no packet is queued to a process that is leaving),
//! then the workers finish their batch and release their queues, then the
//! control socket and the log writer end, then the totals per reason are
//! printed.

mod backends;

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use std::path::PathBuf;

use anyhow::Context;
use v6fw_capture::backend::{Clock, DEFAULT_BATCH, MAX_BATCH};
use v6fw_capture::privilege;
use v6fw_capture::rules::QueueRange;
use v6fw_engine::{Engine, PortPair, Totals};

use crate::cmd::replay::{write_reason_table, write_verdict_counts, Summary};
use crate::control::DEFAULT_SOCKET;
use crate::fw::{FirewallManager, FwError};
use crate::log::{config_for, LogSender, LogStats, LogWriter, QUEUE_CAPACITY};
use backends::{describe, start, Live, Shared};

/// How often the daemon re-reads the host's interfaces.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// Arguments of `v6fw run`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Open these global pairs at start, e.g. `8080/tcp,5353/udp`; they are
    /// written to the policy and stay open until `v6fw ports close`.
    #[arg(long, value_delimiter = ',', value_name = "PORT/PROTO,...")]
    pub open: Vec<PortPair>,
    /// The state directory: policy.toml (the durable policy), and
    /// pfirewall.log unless `v6fw log set --path` says otherwise.
    #[arg(long, value_name = "DIR", default_value_os_t = crate::store::default_state_dir())]
    pub state_dir: PathBuf,
    /// The control socket `v6fw ports|log|stats ...` talk to.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// Members of this group may change the policy through the control
    /// socket too (besides root; Unix).
    #[arg(long, value_name = "NAME")]
    pub admin_group: Option<String>,
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
    /// Each start sets state tracking on or off by this flag (persisted).
    #[arg(long)]
    pub no_state: bool,
    /// Print the totals at exit as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Applies `--open` and `--no-state` to the durable policy.
pub fn apply_args(args: &Args, manager: &FirewallManager) -> Result<(), FwError> {
    for pair in &args.open {
        manager.open_global_port(pair.port(), pair.protocol(), "v6fw run --open")?;
    }
    manager.set_state_tracking(!args.no_state)?;
    Ok(())
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
    let manager = FirewallManager::open(&args.state_dir).with_context(|| {
        format!(
            "cannot open the policy in {} (choose another with --state-dir)",
            args.state_dir.display()
        )
    })?;
    apply_args(&args, &manager).context("cannot apply --open/--no-state to the policy")?;
    let shutdown = Arc::new(AtomicBool::new(false));
    let (sender, writer) = start_log(&manager).context("cannot start the firewall log writer")?;
    let control = match crate::control::serve_with(
        Arc::clone(&manager),
        &args.socket,
        Arc::clone(&shutdown),
        crate::control::ServeOptions {
            admin_group: args.admin_group.clone(),
            ..Default::default()
        },
    ) {
        Ok(handle) => Some(handle),
        Err(FwError::NotImpl(m)) => {
            tracing::warn!("no control socket: {m}");
            None
        }
        Err(e) => {
            drop(sender);
            let _ = writer.finish();
            return Err(anyhow::Error::new(e).context(format!(
                "cannot serve the control socket {} (choose another with --socket)",
                args.socket.display()
            )));
        }
    };
    let served = serve(&args, &manager, Some(&sender), Arc::clone(&shutdown));
    shutdown.store(true, Ordering::SeqCst);
    let mut errors = Vec::new();
    if let Some(handle) = control {
        if handle.join().is_err() {
            errors.push("the control socket thread panicked".to_string());
        }
    }
    drop(sender);
    let log = match writer.finish() {
        Ok(stats) => stats,
        Err(e) => {
            errors.push(format!("the firewall log writer failed: {e}"));
            manager.log_counters().stats()
        }
    };
    let outcome = served?;
    errors.extend(outcome.errors.iter().cloned());
    print_totals(&outcome.totals, &log, outcome.elapsed, args.json)
        .context("cannot write the totals")?;
    if errors.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for e in &errors {
        eprintln!("v6fw: {e}");
    }
    Ok(ExitCode::FAILURE)
}

/// Starts the log writer that follows `manager`'s policy.
fn start_log(manager: &Arc<FirewallManager>) -> std::io::Result<(LogSender, LogWriter)> {
    let m = Arc::clone(manager);
    let dir = manager.state_dir().map(PathBuf::from).unwrap_or_default();
    LogWriter::spawn_watching(
        QUEUE_CAPACITY,
        Arc::clone(manager.log_counters()),
        move || config_for(&m.policy().logging, &dir),
    )
}

/// Filters live until `shutdown` is set, a stop signal arrives or a worker
/// ends; then cleans up and returns the totals. The policy may be changed
/// (through `manager`, e.g. by the control socket) while this runs; with
/// `log`, every worker sends the decisions the policy wants logged there.
pub fn serve(
    args: &Args,
    manager: &Arc<FirewallManager>,
    log: Option<&LogSender>,
    shutdown: Arc<AtomicBool>,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let engine = Arc::clone(manager.engine());
    let shared = Shared {
        engine: &engine,
        shutdown: &shutdown,
        clock: Clock::start(),
        log,
    };
    let live = match start(args, &shared) {
        Ok(live) => live,
        Err(e) => {
            shutdown.store(true, Ordering::SeqCst); // let others (control socket) stop too
            return Err(e);
        }
    };
    let open: Vec<String> = manager
        .global_open_ports()
        .iter()
        .map(|p| format!("{}/{}", p.port(), p.protocol().name()))
        .collect();
    tracing::info!(
        "v6fw run: filtering IPv6 with {}; policy {}; control socket {}; global open ports: {}; state {}",
        describe(args),
        args.state_dir.display(),
        args.socket.display(),
        if open.is_empty() {
            "none".to_string()
        } else {
            open.join(", ")
        },
        if args.no_state { "off" } else { "on" },
    );

    let interval = Duration::from_secs(args.stats_interval);
    let mut next_stats = started + interval;
    let mut next_refresh = started + REFRESH_INTERVAL;
    let mut refresh_failed = false;
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
        let now = Instant::now();
        if args.stats_interval > 0 && now >= next_stats {
            log_stats(&engine.counters().totals(), &manager.log_counters().stats());
            next_stats += interval;
        }
        if now >= next_refresh {
            next_refresh = now + REFRESH_INTERVAL;
            match manager.refresh() {
                Ok(_) => refresh_failed = false,
                Err(e) if !refresh_failed => {
                    refresh_failed = true;
                    tracing::warn!("cannot refresh the connections from the interfaces: {e}");
                }
                Err(_) => {}
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(stop(live, &engine, &shutdown, started))
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

fn log_stats(t: &Totals, log: &LogStats) {
    let reasons: Vec<String> = t
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| format!("{}={n}", r.as_str()))
        .collect();
    tracing::info!(
        "stats: packets={} accepted={} dropped={} {} log_written={} log_lost={}",
        t.packets(),
        t.accepted(),
        t.dropped(),
        reasons.join(" "),
        log.written,
        log.lost
    );
}

/// Prints the totals per reason (as `v6fw replay` prints its summary),
/// and what the firewall log wrote and lost.
fn print_totals(t: &Totals, log: &LogStats, elapsed: Duration, json: bool) -> io::Result<()> {
    let mut out = io::stdout().lock();
    if json {
        let mut v = serde_json::to_value(Summary::new(t))?;
        if let Some(obj) = v.as_object_mut() {
            obj.insert(
                "log".into(),
                serde_json::json!({
                    "written": log.written,
                    "lost": log.lost,
                    "failed": log.failed,
                    "rotations": log.rotations,
                }),
            );
        }
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
        return out.flush();
    }
    writeln!(out, "ran       {:.1} s", elapsed.as_secs_f64())?;
    write_verdict_counts(&mut out, t)?;
    writeln!(
        out,
        "log       {} lines written, {} lost (queue full), {} not written",
        log.written, log.lost, log.failed
    )?;
    write_reason_table(&mut out, t)?;
    out.flush()
}
