//! The firewall log's settings on [`FirewallManager`]: `INetFwV6Mgr`'s
//! `LogDroppedPackets`, `LogConnections`, `LogfilePath` and
//! `LogfileMaximumSize`, kept by the manager beside the engine's policy,
//! stored in the same file (`[logging]` in `policy.toml`) and changed like
//! every other setting: validate → persist → publish.

use std::path::{Component, Path, PathBuf};

use crate::log::LogSettings;

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
        LogSettings::clone(&self.shared_log_settings().get())
    }

    /// The state directory behind this manager, if it has one.
    pub fn state_dir(&self) -> Option<&Path> {
        self.store().map(crate::store::PolicyStore::dir)
    }

    /// The file the log is (or would be) written to: the set path, else
    /// `pfirewall.log` in [`crate::log::default_log_dir`] of the state
    /// directory (`None` for a manager with neither).
    pub fn log_path(&self) -> Option<PathBuf> {
        let settings = self.shared_log_settings().get();
        match (&settings.path, self.state_dir()) {
            (Some(p), _) => Some(PathBuf::from(p)),
            (None, Some(dir)) => Some(crate::log::log_path(&settings, dir)),
            (None, None) => None,
        }
    }

    /// Changes the log settings (persisted, then published: a running
    /// daemon's workers follow from their next batch, its writer within
    /// about half a second).
    /// Returns whether anything changed. Settings that
    /// [`check_log_settings`] refuses are `E_INVALIDARG`.
    pub fn set_log_settings(&self, change: &LogChange) -> Result<bool, FwError> {
        let mut next = self.log_settings();
        change.apply(&mut next);
        check_log_settings(&next, self.state_dir())?;
        self.change_file(|f| {
            let before = f.logging.clone();
            change.apply(&mut f.logging);
            Ok(f.logging != before)
        })
    }
}

impl LogChange {
    /// Applies the settings this change names to `l`.
    fn apply(&self, l: &mut LogSettings) {
        if let Some(d) = self.dropped {
            l.dropped = d;
        }
        if let Some(c) = self.connections {
            l.connections = c;
        }
        if let Some(path) = &self.path {
            l.path.clone_from(path);
        }
        if let Some(size) = self.max_size {
            l.max_size = size;
        }
    }
}

/// The one check of log settings, for `v6fw log set` and for `[logging]` in a
/// policy file being loaded: a size cap of 1 KiB to 1 TiB, and a path that is
/// absolute, free of control characters, names a file (not `..`), and is not
/// one of v6fw's own files in `state_dir` once resolved (its directory is
/// canonicalised, so `/d/../etc/v6fw/policy.toml` or a symlinked
/// directory are seen through), and, when its directory exists, a directory
/// only root can write and no symbolic link ([`crate::log::check_log_place`]).
pub fn check_log_settings(settings: &LogSettings, state_dir: Option<&Path>) -> Result<(), FwError> {
    let size = settings.max_size;
    if !(LogSettings::MIN_MAX_SIZE..=MAX_LOG_SIZE).contains(&size) {
        return Err(FwError::InvalidArg(format!(
            "a log size cap of {size} bytes is not valid: give {} bytes (1KiB) to {MAX_LOG_SIZE} bytes (1TiB)",
            LogSettings::MIN_MAX_SIZE
        )));
    }
    match &settings.path {
        Some(path) => check_log_path(path, state_dir),
        None => Ok(()),
    }
}

fn check_log_path(path: &str, state_dir: Option<&Path>) -> Result<(), FwError> {
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
    let (Some(parent), Some(name)) = (p.parent(), p.file_name()) else {
        return Err(FwError::InvalidArg(format!(
            "the log path {path:?} names a directory, not a file: give a full file path such as /var/log/v6fw/pfirewall.log"
        )));
    };
    crate::log::check_log_place(p).map_err(|e| FwError::caused(crate::fw::Code::InvalidArg, e))?;
    let Some(dir) = state_dir else {
        return Ok(());
    };
    let file = resolve_dir(parent).join(name);
    let state = resolve_dir(dir);
    let own = file.parent() == Some(state.as_path())
        && name.to_str().is_some_and(|n| {
            n == crate::store::POLICY_FILE
                || n == crate::store::LOCK_FILE
                || n.starts_with(crate::store::TMP_PREFIX)
        });
    if own {
        return Err(FwError::InvalidArg(format!(
            "{path} is v6fw's own file {}: choose another log file",
            file.display()
        )));
    }
    Ok(())
}

/// The narrower check for a log path set by a member of `--admin-group`
/// (who may change the policy but is not root, and must not be able to make
/// root's daemon append to, chmod or rotate a file of root's): besides
/// [`check_log_settings`]' rules, the file must be directly in the log
/// directory ([`crate::log::default_log_dir`] of `state_dir`) and be new, or
/// a file v6fw made ([`crate::log::check_made_by_v6fw`], its `.old` too).
/// Anything else is `E_ACCESSDENIED`, with what root may do instead.
pub fn check_delegated_log_path(path: &str, state_dir: Option<&Path>) -> Result<(), FwError> {
    check_log_path(path, state_dir)?;
    let Some(state_dir) = state_dir else {
        return Err(FwError::AccessDenied(format!(
            "the log path {path:?} cannot be set by a member of the admin group here: this daemon has no log directory; ask root"
        )));
    };
    let log_dir = crate::log::default_log_dir(state_dir);
    let p = Path::new(path);
    let inside = match (
        p.parent().map(std::fs::canonicalize),
        std::fs::canonicalize(&log_dir),
    ) {
        (Some(Ok(parent)), Ok(dir)) => parent == dir,
        _ => false,
    };
    if !inside {
        return Err(FwError::AccessDenied(format!(
            "the log path {path:?} is not in the log directory {}: a member of the admin group may only log to a file there; ask root for any other place",
            log_dir.display()
        )));
    }
    crate::log::check_made_by_v6fw(p).map_err(|e| {
        FwError::AccessDenied(format!(
            "{e}; a member of the admin group may only log to a new file or one v6fw wrote; ask root"
        ))
    })
}

/// `dir` with symlinks and `..` resolved: canonicalised when it exists, else
/// normalised by its components alone (a directory that does not exist cannot
/// hide a link).
fn resolve_dir(dir: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(dir) {
        return real;
    }
    let mut out = PathBuf::new();
    for c in dir.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}
