//! The firewall log's settings on [`FirewallManager`]: `INetFwV6Mgr`'s
//! `LogDroppedPackets`, `LogConnections`, `LogfilePath` and
//! `LogfileMaximumSize`, kept in the policy (`[logging]` in `policy.toml`)
//! and changed like every other setting: validate → persist → publish.

use std::path::{Path, PathBuf};

use v6fw_engine::LogSettings;

use super::error::FwError;
use super::manager::FirewallManager;

/// Largest size cap accepted: 1 TiB (a sanity bound, not Windows' 32 MiB).
pub const MAX_LOG_SIZE: u64 = 1 << 40;

/// A change to the log settings; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogChange {
    /// Log every dropped packet.
    pub dropped: Option<bool>,
    /// Log every accepted new connection.
    pub connections: Option<bool>,
    /// The log file: `Some(Some(path))` sets an absolute path,
    /// `Some(None)` goes back to `pfirewall.log` in the state directory.
    pub path: Option<Option<String>>,
    /// Size cap in bytes, at least [`LogSettings::MIN_MAX_SIZE`].
    pub max_size: Option<u64>,
}

impl FirewallManager {
    /// The log settings now.
    pub fn log_settings(&self) -> LogSettings {
        self.policy().logging.clone()
    }

    /// The state directory behind this manager, if it has one.
    pub fn state_dir(&self) -> Option<&Path> {
        self.store().map(crate::store::PolicyStore::dir)
    }

    /// The file the log is (or would be) written to: the set path, else
    /// `pfirewall.log` in the state directory (`None` for a manager with
    /// neither).
    pub fn log_path(&self) -> Option<PathBuf> {
        let settings = self.policy();
        match (&settings.logging.path, self.state_dir()) {
            (Some(p), _) => Some(PathBuf::from(p)),
            (None, Some(dir)) => Some(crate::log::log_path(&settings.logging, dir)),
            (None, None) => None,
        }
    }

    /// Changes the log settings (persisted, then published; a running
    /// daemon's writer and workers follow within about half a second).
    /// Returns whether anything changed. A cap under 1 KiB or over 1 TiB, or
    /// a path that is not absolute, is `E_INVALIDARG`.
    pub fn set_log_settings(&self, change: &LogChange) -> Result<bool, FwError> {
        if let Some(size) = change.max_size {
            if !(LogSettings::MIN_MAX_SIZE..=MAX_LOG_SIZE).contains(&size) {
                return Err(FwError::InvalidArg(format!(
                    "a log size cap of {size} bytes is not valid: give {} bytes (1KiB) to {MAX_LOG_SIZE} bytes (1TiB)",
                    LogSettings::MIN_MAX_SIZE
                )));
            }
        }
        if let Some(Some(path)) = &change.path {
            self.check_log_path(path)?;
        }
        self.change(|p| {
            let before = p.logging.clone();
            let l = &mut p.logging;
            if let Some(d) = change.dropped {
                l.dropped = d;
            }
            if let Some(c) = change.connections {
                l.connections = c;
            }
            if let Some(path) = &change.path {
                l.path.clone_from(path);
            }
            if let Some(size) = change.max_size {
                l.max_size = size;
            }
            Ok(*l != before)
        })
    }

    fn check_log_path(&self, path: &str) -> Result<(), FwError> {
        if path.is_empty() || path.chars().any(char::is_control) {
            return Err(FwError::InvalidArg(format!(
                "the log path {path:?} is not valid: give a file name without control characters"
            )));
        }
        let p = Path::new(path);
        if !p.is_absolute() {
            return Err(FwError::InvalidArg(format!(
                "the log path {path:?} is not absolute: the daemon does not share your working directory, give a full path"
            )));
        }
        if let Some(store) = self.store() {
            let reserved = [
                store.path().to_path_buf(),
                store.dir().join(crate::store::LOCK_FILE),
            ];
            if reserved.iter().any(|r| r == p) {
                return Err(FwError::InvalidArg(format!(
                    "{path} is v6fw's own policy file: choose another log file"
                )));
            }
        }
        Ok(())
    }
}
