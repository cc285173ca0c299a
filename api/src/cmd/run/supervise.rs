//! What the daemon does when one of its parts ends without being asked to:
//! a worker that failed or panicked is restarted (its queue bound again, a
//! fresh [`Worker`](v6fw_engine::Worker) with the host's open sessions
//! adopted) within a budget of [`MAX_RESTARTS`] per [`RESTART_WINDOW`];
//! past the budget, or when the queue cannot be bound again, the daemon
//! exits non-zero **with its rules in place** so the host is never left
//! unfiltered in fail-closed mode (the service manager starts it again, and
//! that start removes the old rules first). See the failure table in
//! docs/live.md.

use std::collections::VecDeque;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use v6fw_capture::backend::CaptureError;

/// Restarts allowed per [`RESTART_WINDOW`] over all workers.
pub const MAX_RESTARTS: usize = 5;

/// The window of [`MAX_RESTARTS`].
pub const RESTART_WINDOW: Duration = Duration::from_secs(60);

/// A worker thread's handle.
pub type WorkerHandle = JoinHandle<Result<u64, CaptureError>>;

/// Starts (again) the worker of one queue.
pub type Starter = Box<dyn FnMut() -> anyhow::Result<WorkerHandle> + Send>;

/// How many restarts are left in the window.
#[derive(Debug)]
pub struct Budget {
    max: usize,
    window: Duration,
    recent: VecDeque<Instant>,
}

impl Budget {
    /// `max` restarts per `window`.
    pub fn new(max: usize, window: Duration) -> Self {
        Budget {
            max,
            window,
            recent: VecDeque::new(),
        }
    }

    /// Takes one restart at `now` if the window has one left.
    pub fn take(&mut self, now: Instant) -> bool {
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= self.max {
            return false;
        }
        self.recent.push_back(now);
        true
    }
}

/// One queue's worker and how to start it again.
pub struct Slot {
    /// A short name for logs (`nfqueue 0`).
    pub name: String,
    handle: Option<WorkerHandle>,
    start: Starter,
    /// Packets decided by the workers of this slot that ended.
    pub decided: u64,
    /// How often it was restarted.
    pub restarts: u64,
}

/// What [`Slot::check`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Health {
    /// The worker runs.
    Running,
    /// It had ended (with this error) and runs again.
    Restarted(String),
}

impl Slot {
    /// Starts the worker with `start`, which is kept for restarts.
    #[cfg_attr(not(any(target_os = "linux", windows)), allow(dead_code))] // no backend there
    pub fn start(name: String, mut start: Starter) -> anyhow::Result<Slot> {
        let handle = start()?;
        Ok(Slot {
            name,
            handle: Some(handle),
            start,
            decided: 0,
            restarts: 0,
        })
    }

    /// Restarts the worker if it ended; an error when that is not possible
    /// (budget spent, or the start failed): the daemon must then exit with
    /// its rules in place.
    pub fn check(&mut self, budget: &mut Budget) -> Result<Health, String> {
        if !self.handle.as_ref().is_some_and(JoinHandle::is_finished) {
            return Ok(Health::Running);
        }
        let why = match self.handle.take().map(JoinHandle::join) {
            Some(Ok(Ok(n))) => {
                self.decided += n;
                "its packet loop ended".to_string()
            }
            Some(Ok(Err(e))) => e.to_string(),
            Some(Err(_)) | None => format!("the thread of {} panicked", self.name),
        };
        if !budget.take(Instant::now()) {
            return Err(format!(
                "{}: {why}; not restarted: already {MAX_RESTARTS} restarts in the last {} s",
                self.name,
                RESTART_WINDOW.as_secs()
            ));
        }
        match (self.start)() {
            Ok(h) => {
                self.handle = Some(h);
                self.restarts += 1;
                Ok(Health::Restarted(why))
            }
            Err(e) => Err(format!(
                "{}: {why}; cannot restart it: {}",
                self.name,
                crate::output::describe(&e)
            )),
        }
    }

    /// Waits for the worker (once shutdown is set); its error, if any.
    pub fn join(mut self) -> Result<u64, String> {
        match self.handle.take().map(JoinHandle::join) {
            Some(Ok(Ok(n))) => Ok(self.decided + n),
            Some(Ok(Err(e))) => Err(e.to_string()),
            Some(Err(_)) => Err(format!("the thread of {} panicked", self.name)),
            None => Ok(self.decided),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use v6fw_capture::backend::{run_worker, Backend, Clock, Packet};
    use v6fw_engine::{Engine, Policy, Verdict};

    /// A backend whose receive panics, or fails, or idles.
    struct Faulty(&'static str);

    impl Backend for Faulty {
        fn recv_batch(&mut self, t: Duration) -> Result<usize, CaptureError> {
            match self.0 {
                "panic" => panic!("test panic in a worker"),
                "fail" => Err(CaptureError::Protocol("test failure".into())),
                _ => {
                    std::thread::sleep(t.min(Duration::from_millis(5)));
                    Ok(0)
                }
            }
        }
        fn packet(&self, _: usize) -> Option<Packet<'_>> {
            None
        }
        fn send_verdicts(&mut self, _: &[Verdict]) -> Result<(), CaptureError> {
            Ok(())
        }
        fn name(&self) -> &str {
            "faulty"
        }
    }

    /// A starter whose `n`-th start runs `kinds[n]` (the last one repeats).
    fn starter(
        kinds: &'static [&'static str],
        starts: Arc<AtomicUsize>,
        stop: Arc<AtomicBool>,
    ) -> Starter {
        let engine = Arc::new(Engine::new(Policy::default()));
        Box::new(move || {
            let n = starts.fetch_add(1, Ordering::SeqCst);
            let kind = kinds.get(n).or(kinds.last()).copied().unwrap_or("idle");
            let (engine, stop) = (Arc::clone(&engine), Arc::clone(&stop));
            Ok(std::thread::spawn(move || {
                run_worker(&mut Faulty(kind), &engine, &Clock::start(), &stop)
            }))
        })
    }

    fn wait_finished(slot: &Slot) {
        for _ in 0..500 {
            if slot.handle.as_ref().is_some_and(JoinHandle::is_finished) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("the worker did not end");
    }

    #[test]
    fn a_panicking_worker_is_restarted_and_keeps_running() {
        let (starts, stop) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let mut slot = Slot::start(
            "q0".into(),
            starter(
                &["panic", "fail", "idle"],
                Arc::clone(&starts),
                Arc::clone(&stop),
            ),
        )
        .unwrap();
        let mut budget = Budget::new(MAX_RESTARTS, RESTART_WINDOW);
        wait_finished(&slot);
        assert!(
            matches!(slot.check(&mut budget), Ok(Health::Restarted(why)) if why.contains("panicked"))
        );
        wait_finished(&slot);
        assert_eq!(
            slot.check(&mut budget),
            Ok(Health::Restarted("test failure".into()))
        );
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(slot.check(&mut budget), Ok(Health::Running));
        assert_eq!((starts.load(Ordering::SeqCst), slot.restarts), (3, 2));
        stop.store(true, Ordering::SeqCst);
        assert_eq!(slot.join(), Ok(0));
    }

    #[test]
    fn past_the_budget_the_daemon_must_exit() {
        let (starts, stop) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let mut slot = Slot::start("q0".into(), starter(&["fail"], starts, stop)).unwrap();
        let mut budget = Budget::new(2, RESTART_WINDOW);
        for _ in 0..2 {
            wait_finished(&slot);
            assert!(matches!(slot.check(&mut budget), Ok(Health::Restarted(_))));
        }
        wait_finished(&slot);
        let err = slot.check(&mut budget).unwrap_err();
        assert!(err.contains("not restarted"), "{err}");
    }

    #[test]
    fn the_budget_refills_after_the_window() {
        let mut b = Budget::new(2, Duration::from_secs(60));
        let t = Instant::now();
        assert!(b.take(t) && b.take(t));
        assert!(!b.take(t + Duration::from_secs(59)));
        assert!(b.take(t + Duration::from_secs(61)));
    }
}
