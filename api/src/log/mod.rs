//! Firewall logs in the Windows Firewall format (`pfirewall.log`).
//!
//! `INetFwV6Mgr` has `LogConnections`, `LogDroppedPackets`, `LogfilePath` and
//! `LogfileMaximumSize`; v6fw keeps the same four settings in its policy
//! ([`v6fw_engine::policy::LogSettings`]). A [`LogFilter`] picks on the packet
//! path which decisions become lines (every drop when dropped-packet logging
//! is on; each new accepted TCP connection or UDP flow when connection logging
//! is on), a [`LogSender`] queues them without ever waiting, and one
//! [`LogWriter`] thread writes and rotates the file.

mod record;
mod writer;

pub use record::{header, LogRecord, TcpFields};
pub use writer::{LogConfig, LogSender, LogStats, LogWriter, QUEUE_CAPACITY};

use v6fw_engine::walk::{Upper, Walk};
use v6fw_engine::{Decision, Reason, Verdict};

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
    pub fn wants(&self, decision: &Decision, walk: &Walk) -> bool {
        match decision.verdict() {
            Verdict::Drop => self.dropped,
            Verdict::Accept => {
                self.connections
                    && matches!(
                        decision.reason,
                        Reason::OpenPort | Reason::GlobalPort | Reason::Outbound
                    )
                    && match walk.upper {
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
