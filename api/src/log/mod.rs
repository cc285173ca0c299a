//! Firewall logs in the Windows Firewall format (`pfirewall.log`).
//!
//! `INetFwV6Mgr` has `LogConnections`, `LogDroppedPackets`, `LogfilePath` and
//! `LogfileMaximumSize`; v6fw keeps the same four settings in its policy file
//! ([`LogSettings`], `[logging]`). A [`LogFilter`] picks on the packet
//! path which decisions become lines (every drop when dropped-packet logging
//! is on; each new accepted TCP connection or UDP flow when connection logging
//! is on), a [`LogSender`] queues them without ever waiting, and one
//! [`LogWriter`] thread writes and rotates the file.
//!
//! In the daemon, each worker has a [`LogHook`] (the capture loop's
//! per-decision hook) reading the manager's [`SharedLogSettings`] once per
//! batch, and the writer follows the same settings
//! ([`LogWriter::spawn_watching`] with [`config_for`]), so `v6fw log set`
//! takes effect without a restart.
//!
//! The file is opened and rotated relative to its directory, never through a
//! symbolic link, in a directory only root may write, and created mode 0640
//! (see `file.rs`).

mod file;
mod hook;
mod record;
mod settings;
mod writer;

use std::path::{Path, PathBuf};

pub use file::{check_log_place, check_made_by_v6fw, LOG_FILE_MODE};
pub use hook::{wall_clock_ns, LogHook};
pub use record::{header, LogRecord, TcpFields, HEADER_START};
pub use settings::{LogSettings, SharedLogSettings};
pub use writer::{
    LogConfig, LogCounters, LogSender, LogStats, LogWriter, QUEUE_CAPACITY, SETTINGS_POLL,
};

use v6fw_engine::walk::{Upper, Walk};
use v6fw_engine::{Decision, Reason, Verdict};

/// The log file's name in [`default_log_dir`] when no path is set.
pub const DEFAULT_FILE: &str = "pfirewall.log";

/// Where the log goes with no path set and the default state directory
/// (FHS; the daemon creates it, mode 0750).
#[cfg(unix)]
pub const DEFAULT_LOG_DIR: &str = "/var/log/v6fw";

/// The directory of the log when no path is set: `DEFAULT_LOG_DIR` (Unix) for
/// the default state directory, else (`--state-dir DIR`) the state
/// directory itself, as before.
pub fn default_log_dir(state_dir: &Path) -> PathBuf {
    #[cfg(unix)]
    if state_dir == crate::store::default_state_dir() {
        return PathBuf::from(DEFAULT_LOG_DIR);
    }
    state_dir.to_path_buf()
}

/// Creates `DEFAULT_LOG_DIR` (Unix, mode 0750) when `state_dir` logs there by
/// default and it is missing (the daemon's start; a package or systemd's
/// `LogsDirectory=` may have made it already).
pub fn create_default_dir(state_dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    if default_log_dir(state_dir) == Path::new(DEFAULT_LOG_DIR) {
        use std::os::unix::fs::DirBuilderExt;
        return match std::fs::DirBuilder::new()
            .mode(0o750)
            .create(DEFAULT_LOG_DIR)
        {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(std::io::Error::new(
                e.kind(),
                format!("cannot create {DEFAULT_LOG_DIR}: {e}"),
            )),
            _ => Ok(()),
        };
    }
    let _ = state_dir;
    Ok(())
}

/// The file `settings` log to: its `path`, or [`DEFAULT_FILE`] in
/// [`default_log_dir`].
pub fn log_path(settings: &LogSettings, state_dir: &Path) -> PathBuf {
    match &settings.path {
        Some(p) => PathBuf::from(p),
        None => default_log_dir(state_dir).join(DEFAULT_FILE),
    }
}

/// The writer configuration `settings` ask for: `None` when neither dropped
/// packets nor connections are logged (the file is then closed).
pub fn config_for(settings: &LogSettings, state_dir: &Path) -> Option<LogConfig> {
    (settings.dropped || settings.connections).then(|| LogConfig {
        path: log_path(settings, state_dir),
        max_size: settings.max_size,
        utc_offset_s: local_utc_offset(),
    })
}

/// Reads a size in bytes: `4096`, `4KiB`, `4MiB`, `1GiB` (also `K`, `KB`,
/// `M`, `MB`, `G`, `GB`, any case, all powers of 1024 as Windows counts
/// them). Says what is wrong otherwise.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let bad = || {
        format!("{text:?} is not a size: give bytes (4096) or a number with KiB, MiB or GiB (4MiB)")
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(bad()),
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Which decisions become log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogFilter {
    /// Log every dropped packet.
    pub dropped: bool,
    /// Log every accepted new connection (TCP SYN without ACK, UDP flows).
    pub connections: bool,
}

impl LogFilter {
    /// Whether this decision is logged.
    #[inline]
    pub fn wants(&self, decision: &Decision, walk: &Walk<'_>) -> bool {
        match decision.verdict() {
            Verdict::Drop => self.dropped,
            Verdict::Accept => {
                self.connections
                    && matches!(
                        decision.reason,
                        Reason::OpenPort | Reason::GlobalPort | Reason::Outbound
                    )
                    && match walk.upper() {
                        // SYN without ACK: a new TCP connection.
                        Upper::Tcp { flags, .. } => flags & 0x12 == 0x02,
                        // UDP: the writer logs a flow once a minute.
                        Upper::Udp { .. } => true,
                        _ => false,
                    }
            }
        }
    }
}

impl LogFilter {
    /// The log record for a decided packet, if the filter wants it. Cheap
    /// when it does not: the packet is walked again only for a verdict whose
    /// kind of logging is on.
    #[inline]
    pub fn record(
        &self,
        packet: &[u8],
        truncated: bool,
        decision: &Decision,
        direction: v6fw_engine::Direction,
        time_ns: u64,
    ) -> Option<LogRecord> {
        let maybe = match decision.verdict() {
            Verdict::Drop => self.dropped,
            Verdict::Accept => self.connections,
        };
        if !maybe {
            return None;
        }
        let w = v6fw_engine::walk::walk(packet, truncated);
        if !self.wants(decision, &w) {
            return None;
        }
        LogRecord::new(packet, &w, decision, direction, time_ns)
    }
}

/// Seconds east of UTC on this machine now (for `#Time Format: Local`).
pub fn local_utc_offset() -> i64 {
    #[cfg(unix)]
    {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let t = libc::time_t::try_from(now).unwrap_or(0);
        // SAFETY: `tm` is a plain C struct for which all-zero bytes are a valid
        // value; `localtime_r` writes only into it and reads only `t`, both
        // live locals, and is thread-safe (unlike `localtime`).
        let off = unsafe {
            let mut tm: libc::tm = std::mem::zeroed();
            if libc::localtime_r(&t, &mut tm).is_null() {
                0
            } else {
                tm.tm_gmtoff
            }
        };
        // `c_long` is 32 bits on some Unix targets.
        #[allow(clippy::useless_conversion)]
        i64::from(off)
    }
    #[cfg(not(unix))]
    {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("4 MiB"), Ok(4 << 20));
        assert_eq!(parse_size("4m"), Ok(4 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert!(parse_size("").is_err());
        assert!(parse_size("4 TiB").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999GiB").is_err());
    }

    #[test]
    fn config_follows_settings() {
        let mut s = LogSettings::default();
        assert_eq!(config_for(&s, Path::new("/var/lib/v6fw")), None);
        s.dropped = true;
        let c = config_for(&s, Path::new("/var/lib/v6fw"));
        assert_eq!(
            c.map(|c| c.path),
            Some(PathBuf::from("/var/lib/v6fw/pfirewall.log"))
        );
        s.path = Some("/tmp/x.log".into());
        assert_eq!(log_path(&s, Path::new("/d")), PathBuf::from("/tmp/x.log"));
    }

    #[cfg(unix)]
    #[test]
    fn the_default_state_dir_logs_to_var_log() {
        let s = LogSettings::default();
        let default = crate::store::default_state_dir();
        assert_eq!(default, PathBuf::from("/etc/v6fw"));
        assert_eq!(
            log_path(&s, &default),
            PathBuf::from("/var/log/v6fw/pfirewall.log")
        );
        // An explicit --state-dir keeps its log beside the policy.
        assert_eq!(
            log_path(&s, Path::new("/srv/fw")),
            PathBuf::from("/srv/fw/pfirewall.log")
        );
    }
}
