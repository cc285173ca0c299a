//! The batch trait every live backend implements, and the packet loop they share.
//!
//! A live backend (NFQUEUE on Linux, WinDivert on Windows) does three things
//! only: receive a batch of packets from the OS ([`Backend::recv_batch`]),
//! show each packet with what the OS said about it ([`Backend::packet`]), and
//! hand one verdict per packet back ([`Backend::send_verdicts`]). Everything
//! else — the clock, the pinned snapshot, the decision, the counters, the
//! shutdown flag — is here, in [`decide_batch`] and [`run_loop`], and is the
//! same on every OS.
//!
//! Per batch the loop reads the monotonic clock once and pins the port table
//! once; per packet it walks the header chain and tests a bit. Nothing on the
//! per-packet path allocates, locks or makes a system call: the backend's own
//! receive and verdict calls are the only I/O, one or two per batch.
//!
//! A daemon that wants to see the decisions themselves (the firewall log)
//! passes a [`DecisionHook`] to the `_with` variants: it is asked once per
//! batch, on the batch's pinned snapshot, whether it wants this batch at all
//! ([`DecisionHook::begin_batch`]), and only then called per decision.

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use v6fw_engine::{Decision, Direction, Engine, PacketMeta, Snapshot, Verdict, Worker};

/// The most packets one batch can hold (WinDivert's `WINDIVERT_BATCH_MAX`).
pub const MAX_BATCH: usize = 255;

/// The batch size used when none is asked for.
pub const DEFAULT_BATCH: usize = 64;

/// How long a receive waits before the loop looks at the shutdown flag again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// How often a running worker publishes how many flows and fragment
/// memories it holds (a scan of its tables, between batches).
const HELD_INTERVAL_NS: u64 = 1_000_000_000;

/// One packet of the batch a backend received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The IPv6 packet from its fixed header on (possibly cut at the copy range).
    pub bytes: &'a [u8],
    /// Which way it goes.
    pub direction: Direction,
    /// The interface it arrived on (inbound) or leaves by (outbound).
    pub if_index: u32,
    /// The OS handed fewer bytes than the packet has: skip the payload-length check.
    pub truncated: bool,
}

/// What went wrong in a live backend, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// An OS call failed.
    #[error("{context}: {error}")]
    Os {
        /// What was being done, and what to do about it.
        context: String,
        /// The OS error (also quoted in the message).
        #[source]
        error: io::Error,
    },
    /// The OS answered something the backend cannot use.
    #[error("{0}")]
    Protocol(String),
    /// A worker thread panicked (a bug: please report it with the log).
    #[error("the packet loop of {0} panicked; its queue was released")]
    Panicked(String),
}

impl CaptureError {
    /// An [`CaptureError::Os`] from the last OS error.
    pub fn last_os(context: impl Into<String>) -> Self {
        CaptureError::Os {
            context: context.into(),
            error: io::Error::last_os_error(),
        }
    }

    /// An [`CaptureError::Os`] from an [`io::Error`].
    pub fn os(context: impl Into<String>, error: io::Error) -> Self {
        CaptureError::Os {
            context: context.into(),
            error,
        }
    }
}

/// A live packet source and verdict sink, one per worker thread.
pub trait Backend {
    /// Waits at most `timeout` for packets and receives up to a batch of them.
    /// Returns how many were received: 0 when the wait timed out (or was
    /// interrupted), so the caller can look at its shutdown flag.
    fn recv_batch(&mut self, timeout: Duration) -> Result<usize, CaptureError>;

    /// The `i`-th packet of the batch last received (`None` past its end).
    fn packet(&self, i: usize) -> Option<Packet<'_>>;

    /// Hands back the verdicts of the batch last received: `verdicts[i]` is
    /// for packet `i`, and there is one per packet.
    fn send_verdicts(&mut self, verdicts: &[Verdict]) -> Result<(), CaptureError>;

    /// A short name for logs, e.g. `nfqueue 0`.
    fn name(&self) -> &str;
}

/// A monotonic clock in nanoseconds since the daemon started, shared by workers.
#[derive(Debug, Clone, Copy)]
pub struct Clock(Instant);

impl Clock {
    /// A clock starting now.
    pub fn start() -> Self {
        Clock(Instant::now())
    }

    /// Nanoseconds since [`Clock::start`] (monotonic; read once per batch).
    #[inline]
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Sees every decision of a worker, e.g. to write the firewall log.
///
/// Both methods run on the packet path. [`begin_batch`](Self::begin_batch)
/// runs once per batch and may read the clock; [`decided`](Self::decided)
/// runs per packet and must not allocate, lock or make a system call.
pub trait DecisionHook {
    /// A batch is about to be decided on `snapshot`. Returns whether
    /// [`decided`](Self::decided) is wanted for its packets (for example,
    /// whether the snapshot's policy has logging on).
    fn begin_batch(&mut self, snapshot: &Snapshot) -> bool;

    /// One packet of the batch and what was decided for it.
    fn decided(&mut self, packet: &Packet<'_>, decision: &Decision);
}

/// The hook that wants nothing: [`decide_batch`], [`run_loop`] and
/// [`run_worker`] use it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoHook;

impl DecisionHook for NoHook {
    #[inline]
    fn begin_batch(&mut self, _snapshot: &Snapshot) -> bool {
        false
    }

    #[inline]
    fn decided(&mut self, _packet: &Packet<'_>, _decision: &Decision) {}
}

/// Decides the first `out.len()` packets of the backend's current batch on
/// one pinned snapshot, writing `out[i]` for packet `i`. A slot the backend
/// cannot show (it said the batch was longer than it is) is dropped.
pub fn decide_batch<B: Backend + ?Sized>(
    backend: &B,
    engine: &Engine,
    worker: &mut Worker,
    now_ns: u64,
    out: &mut [Verdict],
) {
    decide_batch_with(backend, engine, worker, now_ns, out, &mut NoHook);
}

/// [`decide_batch`], showing every decision to `hook` when its
/// [`DecisionHook::begin_batch`] asks for this batch.
pub fn decide_batch_with<B: Backend + ?Sized, H: DecisionHook + ?Sized>(
    backend: &B,
    engine: &Engine,
    worker: &mut Worker,
    now_ns: u64,
    out: &mut [Verdict],
    hook: &mut H,
) {
    let snap = engine.table().pin();
    let watch = hook.begin_batch(&snap);
    for (i, verdict) in out.iter_mut().enumerate() {
        *verdict = match backend.packet(i) {
            Some(p) => {
                let meta = PacketMeta {
                    direction: p.direction,
                    if_index: p.if_index,
                    now_ns,
                    truncated: p.truncated,
                };
                let decision = worker.decide(&snap, p.bytes, &meta);
                if watch {
                    hook.decided(&p, &decision);
                }
                decision.verdict()
            }
            None => Verdict::Drop,
        };
    }
}

/// Receives, decides and answers batches until `shutdown` is set or the
/// backend fails. Returns how many packets it decided.
pub fn run_loop<B: Backend + ?Sized>(
    backend: &mut B,
    engine: &Engine,
    worker: &mut Worker,
    clock: &Clock,
    shutdown: &AtomicBool,
) -> Result<u64, CaptureError> {
    run_loop_with(backend, engine, worker, clock, shutdown, &mut NoHook)
}

/// [`run_loop`] with a [`DecisionHook`].
pub fn run_loop_with<B: Backend + ?Sized, H: DecisionHook + ?Sized>(
    backend: &mut B,
    engine: &Engine,
    worker: &mut Worker,
    clock: &Clock,
    shutdown: &AtomicBool,
    hook: &mut H,
) -> Result<u64, CaptureError> {
    let mut verdicts = [Verdict::Drop; MAX_BATCH];
    let mut decided = 0u64;
    let mut held_at: Option<u64> = None;
    while !shutdown.load(Ordering::Relaxed) {
        // The gauges of held flows and fragments, about once a second,
        // between batches (a scan of the tables; never per packet).
        let now = clock.now_ns();
        if held_at.is_none_or(|t| now.saturating_sub(t) >= HELD_INTERVAL_NS) {
            worker.publish_held(now);
            held_at = Some(now);
        }
        let n = backend.recv_batch(POLL_INTERVAL)?.min(MAX_BATCH);
        let Some(out) = verdicts.get_mut(..n).filter(|o| !o.is_empty()) else {
            continue;
        };
        decide_batch_with(backend, engine, worker, clock.now_ns(), out, hook);
        backend.send_verdicts(out)?;
        decided += n as u64;
    }
    Ok(decided)
}

/// [`run_loop`] for a worker thread: creates the worker, catches a panic
/// (reported as [`CaptureError::Panicked`]) and returns however the loop
/// ended. It does not stop anything else: the daemon sees the thread end and
/// decides (restart the worker, or exit with its rules in place).
pub fn run_worker<B: Backend + ?Sized>(
    backend: &mut B,
    engine: &Engine,
    clock: &Clock,
    shutdown: &AtomicBool,
) -> Result<u64, CaptureError> {
    run_worker_with(backend, engine, clock, shutdown, &mut NoHook)
}

/// [`run_worker`] with a [`DecisionHook`].
pub fn run_worker_with<B: Backend + ?Sized, H: DecisionHook + ?Sized>(
    backend: &mut B,
    engine: &Engine,
    clock: &Clock,
    shutdown: &AtomicBool,
    hook: &mut H,
) -> Result<u64, CaptureError> {
    run_worker_prepared(backend, engine, clock, shutdown, hook, |_, _| {})
}

/// [`run_worker_with`], calling `prepare` on the new worker (with the
/// clock's time) before the first batch: e.g. to adopt the host's open
/// sessions as flows. A panic in `prepare` is caught like one in the loop.
pub fn run_worker_prepared<B, H, P>(
    backend: &mut B,
    engine: &Engine,
    clock: &Clock,
    shutdown: &AtomicBool,
    hook: &mut H,
    prepare: P,
) -> Result<u64, CaptureError>
where
    B: Backend + ?Sized,
    H: DecisionHook + ?Sized,
    P: FnOnce(&mut Worker, u64),
{
    let name = backend.name().to_string();
    let mut worker = engine.worker();
    let result = catch_unwind(AssertUnwindSafe(|| {
        prepare(&mut worker, clock.now_ns());
        run_loop_with(backend, engine, &mut worker, clock, shutdown, hook)
    }));
    // Its tables go with it, however it ended: it holds nothing any more.
    worker.counters().set_held(0, 0);
    result.unwrap_or(Err(CaptureError::Panicked(name)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use v6fw_engine::{Policy, PortPair, Reason};

    /// A backend over packets in memory; answers go to `answered`.
    struct Memory {
        batches: Vec<Vec<(Vec<u8>, Direction)>>,
        current: Vec<(Vec<u8>, Direction)>,
        answered: Vec<Verdict>,
        panic_on_recv: bool,
    }

    impl Backend for Memory {
        fn recv_batch(&mut self, _timeout: Duration) -> Result<usize, CaptureError> {
            assert!(!self.panic_on_recv, "test panic");
            self.current = if self.batches.is_empty() {
                Vec::new()
            } else {
                self.batches.remove(0)
            };
            Ok(self.current.len())
        }
        fn packet(&self, i: usize) -> Option<Packet<'_>> {
            self.current.get(i).map(|(b, d)| Packet {
                bytes: b,
                direction: *d,
                if_index: 7,
                truncated: false,
            })
        }
        fn send_verdicts(&mut self, v: &[Verdict]) -> Result<(), CaptureError> {
            assert_eq!(v.len(), self.current.len());
            self.answered.extend_from_slice(v);
            Ok(())
        }
        fn name(&self) -> &str {
            "memory"
        }
    }

    /// A TCP segment with no flags from `fd00::src_last` port `sport` to
    /// `fd00::1` port `dport`.
    fn tcp(src_last: u8, sport: u16, dport: u16) -> Vec<u8> {
        tcp_between(host(src_last), host(1), sport, dport)
    }

    /// The address `fd00::last` (not `::last`: `::1` from another source
    /// is `bad_address`, SPEC.md step 3).
    fn host(last: u8) -> [u8; 16] {
        let mut a = [0u8; 16];
        a[0] = 0xfd;
        a[15] = last;
        a
    }

    fn tcp_between(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16) -> Vec<u8> {
        let mut p = Vec::new();
        etherparse::PacketBuilder::ipv6(src, dst, 64)
            .tcp(sport, dport, 0, 0)
            .write(&mut p, &[])
            .unwrap();
        p
    }

    #[test]
    fn decides_batches_and_counts() {
        let mut policy = Policy::default();
        policy.open_global(
            PortPair::new(8080, v6fw_engine::Protocol::Tcp).unwrap(),
            "t",
        );
        let engine = Engine::new(policy);
        let mut b = Memory {
            batches: vec![
                vec![
                    (tcp(2, 4000, 8080), Direction::Inbound),
                    (tcp(2, 4000, 9090), Direction::Inbound),
                ],
                vec![(vec![0x60, 0, 0], Direction::Inbound)],
            ],
            current: Vec::new(),
            answered: Vec::new(),
            panic_on_recv: false,
        };
        let mut worker = engine.worker();
        let shutdown = AtomicBool::new(false);
        let clock = Clock::start();
        let mut verdicts = [Verdict::Drop; 4];
        for _ in 0..2 {
            let n = b.recv_batch(POLL_INTERVAL).unwrap();
            decide_batch(&b, &engine, &mut worker, clock.now_ns(), &mut verdicts[..n]);
            b.send_verdicts(&verdicts[..n]).unwrap();
        }
        assert_eq!(b.answered, [Verdict::Accept, Verdict::Drop, Verdict::Drop]);
        let t = engine.counters().totals();
        assert_eq!(t.get(Reason::GlobalPort), 1);
        assert_eq!(t.get(Reason::PortClosed), 1);
        assert_eq!(t.get(Reason::Malformed), 1);
        shutdown.store(true, Ordering::Relaxed);
        assert_eq!(
            run_loop(&mut b, &engine, &mut worker, &clock, &shutdown).unwrap(),
            0
        );
    }

    #[test]
    fn outbound_flow_lets_the_reply_in() {
        let engine = Engine::new(Policy::default());
        let mut worker = engine.worker();
        let out = tcp(1, 9090, 5555);
        // The reply: the outbound segment's addresses and ports swapped.
        let reply = tcp_between(host(1), host(1), 5555, 9090);
        let b = Memory {
            batches: Vec::new(),
            current: vec![(out, Direction::Outbound), (reply, Direction::Inbound)],
            answered: Vec::new(),
            panic_on_recv: false,
        };
        let mut v = [Verdict::Drop; 2];
        decide_batch(&b, &engine, &mut worker, 1, &mut v);
        assert_eq!(v, [Verdict::Accept, Verdict::Accept]);
        assert_eq!(engine.counters().totals().get(Reason::Established), 1);
    }

    /// Counts what it is shown; wants a batch's decisions only when `wants`.
    #[derive(Default)]
    struct Seen {
        wants: bool,
        batches: usize,
        decisions: Vec<(u16, Reason)>,
    }

    impl DecisionHook for Seen {
        fn begin_batch(&mut self, _snapshot: &Snapshot) -> bool {
            self.batches += 1;
            self.wants
        }
        fn decided(&mut self, packet: &Packet<'_>, decision: &Decision) {
            let dport = v6fw_engine::walk::walk(packet.bytes, false)
                .ports()
                .map_or(0, |(_, _, dport)| dport);
            self.decisions.push((dport, decision.reason));
        }
    }

    #[test]
    fn the_hook_sees_decisions_only_when_it_asks() {
        let engine = Engine::new(Policy::default());
        let b = Memory {
            batches: Vec::new(),
            current: vec![(tcp(2, 4000, 9090), Direction::Inbound)],
            answered: Vec::new(),
            panic_on_recv: false,
        };
        let mut worker = engine.worker();
        let mut hook = Seen::default();
        let mut v = [Verdict::Accept; 1];
        decide_batch_with(&b, &engine, &mut worker, 1, &mut v, &mut hook);
        assert_eq!((hook.batches, hook.decisions.len()), (1, 0));
        hook.wants = true;
        decide_batch_with(&b, &engine, &mut worker, 2, &mut v, &mut hook);
        assert_eq!(hook.batches, 2);
        assert_eq!(hook.decisions, [(9090, Reason::PortClosed)]);
        assert_eq!(v, [Verdict::Drop]);
    }

    #[test]
    fn a_running_worker_publishes_what_it_holds_and_nothing_once_ended() {
        let engine = std::sync::Arc::new(Engine::new(Policy::default()));
        let shutdown = std::sync::Arc::new(AtomicBool::new(false));
        let (e, stop) = (
            std::sync::Arc::clone(&engine),
            std::sync::Arc::clone(&shutdown),
        );
        let thread = std::thread::spawn(move || {
            let mut b = Memory {
                batches: vec![vec![(tcp(1, 9090, 5555), Direction::Outbound)]],
                current: Vec::new(),
                answered: Vec::new(),
                panic_on_recv: false,
            };
            run_worker_prepared(&mut b, &e, &Clock::start(), &stop, &mut NoHook, |_, _| {})
        });
        // The first publish (before any packet) says 0; the next, about a
        // second later, the outbound flow. Bounded: 10 s at most.
        let deadline = Instant::now() + Duration::from_secs(10);
        while engine.counters().totals().flows_held() != 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(engine.counters().totals().flows_held(), 1);
        assert_eq!(engine.counters().totals().fragments_held(), 0);
        shutdown.store(true, Ordering::Relaxed);
        assert_eq!(thread.join().unwrap().unwrap(), 1);
        assert_eq!(
            engine.counters().totals().flows_held(),
            0,
            "an ended worker holds nothing"
        );
    }

    #[test]
    fn a_panicking_loop_is_reported_and_stops_nothing_else() {
        let engine = Engine::new(Policy::default());
        let mut b = Memory {
            batches: Vec::new(),
            current: Vec::new(),
            answered: Vec::new(),
            panic_on_recv: true,
        };
        let shutdown = AtomicBool::new(false);
        let r = run_worker(&mut b, &engine, &Clock::start(), &shutdown);
        assert!(matches!(r, Err(CaptureError::Panicked(_))));
        // The daemon decides what a dead worker means (restart it): the
        // shared flag is left alone.
        assert!(!shutdown.load(Ordering::SeqCst));
    }
}
