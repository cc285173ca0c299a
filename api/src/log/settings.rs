//! [`LogSettings`]: the firewall log's settings (`[logging]` in
//! `policy.toml`), and [`SharedLogSettings`], the copy in effect that the
//! manager changes and the daemon's hooks and writer follow.
//!
//! They are the daemon's, not the engine's: the engine decides packets and
//! never logs, so its [`v6fw_engine::Policy`] accepts the `[logging]` table
//! unread, and [`crate::store`] reads it from the same text into these.

use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use super::LogFilter;

/// The firewall log's settings, as `INetFwV6Mgr` has them: `LogDroppedPackets`,
/// `LogConnections`, `LogfilePath`, `LogfileMaximumSize`. Kept by the
/// [`crate::fw::FirewallManager`] beside the engine's policy and stored in
/// the same file; the daemon's log hook and writer act on them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// Log every dropped packet.
    #[serde(default)]
    pub dropped: bool,
    /// Log every accepted new connection.
    #[serde(default)]
    pub connections: bool,
    /// The log file (default: `pfirewall.log` in the state directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Size cap in bytes; at the cap the file is renamed to `FILE.old`.
    #[serde(default = "LogSettings::default_max_size")]
    pub max_size: u64,
}

impl LogSettings {
    /// Windows Firewall's default cap: 4,096 KiB.
    pub const DEFAULT_MAX_SIZE: u64 = 4 << 20;
    /// The smallest cap accepted: 1 KiB.
    pub const MIN_MAX_SIZE: u64 = 1 << 10;

    fn default_max_size() -> u64 {
        Self::DEFAULT_MAX_SIZE
    }

    /// Which decisions these settings log.
    pub fn filter(&self) -> LogFilter {
        LogFilter {
            dropped: self.dropped,
            connections: self.connections,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            dropped: false,
            connections: false,
            path: None,
            max_size: Self::DEFAULT_MAX_SIZE,
        }
    }
}

/// The log settings in effect, shared by the manager (their one writer, after
/// each change is stored) with the daemon's log hooks and writer. Reading is
/// lock-free and, after a thread's first read, allocation-free, so a hook
/// may read it once per batch.
#[derive(Debug)]
pub struct SharedLogSettings {
    current: ArcSwap<LogSettings>,
}

impl SharedLogSettings {
    /// Shared settings starting at `settings`.
    pub fn new(settings: LogSettings) -> Arc<Self> {
        Arc::new(SharedLogSettings {
            current: ArcSwap::from_pointee(settings),
        })
    }

    /// The settings now: immutable, stable however long they are held.
    pub fn get(&self) -> Arc<LogSettings> {
        self.current.load_full()
    }

    /// Which decisions the settings now log (the hook's read per batch:
    /// no lock, no allocation, no system call).
    #[inline]
    pub fn filter(&self) -> LogFilter {
        self.current.load().filter()
    }

    /// Puts `settings` in effect (the manager, once they are stored).
    pub(crate) fn set(&self, settings: LogSettings) {
        self.current.store(Arc::new(settings));
    }
}
