//! The log writer: a bounded queue from the packet path to one writer thread.
//!
//! The packet path never waits on the log: [`LogSender::send`] is a
//! non-blocking `try_send` into a preallocated bounded channel; when the queue
//! is full the record is counted as lost, not waited for. The writer thread
//! formats lines, writes them, and rotates the file at the size cap the way
//! Windows Firewall does: the file is renamed to `FILE.old` (replacing an older
//! one) and a new file starts with the header. The file never grows past the
//! cap by even one line.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::record::{header, LogRecord};

/// Where and how much to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// The log file.
    pub path: PathBuf,
    /// Size cap in bytes; at the cap the file is renamed to `FILE.old`.
    pub max_size: u64,
    /// Seconds east of UTC for the `Local` time format.
    pub utc_offset_s: i64,
}

/// Records in the queue between the packet path and the writer.
pub const QUEUE_CAPACITY: usize = 8_192;

/// How long a UDP flow counts as "the same connection" for connection logging.
const UDP_FLOW_SECONDS: u64 = 60;

/// What the writer did, for `stats` and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Lines written.
    pub written: u64,
    /// Rotations to `FILE.old`.
    pub rotations: u64,
}

/// The packet path's end of the queue. Cheap to clone, one per worker.
#[derive(Clone)]
pub struct LogSender {
    tx: SyncSender<LogRecord>,
    lost: Arc<AtomicU64>,
}

impl LogSender {
    /// Queues a record without waiting; a full queue counts it as lost.
    #[inline]
    pub fn send(&self, record: LogRecord) {
        match self.tx.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.lost.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Queues a record, waiting for room: for offline use (replay), where
    /// nothing is gained by losing lines. Never call it on the live path.
    pub fn send_blocking(&self, record: LogRecord) {
        if self.tx.send(record).is_err() {
            self.lost.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records lost so far because the queue was full.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// The shared lost counter (for stats).
    pub fn lost_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.lost)
    }
}

/// The writer thread's handle.
pub struct LogWriter {
    handle: JoinHandle<io::Result<LogStats>>,
}

impl LogWriter {
    /// Starts the writer thread. The log file is opened (and its header
    /// written) before this returns, so a bad path is reported at once.
    pub fn spawn(config: LogConfig, capacity: usize) -> io::Result<(LogSender, LogWriter)> {
        let file = LogFile::open(config.clone())?;
        let (tx, rx) = sync_channel(capacity.max(1));
        let handle = std::thread::Builder::new()
            .name("v6fw-log".into())
            .spawn(move || file.run(&rx))?;
        Ok((
            LogSender {
                tx,
                lost: Arc::new(AtomicU64::new(0)),
            },
            LogWriter { handle },
        ))
    }

    /// Waits until every sender is dropped and the queue is drained.
    pub fn finish(self) -> io::Result<LogStats> {
        self.handle
            .join()
            .map_err(|_| io::Error::other("the log writer thread panicked"))?
    }
}

struct LogFile {
    config: LogConfig,
    out: BufWriter<File>,
    size: u64,
    stats: LogStats,
    /// UDP flows logged recently, to log a UDP "connection" once.
    udp_seen: HashMap<([u8; 16], [u8; 16], u16, u16), u64>,
    line: String,
}

fn open_append(path: &Path) -> io::Result<(File, u64)> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("{}: cannot open the log file: {e}", path.display()),
            )
        })?;
    let size = file.metadata()?.len();
    Ok((file, size))
}

impl LogFile {
    fn open(config: LogConfig) -> io::Result<LogFile> {
        let (file, size) = open_append(&config.path)?;
        let mut f = LogFile {
            config,
            out: BufWriter::new(file),
            size,
            stats: LogStats::default(),
            udp_seen: HashMap::new(),
            line: String::with_capacity(256),
        };
        if f.size == 0 {
            f.write_header()?;
        }
        Ok(f)
    }

    fn write_header(&mut self) -> io::Result<()> {
        let h = header();
        self.out.write_all(h.as_bytes())?;
        self.size += h.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.out.flush()?;
        let mut old = self.config.path.clone().into_os_string();
        old.push(".old");
        std::fs::rename(&self.config.path, &old)?;
        let (file, size) = open_append(&self.config.path)?;
        self.out = BufWriter::new(file);
        self.size = size;
        self.stats.rotations += 1;
        self.write_header()
    }

    /// Whether a record repeats a UDP flow logged in the last minute.
    fn repeated_udp(&mut self, r: &LogRecord) -> bool {
        let (Some(sport), Some(dport), Some(17)) = (r.sport, r.dport, r.proto) else {
            return false;
        };
        if r.verdict == v6fw_engine::Verdict::Drop {
            return false;
        }
        let now = r.time_ns / 1_000_000_000;
        if self.udp_seen.len() > 65_536 {
            self.udp_seen
                .retain(|_, t| now.saturating_sub(*t) < UDP_FLOW_SECONDS);
        }
        match self.udp_seen.insert((r.src, r.dst, sport, dport), now) {
            Some(t) => now.saturating_sub(t) < UDP_FLOW_SECONDS,
            None => false,
        }
    }

    fn write(&mut self, r: &LogRecord) -> io::Result<()> {
        if self.repeated_udp(r) {
            return Ok(());
        }
        self.line.clear();
        r.write_line(&mut self.line, self.config.utc_offset_s);
        let len = self.line.len() as u64;
        if self.size + len > self.config.max_size && self.size > header().len() as u64 {
            self.rotate()?;
        }
        self.out.write_all(self.line.as_bytes())?;
        self.size += len;
        self.stats.written += 1;
        Ok(())
    }

    fn run(mut self, rx: &Receiver<LogRecord>) -> io::Result<LogStats> {
        loop {
            match rx.recv_timeout(Duration::from_millis(500)) {
                Ok(r) => self.write(&r)?,
                Err(RecvTimeoutError::Timeout) => self.out.flush()?,
                Err(RecvTimeoutError::Disconnected) => break,
            }
            // Drain what is queued before flushing, one write per burst.
            while let Ok(r) = rx.try_recv() {
                self.write(&r)?;
            }
            self.out.flush()?;
        }
        self.out.flush()?;
        Ok(self.stats)
    }
}
