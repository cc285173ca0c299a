//! [`LogHook`]: the daemon's per-decision hook that turns wanted decisions
//! into log records.
//!
//! Per batch it reads the log switches from the manager's
//! [`SharedLogSettings`] (lock-free) and, only when one is on, the wall
//! clock — so a change made with `v6fw log set` applies from the next
//! batch. Per decision it tests two flags; only a decision the filter may
//! want is walked again ([`v6fw_engine::walk::walk`]) to fill the record,
//! which goes to the queue with the non-blocking [`LogSender::send`].
//! Nothing here allocates, locks or makes a system call per packet.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use v6fw_capture::backend::{DecisionHook, Packet};
use v6fw_engine::{Decision, Snapshot};

use super::{LogFilter, LogSender, SharedLogSettings};

/// Sends the decisions the current log settings want logged to a
/// [`LogSender`]. One per worker thread.
#[derive(Debug, Clone)]
pub struct LogHook {
    sender: LogSender,
    /// The settings followed: the manager's
    /// ([`crate::fw::FirewallManager::shared_log_settings`]).
    settings: Arc<SharedLogSettings>,
    /// The switches of the current batch.
    filter: LogFilter,
    /// Wall clock of the current batch, ns since the Unix epoch.
    time_ns: u64,
}

impl LogHook {
    /// A hook sending to `sender` what `settings` ask for.
    pub fn new(sender: LogSender, settings: Arc<SharedLogSettings>) -> Self {
        LogHook {
            sender,
            settings,
            filter: LogFilter::default(),
            time_ns: 0,
        }
    }
}

/// Nanoseconds since the Unix epoch now (0 if the clock is before 1970).
pub fn wall_clock_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl DecisionHook for LogHook {
    #[inline]
    fn begin_batch(&mut self, _snapshot: &Snapshot) -> bool {
        self.filter = self.settings.filter();
        let on = self.filter.dropped || self.filter.connections;
        if on {
            self.time_ns = wall_clock_ns();
        }
        on
    }

    #[inline]
    fn decided(&mut self, packet: &Packet<'_>, decision: &Decision) {
        let record = self.filter.record(
            packet.bytes,
            packet.truncated,
            decision,
            packet.direction,
            self.time_ns,
        );
        if let Some(record) = record {
            self.sender.send(record);
        }
    }
}
