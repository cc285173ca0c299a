//! Starting the OS's packet backends for `v6fw run`: NFQUEUE queues and
//! ip6tables rules on Linux, a WinDivert handle on Windows; one worker thread
//! each, with the firewall log's hook when logging is wired up.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::Context;
use v6fw_capture::backend::{run_worker_with, Backend, CaptureError, Clock, NoHook};
use v6fw_engine::Engine;

use super::Args;
use crate::log::{LogHook, LogSender};

/// The running backends: worker threads, and what must be undone.
pub(super) struct Live {
    pub(super) workers: Vec<JoinHandle<Result<u64, CaptureError>>>,
    #[cfg(target_os = "linux")]
    pub(super) rules: Option<v6fw_capture::rules::Installed>,
    #[cfg(windows)]
    pub(super) stoppers: Vec<v6fw_capture::windivert::Stopper>,
}

/// What every worker shares.
pub(super) struct Shared<'a> {
    pub(super) engine: &'a Arc<Engine>,
    pub(super) shutdown: &'a Arc<AtomicBool>,
    pub(super) clock: Clock,
    /// The firewall log's queue; each worker gets its own [`LogHook`].
    pub(super) log: Option<&'a LogSender>,
}

fn spawn<B>(
    mut backend: B,
    shared: &Shared<'_>,
) -> anyhow::Result<JoinHandle<Result<u64, CaptureError>>>
where
    B: Backend + Send + 'static,
{
    let engine = Arc::clone(shared.engine);
    let shutdown = Arc::clone(shared.shutdown);
    let clock = shared.clock;
    let mut hook = shared.log.cloned().map(LogHook::new);
    let name = backend.name().replace(' ', "-");
    std::thread::Builder::new()
        .name(format!("v6fw-{name}"))
        .spawn(move || {
            let r = match hook.as_mut() {
                Some(h) => run_worker_with(&mut backend, &engine, &clock, &shutdown, h),
                None => run_worker_with(&mut backend, &engine, &clock, &shutdown, &mut NoHook),
            };
            if let Err(e) = &r {
                tracing::error!("{}: {e}", backend.name());
            }
            r
        })
        .context("cannot start a worker thread")
}

#[cfg(target_os = "linux")]
pub(super) fn describe(args: &Args) -> String {
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
pub(super) fn start(args: &Args, shared: &Shared<'_>) -> anyhow::Result<Live> {
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
            accept_mark: 0,
        };
        queues.push(NfQueue::open(&config)?);
    }
    let rules = if args.no_rules {
        None
    } else {
        let rules = Rules {
            queues: args.queues,
            bypass: args.fail_open,
            accept_mark: 0,
        };
        Some(rules.install()?)
    };
    let mut live = Live {
        workers: Vec::new(),
        rules,
    };
    for q in queues {
        match spawn(q, shared) {
            Ok(w) => live.workers.push(w),
            Err(e) => {
                // Undo: rules first, then the workers already running.
                let _ = super::stop(
                    live,
                    shared.engine,
                    shared.shutdown,
                    std::time::Instant::now(),
                );
                return Err(e);
            }
        }
    }
    Ok(live)
}

#[cfg(windows)]
pub(super) fn describe(args: &Args) -> String {
    format!(
        "WinDivert (filter \"ipv6 and not loopback\", batch {}, queue length {})",
        args.batch, args.queue_len
    )
}

#[cfg(windows)]
pub(super) fn start(args: &Args, shared: &Shared<'_>) -> anyhow::Result<Live> {
    use v6fw_capture::windivert::{WinDivert, WinDivertConfig};

    let config = WinDivertConfig {
        batch: usize::from(args.batch),
        queue_len: args.queue_len,
        priority: 0,
    };
    let handle = WinDivert::open(&config, 0)?;
    let stoppers = vec![handle.stopper()];
    let worker = spawn(handle, shared)?;
    Ok(Live {
        workers: vec![worker],
        stoppers,
    })
}

#[cfg(not(any(target_os = "linux", windows)))]
pub(super) fn describe(_args: &Args) -> String {
    String::new()
}

#[cfg(not(any(target_os = "linux", windows)))]
pub(super) fn start(_: &Args, _: &Shared<'_>) -> anyhow::Result<Live> {
    anyhow::bail!("v6fw run works on Linux (NFQUEUE) and Windows (WinDivert) only")
}
