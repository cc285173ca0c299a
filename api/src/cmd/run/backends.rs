//! Starting the OS's packet backends for `v6fw run`: NFQUEUE queues and
//! ip6tables rules on Linux, a WinDivert handle on Windows; one worker thread
//! each (a [`Slot`] that can start it again), with the firewall log's hook
//! when logging is wired up and the host's open sessions adopted as flows.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;
use v6fw_capture::backend::{run_worker_prepared, Backend, Clock, NoHook};
use v6fw_engine::{Engine, Worker};

use super::adopt::Flow;
use super::metrics::WorkerBlocks;
use super::supervise::{Slot, WorkerHandle};
use super::Args;
use v6fw_api::log::LogHook;

/// The running backends: worker slots, and what must be undone.
pub(super) struct Live {
    pub(super) slots: Vec<Slot>,
    #[cfg(target_os = "linux")]
    pub(super) rules: Option<v6fw_capture::rules::Installed>,
    #[cfg(windows)]
    pub(super) stoppers: Vec<v6fw_capture::windivert::Stopper>,
}

/// What every worker shares (cloned into each worker thread).
#[cfg_attr(not(any(target_os = "linux", windows)), allow(dead_code))] // no backend there
#[derive(Clone)]
pub(super) struct Shared {
    pub(super) engine: Arc<Engine>,
    pub(super) shutdown: Arc<AtomicBool>,
    pub(super) clock: Clock,
    /// The firewall log's hook (its queue and the settings it follows);
    /// each worker gets its own copy.
    pub(super) log: Option<LogHook>,
    /// Where each new worker leaves its counter block for `--metrics`.
    pub(super) workers: Arc<WorkerBlocks>,
}

/// Records `flows` in a new worker.
#[cfg_attr(not(any(target_os = "linux", windows)), allow(dead_code))] // no backend there
fn adopt(worker: &mut Worker, flows: &[Flow], now: u64) {
    for (proto, local, remote) in flows {
        worker.adopt_flow(*proto, *local, *remote, now);
    }
}

/// Runs `backend` (of `queue`, if it has one) in a new worker thread that
/// first adopts `flows` and leaves its counter block in `shared.workers`.
#[cfg_attr(not(any(target_os = "linux", windows)), allow(dead_code))] // no backend there
pub(super) fn spawn<B>(
    mut backend: B,
    queue: Option<u16>,
    shared: &Shared,
    flows: Vec<Flow>,
) -> anyhow::Result<WorkerHandle>
where
    B: Backend + Send + 'static,
{
    let s = shared.clone();
    let name = backend.name().replace(' ', "-");
    std::thread::Builder::new()
        .name(format!("v6fw-{name}"))
        .spawn(move || {
            let mut hook = s.log;
            let workers = &s.workers;
            let prepare = |w: &mut Worker, now| {
                workers.add(&name, queue, Arc::clone(w.counters()));
                adopt(w, &flows, now);
            };
            let (e, c, d) = (&s.engine, &s.clock, &s.shutdown);
            let r = match hook.as_mut() {
                Some(h) => run_worker_prepared(&mut backend, e, c, d, h, prepare),
                None => run_worker_prepared(&mut backend, e, c, d, &mut NoHook, prepare),
            };
            if let Err(e) = &r {
                tracing::error!("{}: {e}", backend.name());
            }
            r
        })
        .context("cannot start a worker thread")
}

/// The mark bit of an accept, if any: `--mark-bit` (NF_REPEAT with it set;
/// v6fw's own rules then get the RETURN rule that goes with it). None by
/// default: accepts are NF_ACCEPT.
#[cfg(target_os = "linux")]
pub(super) fn accept_mark(args: &Args) -> u32 {
    args.mark_bit.map_or(0, |bit| 1u32 << bit)
}

#[cfg(target_os = "linux")]
pub(super) fn describe(args: &Args) -> String {
    let mark = accept_mark(args);
    format!(
        "NFQUEUE {} (copy range {} B, queue length {}, fail-{}, accept {}), {}",
        args.queues,
        args.copy_range,
        args.queue_len,
        if args.fail_open { "open" } else { "closed" },
        if mark == 0 {
            "NF_ACCEPT".to_string()
        } else {
            format!("NF_REPEAT with mark {mark:#x}")
        },
        if args.no_rules {
            "no rules installed (--no-rules)"
        } else if args.offload.is_some() {
            "ip6tables chains V6FW-IN/V6FW-OUT installed in mangle, offload established: the \
             kernel accepts the packets of TCP and UDP flows conntrack tracks as ESTABLISHED"
        } else {
            "ip6tables chains V6FW-IN/V6FW-OUT installed in mangle"
        }
    )
}

#[cfg(target_os = "linux")]
pub(super) fn start(args: &Args, shared: &Shared, flows: &[Flow]) -> anyhow::Result<Live> {
    use v6fw_capture::nfqueue::{NfQueue, QueueConfig};
    use v6fw_capture::rules::Rules;

    let config = |queue| QueueConfig {
        queue,
        copy_range: args.copy_range,
        queue_len: args.queue_len,
        fail_open: args.fail_open,
        batch: usize::from(args.batch),
        accept_mark: accept_mark(args),
    };
    // Bind every queue before any rule sends packets to it.
    let mut queues = Vec::with_capacity(args.queues.len());
    for queue in args.queues.iter() {
        queues.push(NfQueue::open(&config(queue))?);
    }
    let rules = if args.no_rules {
        None
    } else {
        let rules = Rules {
            queues: args.queues,
            bypass: args.fail_open,
            accept_mark: accept_mark(args),
            offload: args.offload.is_some(),
        };
        Some(rules.install()?)
    };
    let mut live = Live {
        slots: Vec::new(),
        rules,
    };
    for (q, queue) in args.queues.iter().zip(queues) {
        let mut first = Some(queue);
        let (s, flows, cfg) = (shared.clone(), flows.to_vec(), config(q));
        // The first start uses the queue bound above; a restart binds it
        // again and adopts the sessions open now.
        let starter = Box::new(move || match first.take() {
            Some(queue) => spawn(queue, Some(q), &s, flows.clone()),
            None => {
                let queue = NfQueue::open(&cfg)?;
                let sessions = super::adopt::open_sessions(s.engine.state().flow_capacity);
                spawn(queue, Some(q), &s, sessions)
            }
        });
        match Slot::start(format!("nfqueue {q}"), starter) {
            Ok(slot) => live.slots.push(slot),
            Err(e) => {
                // Undo: rules first, then the workers already running.
                let _ = super::stop(live, shared.shutdown.as_ref());
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
pub(super) fn start(args: &Args, shared: &Shared, flows: &[Flow]) -> anyhow::Result<Live> {
    use v6fw_capture::windivert::{WinDivert, WinDivertConfig};

    if args.offload.is_some() {
        anyhow::bail!(
            "--offload established needs Linux's conntrack and ip6tables rules: leave it out on \
             Windows"
        );
    }
    let config = WinDivertConfig {
        batch: usize::from(args.batch),
        queue_len: args.queue_len,
        priority: 0,
    };
    let handle = WinDivert::open(&config, 0)?;
    let stoppers = vec![handle.stopper()];
    let mut first = Some(handle);
    let (shared, flows) = (shared.clone(), flows.to_vec());
    let starter = Box::new(move || match first.take() {
        Some(h) => spawn(h, None, &shared, flows.clone()),
        None => anyhow::bail!("the WinDivert handle cannot be opened again while it runs"),
    });
    Ok(Live {
        slots: vec![Slot::start("windivert".into(), starter)?],
        stoppers,
    })
}

#[cfg(not(any(target_os = "linux", windows)))]
pub(super) fn describe(_args: &Args) -> String {
    String::new()
}

#[cfg(not(any(target_os = "linux", windows)))]
pub(super) fn start(_: &Args, _: &Shared, _: &[Flow]) -> anyhow::Result<Live> {
    anyhow::bail!("v6fw run works on Linux (NFQUEUE) and Windows (WinDivert) only")
}
