//! `v6fw run`: the live firewall. Diverts IPv6 to this process (NFQUEUE on
//! Linux, WinDivert on Windows), decides every packet, hands verdicts back.
//!
//! The shape follows mini-redis: [`run`] claims the network namespace (one
//! daemon each, `instance` on Linux), checks rights, opens the durable policy
//! ([`FirewallManager::open`] on `--state-dir`), applies `--open` and
//! `--no-state` through it (persisted), starts the firewall log's writer and
//! the control socket (`--socket`), and calls [`serve`] with the manager and
//! a shutdown flag that all of them share:
//!
//! - before its rules go in, the host's open sessions are read from the
//!   kernel and adopted as flows in every worker, so a session open before
//!   the start (or a restart) is not cut;
//! - the workers decide on the manager's engine, so a change made through
//!   the control socket (`v6fw ports open ...`) or a SIGHUP reload of
//!   `policy.toml` applies from the next batch;
//! - the connections are the host's interfaces (refreshed at start and every
//!   [`REFRESH_INTERVAL`]); the interface index of a packet selects its
//!   connection;
//! - each worker has a [`v6fw_api::log::LogHook`] that reads the log
//!   switches from the manager's log settings once per batch; one writer
//!   thread follows the same settings ([`v6fw_api::log::config_for`]).
//!
//! The failure model (docs/live.md has the table): SIGINT/SIGTERM stop
//! cleanly (rules first, so no packet is queued to a process that is
//! leaving, then the workers, the control socket, the log writer, the
//! totals); SIGHUP reloads; a worker that fails or panics is restarted
//! ([`supervise()`]); past the restart budget the daemon exits with code
//! [`FAULT_EXIT`] and leaves its rules in place, so fail-closed never
//! leaves the host unfiltered; a control socket that dies is started again.

mod adopt;
mod backends;
mod control;
#[cfg(unix)]
mod descriptors;
#[cfg(target_os = "linux")]
mod instance;
mod kernel;
pub mod logging;
pub mod metrics;
mod notify;
pub mod offload;
mod signals;
mod supervise;
mod totals;

use std::io;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use v6fw_capture::backend::{Clock, DEFAULT_BATCH, MAX_BATCH};
use v6fw_capture::privilege;
use v6fw_capture::rules::QueueRange;
use v6fw_engine::{PortPair, Totals};

use backends::{describe, start, Live, Shared};
use control::Control;
use kernel::KernelDrops;
use notify::Notifier;
use offload::{Offload, OffloadCounter};
use supervise::{Budget, Health, MAX_RESTARTS, RESTART_WINDOW};
use totals::{log_stats, print_totals, report};
use v6fw_api::control::DEFAULT_SOCKET;
use v6fw_api::fw::{FirewallManager, FwError};
use v6fw_api::log::{config_for, LogHook, LogSender, LogWriter, QUEUE_CAPACITY};

/// How often the daemon re-reads the host's interfaces.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// How often the kernel's queue drops are read.
pub const KERNEL_DROPS_INTERVAL: Duration = Duration::from_secs(1);

/// The least time between two warnings that the kernel dropped packets.
pub const KERNEL_DROPS_WARN_INTERVAL: Duration = Duration::from_secs(10);

/// The exit code of a daemon that stopped on an internal fault and left its
/// rules in place.
pub const FAULT_EXIT: u8 = 3;

/// The longest kernel queue `--queue-len` may ask for.
pub const MAX_QUEUE_LEN: u32 = 1 << 20;

/// The longest `--stats-interval`: a day.
pub const MAX_STATS_INTERVAL: u64 = 86_400;

/// Arguments of `v6fw run`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Open these global pairs at start, e.g. `8080/tcp,5353/udp`; they are
    /// written to the policy and stay open until `v6fw ports close`.
    #[arg(long, value_delimiter = ',', value_name = "PORT/PROTO,...")]
    pub open: Vec<PortPair>,
    /// The state directory: policy.toml (the durable policy) and its lock.
    /// The firewall log (unless `v6fw log set --path`) is
    /// /var/log/v6fw/pfirewall.log with the default, DIR/pfirewall.log with
    /// another DIR.
    #[arg(long, value_name = "DIR", default_value_os_t = v6fw_api::store::default_state_dir())]
    pub state_dir: PathBuf,
    /// The control socket `v6fw ports|log|stats ...` talk to.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// Members of this group may change the policy through the control
    /// socket too (besides root; Unix): processes holding it (Linux:
    /// SO_PEERGROUPS). They may set the log only to a new file, or one v6fw
    /// wrote, in the log directory.
    #[arg(long, value_name = "NAME")]
    pub admin_group: Option<String>,
    /// NFQUEUE numbers, one worker thread each: `0`, or a range `0-3` spread
    /// with --queue-balance (Linux; Windows uses one WinDivert handle).
    #[arg(long, default_value = "0", value_name = "N|A-B")]
    pub queues: QueueRange,
    /// Bytes of each packet handed to v6fw (Linux, 64-65535): must cover the
    /// IPv6 header chain and the TCP/UDP header; longer chains are judged on
    /// what was copied.
    #[arg(long, default_value_t = 256, value_name = "BYTES",
          value_parser = clap::value_parser!(u16).range(64..))]
    pub copy_range: u16,
    /// Packets the kernel holds per queue while v6fw is busy (1-1048576);
    /// more are dropped (accepted with --fail-open).
    #[arg(long, default_value_t = 4096, value_name = "PACKETS",
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_QUEUE_LEN)))]
    pub queue_len: u32,
    /// Drop what the queue cannot take (full, or no v6fw bound to it): the
    /// default.
    #[arg(long, conflicts_with = "fail_open")]
    pub fail_closed: bool,
    /// Accept packets the queue cannot take (full, or no v6fw bound to it)
    /// instead of dropping them: the kernel's --queue-bypass and
    /// NFQA_CFG_F_FAIL_OPEN.
    #[arg(long)]
    pub fail_open: bool,
    /// Install no ip6tables rules: you send traffic to the queues yourself
    /// (Linux; see docs/live.md for the rules v6fw would install).
    #[arg(long)]
    pub no_rules: bool,
    /// Answer accepted packets NF_REPEAT with this mark bit (0-31) set,
    /// instead of NF_ACCEPT, so the table that queued them runs again and
    /// the rules after the NFQUEUE rule see them (v6fw's chains RETURN on
    /// the bit). Default none: NF_ACCEPT, which goes on to the next table
    /// (filter). For --no-rules with an NFQUEUE rule in the middle of a
    /// chain (docs/live.md).
    #[arg(long, value_name = "BIT", value_parser = clap::value_parser!(u8).range(0..=31))]
    pub mark_bit: Option<u8>,
    /// Log the counters every N seconds (0: never; at most 86400).
    #[arg(long, default_value_t = 10, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(0..=MAX_STATS_INTERVAL))]
    pub stats_interval: u64,
    /// Packets received and answered per system call (1-255).
    #[arg(long, default_value_t = DEFAULT_BATCH as u16, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=MAX_BATCH as i64))]
    pub batch: u16,
    /// Track no outbound flows (replies are then let in only to open ports):
    /// sets `state = false` in the policy (persisted). Without it the
    /// policy's `state` decides.
    #[arg(long)]
    pub no_state: bool,
    /// Print the totals at exit as JSON.
    #[arg(long)]
    pub json: bool,
    /// `established`: the kernel accepts the packets of TCP and UDP flows
    /// conntrack already tracks as ESTABLISHED before the queue, so v6fw
    /// decides only each flow's first packets; counted as kernel-accepted.
    /// Default off; not with --no-state (Linux; docs/live.md says what is
    /// then no longer checked).
    #[arg(long, value_name = "WHAT", conflicts_with = "no_rules")]
    pub offload: Option<Offload>,
    /// Serve Prometheus/OpenMetrics counters at http://ADDR/metrics; without
    /// ADDR on [::1]:9640 (loopback). A non-loopback address is served, with
    /// a warning, only when given.
    #[allow(rustdoc::broken_intra_doc_links)] // clap help: `[::1]` is an address
    #[arg(long, value_name = "ADDR", num_args = 0..=1,
          default_missing_value = metrics::DEFAULT_ADDR, value_parser = metrics::parse_addr)]
    pub metrics: Option<SocketAddr>,
    /// More log lines: -v debug, -vv trace (over RUST_LOG; under systemd
    /// they go to the journal).
    #[arg(short, long, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Fewer log lines: -q warnings and errors, -qq errors only (over RUST_LOG).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub quiet: u8,
}

/// Applies `--open` and `--no-state` to the durable policy (written only
/// if they change it). Without `--no-state` the policy file's `state`
/// decides: a start never undoes an admin's `state = false`.
pub fn apply_args(args: &Args, manager: &FirewallManager) -> Result<(), FwError> {
    for pair in &args.open {
        manager.open_global_port(pair.port(), pair.protocol(), "v6fw run --open")?;
    }
    if args.no_state {
        manager.set_state_tracking(false)?;
    }
    Ok(())
}

/// Refuses combinations of options that would not do what they say, before
/// anything (the policy's `state` included) is changed.
pub fn check_args(args: &Args) -> anyhow::Result<()> {
    if args.offload.is_some() && args.no_state {
        anyhow::bail!(
            "--offload established cannot go with --no-state: without state the policy lets \
             replies in only to open ports, but the kernel would accept every reply of a flow \
             conntrack tracks; leave out one of them"
        );
    }
    Ok(())
}

/// Refuses `--offload` over a policy whose state tracking is off (`state =
/// false` in the policy file): the kernel would let in the replies the
/// policy drops, as with `--no-state`.
pub fn check_offload_state(args: &Args, manager: &FirewallManager) -> anyhow::Result<()> {
    if args.offload.is_some() && !manager.policy().state.enabled {
        anyhow::bail!(
            "--offload established needs state tracking, and the policy has it off (`state` in \
             policy.toml): without state the policy lets replies in only to open ports, but the \
             kernel would accept every reply of a flow conntrack tracks; turn state on or leave \
             out --offload"
        );
    }
    Ok(())
}

/// Runs `v6fw run` until SIGINT/SIGTERM (or an internal fault).
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    signals::install().context("cannot install the SIGHUP/SIGPIPE handlers")?;
    privilege::install_stop_handler().context("cannot install the SIGINT/SIGTERM handler")?;
    logging::init(args.verbose, args.quiet);
    check_args(&args)?;
    privilege::check()?;
    #[cfg(unix)]
    descriptors::raise_soft_limit();
    #[cfg(target_os = "linux")]
    let _instance = instance::claim(&instance::Holder {
        pid: std::process::id(),
        socket: args.socket.display().to_string(),
        queues: args.queues.to_string(),
    })?;
    v6fw_api::store::check_moved(&args.state_dir)?;
    let manager = FirewallManager::open(&args.state_dir).with_context(|| {
        format!(
            "cannot open the policy in {} (choose another with --state-dir)",
            args.state_dir.display()
        )
    })?;
    apply_args(&args, &manager).context("cannot apply --open/--no-state to the policy")?;
    check_offload_state(&args, &manager)?;
    let shutdown = Arc::new(AtomicBool::new(false));
    let (sender, writer) = start_log(&manager).context("cannot start the firewall log writer")?;
    let options = v6fw_api::control::ServeOptions {
        admin_group: args.admin_group.clone(),
        ..Default::default()
    };
    let mut control = match Control::start(&manager, &args.socket, options, &shutdown) {
        Ok(c) => c,
        Err(e) => {
            drop(sender);
            let _ = writer.finish();
            return Err(anyhow::Error::new(e).context(format!(
                "cannot serve the control socket {} (choose another with --socket)",
                args.socket.display()
            )));
        }
    };
    if let Err(e) = v6fw_api::store::record_socket(&args.state_dir, &args.socket) {
        tracing::warn!("v6fw run: clients given --state-dir will not find this daemon: {e}");
    }
    let sources = metrics::Sources::new(&manager);
    let endpoint = match args.metrics.map(|a| metrics::start(a, &sources, &shutdown)) {
        Some(Err(e)) => {
            shutdown.store(true, Ordering::SeqCst);
            let _ = control.join();
            drop(sender);
            let _ = writer.finish();
            return Err(e);
        }
        Some(Ok(m)) => Some(m),
        None => None,
    };
    let served = serve(
        &args,
        &manager,
        Some(&sender),
        &shutdown,
        &mut control,
        &sources,
    );
    shutdown.store(true, Ordering::SeqCst);
    if let Some(m) = endpoint {
        m.stop();
    }
    let mut errors = Vec::new();
    errors.extend(control.join());
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
    if let Err(e) = print_totals(&mut io::stdout().lock(), &outcome, &log, args.json) {
        // A reader that went away (`| tee` stopped by the same Ctrl-C) or
        // a closed stdout: the run itself went fine.
        tracing::warn!("cannot print the totals: {e}");
    }
    for e in &errors {
        report(e);
    }
    if outcome.fault {
        return Ok(ExitCode::from(FAULT_EXIT));
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Starts the log writer that follows `manager`'s log settings.
fn start_log(manager: &Arc<FirewallManager>) -> std::io::Result<(LogSender, LogWriter)> {
    let m = Arc::clone(manager);
    let dir = manager.state_dir().map(PathBuf::from).unwrap_or_default();
    v6fw_api::log::create_default_dir(&dir)?;
    LogWriter::spawn_watching(
        QUEUE_CAPACITY,
        Arc::clone(manager.log_counters()),
        move || config_for(&m.shared_log_settings().get(), &dir),
    )
}

/// Reloads `policy.toml` (SIGHUP): read, parse and validate it, then publish
/// it in one swap (and re-read the interfaces). A file that is missing or
/// does not parse is refused with its error, and the running policy stays.
pub fn reload(manager: &FirewallManager) -> Result<(), FwError> {
    manager.reload().map(|_| ())
}

/// Filters live until `shutdown` is set, a stop signal arrives or a fault
/// cannot be repaired; then cleans up (or, on a fault, leaves the rules in
/// place) and returns the totals. The policy may be changed (through
/// `manager`, e.g. by the control socket, or by SIGHUP) while this runs;
/// with `log`, every worker sends the decisions the policy wants logged
/// there.
fn serve(
    args: &Args,
    manager: &Arc<FirewallManager>,
    log: Option<&LogSender>,
    shutdown: &Arc<AtomicBool>,
    control: &mut Control,
    sources: &metrics::Sources,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let flows = adopt::open_sessions(manager.engine().state().flow_capacity);
    let shared = Shared {
        engine: Arc::clone(manager.engine()),
        shutdown: Arc::clone(shutdown),
        clock: Clock::start(),
        log: log.map(|tx| LogHook::new(tx.clone(), Arc::clone(manager.shared_log_settings()))),
        workers: Arc::clone(&sources.workers),
    };
    let mut live = match start(args, &shared, &flows) {
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
        if manager.policy().state.enabled {
            "on"
        } else {
            "off"
        },
    );
    let notifier = Notifier::from_env();
    if let Err(e) = notifier.notify("READY=1") {
        tracing::warn!("cannot tell systemd we are ready (NOTIFY_SOCKET): {e}");
    }
    let mut kernel = KernelDrops::new(args.queues.first, args.queues.last);
    let mut offload = OffloadCounter::new(args.offload.is_some());
    let end = catch_unwind(AssertUnwindSafe(|| {
        let counters = (&mut kernel, &mut offload);
        supervise(
            args, manager, &mut live, control, &notifier, counters, sources,
        )
    }))
    .unwrap_or_else(|_| End::Fault("the daemon's supervising loop panicked".into()));
    let _ = notifier.notify("STOPPING=1");
    kernel.read();
    offload.read(); // before the rules (and their counters) go
    let (errors, fault) = match end {
        End::Stop => (stop(live, shutdown), false),
        End::Fault(why) => (fault(live, shutdown, &why, args.fail_open), true),
    };
    let totals = manager.engine().counters().totals();
    tracing::info!("v6fw run: stopped; {} packets decided", totals.packets());
    Ok(Outcome {
        totals,
        elapsed: started.elapsed(),
        errors,
        fault,
        kernel,
        offload,
    })
}

/// Why the supervising loop ended.
enum End {
    /// A stop was asked for (signal, shutdown flag).
    Stop,
    /// A fault that could not be repaired.
    Fault(String),
}

/// The daemon's main loop: signals, worker health, control socket, kernel
/// drops, periodic stats, interface refresh, watchdog.
fn supervise(
    args: &Args,
    manager: &Arc<FirewallManager>,
    live: &mut Live,
    control: &mut Control,
    notifier: &Notifier,
    (kernel, offload): (&mut KernelDrops, &mut OffloadCounter),
    sources: &metrics::Sources,
) -> End {
    let engine = manager.engine();
    let started = Instant::now();
    let interval = Duration::from_secs(args.stats_interval);
    let watchdog = notifier.watchdog_interval();
    let mut next_stats = started + interval;
    let mut next_refresh = started + REFRESH_INTERVAL;
    let mut next_kernel = started;
    let mut next_watchdog = started;
    let mut warned_at: Option<Instant> = None;
    let mut refresh_failed = false;
    let mut budget = Budget::new(MAX_RESTARTS, RESTART_WINDOW);
    loop {
        if privilege::stop_requested() {
            tracing::info!("v6fw run: stop requested, removing rules and draining queues");
            return End::Stop;
        }
        if control.shutdown.load(Ordering::SeqCst) {
            tracing::info!("v6fw run: shutdown requested");
            return End::Stop;
        }
        if signals::take_reload() {
            let path = manager.store().map(|s| s.path().display().to_string());
            match reload(manager) {
                Ok(()) => tracing::info!(
                    "v6fw run: SIGHUP: policy reloaded from {}",
                    path.unwrap_or_default()
                ),
                Err(e) => tracing::error!("v6fw run: SIGHUP: the running policy stays: {e}"),
            }
        }
        for slot in &mut live.slots {
            match slot.check(&mut budget) {
                Ok(Health::Running) => {}
                Ok(Health::Restarted(why)) => tracing::warn!(
                    "v6fw run: {}: {why}; restarted it (restart {})",
                    slot.name,
                    slot.restarts
                ),
                Err(why) => return End::Fault(why),
            }
        }
        control.check();
        let now = Instant::now();
        if now >= next_kernel {
            next_kernel = now + KERNEL_DROPS_INTERVAL;
            kernel.read();
            sources.publish_kernel(kernel.per_queue());
            if warned_at.is_none_or(|t| now.duration_since(t) >= KERNEL_DROPS_WARN_INTERVAL) {
                if let Some(n) = kernel.new_since_warned() {
                    warned_at = Some(now);
                    let d = kernel.sum();
                    tracing::warn!(
                        "the kernel dropped {n} more packets before v6fw saw them (total: {} \
                         queue full, {} socket full): raise --queue-len, add --queues, or \
                         see docs/live.md",
                        d.queue_dropped,
                        d.user_dropped
                    );
                }
            }
        }
        if args.stats_interval > 0 && now >= next_stats {
            offload.read();
            sources.publish_offload(offload.enabled().then(|| offload.last()));
            log_stats(
                &engine.counters().totals(),
                &manager.log_counters().stats(),
                kernel,
                offload,
            );
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
        if let Some(every) = watchdog.filter(|_| now >= next_watchdog) {
            next_watchdog = now + every;
            let _ = notifier.notify("WATCHDOG=1");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How a [`serve`] ended.
#[derive(Debug)]
struct Outcome {
    /// Counts per reason over the whole run.
    totals: Totals,
    /// How long it ran.
    elapsed: Duration,
    /// What went wrong (a failed worker, rules that could not be removed).
    errors: Vec<String>,
    /// It stopped on a fault and left its rules in place.
    fault: bool,
    /// What the kernel dropped before v6fw saw it.
    kernel: KernelDrops,
    /// What the kernel accepted for v6fw (`--offload`).
    offload: OffloadCounter,
}

/// A clean stop: removes the rules, stops and joins the workers.
fn stop(live: Live, shutdown: &AtomicBool) -> Vec<String> {
    let mut errors = Vec::new();
    #[cfg(target_os = "linux")]
    if let Some(rules) = live.rules {
        let failed = rules.remove();
        if !failed.is_empty() {
            // One report: each distinct failure once, then the commands.
            let mut lines: Vec<String> = failed.iter().map(ToString::to_string).collect();
            lines.dedup();
            errors.push(format!(
                "cannot remove v6fw's ip6tables rules ({} failed step(s)):\n{}\n{}",
                failed.len(),
                lines.join("\n"),
                v6fw_capture::rules::MANUAL_REMOVAL
            ));
        }
    }
    shutdown.store(true, Ordering::SeqCst);
    #[cfg(windows)]
    for s in &live.stoppers {
        s.stop();
    }
    for slot in live.slots {
        if let Err(e) = slot.join() {
            errors.push(e);
        }
    }
    errors
}

/// A stop on a fault: the rules stay (the next start removes them), so a
/// fail-closed host drops IPv6 rather than pass it unfiltered until the
/// service manager starts v6fw again; the workers are joined.
fn fault(live: Live, shutdown: &AtomicBool, why: &str, fail_open: bool) -> Vec<String> {
    let traffic = if fail_open {
        "--fail-open: the kernel accepts IPv6 (queue bypass)"
    } else {
        "fail-closed: IPv6 is dropped"
    };
    tracing::error!(
        "v6fw run: {why}\nexiting with code {FAULT_EXIT} and the rules in place ({traffic} until \
         v6fw run starts again, which removes them first; under systemd that is automatic)"
    );
    #[cfg(target_os = "linux")]
    if let Some(rules) = live.rules {
        rules.keep();
    }
    shutdown.store(true, Ordering::SeqCst);
    #[cfg(windows)]
    for s in &live.stoppers {
        s.stop();
    }
    let mut errors = vec![why.to_string()];
    for slot in live.slots {
        if let Err(e) = slot.join() {
            errors.push(e);
        }
    }
    errors
}

#[cfg(test)]
mod tests;
