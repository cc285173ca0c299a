//! The log writer: a bounded queue from the packet path to one writer thread.
//!
//! The packet path never waits on the log: [`LogSender::send`] is a
//! non-blocking `try_send` into a preallocated bounded channel; when the queue
//! is full the record is counted as lost, not waited for. The writer thread
//! never sleeps *inside* the channel: it drains what is queued, then sleeps a
//! few milliseconds on its own and looks again. So no sender ever has a
//! sleeping receiver to wake, and `send` stays a few atomic operations with no
//! system call.
//!
//! The writer formats lines, writes them, and rotates the file at the size cap
//! the way Windows Firewall does: the file is renamed to `FILE.old` (replacing
//! an older one) and a new file starts with the header. The file never grows
//! past the cap by even one line.
//!
//! Two kinds of writer: [`LogWriter::spawn`] writes one file with one
//! configuration (replay; an I/O error ends it), and
//! [`LogWriter::spawn_watching`] asks a closure every
//! [`SETTINGS_POLL`] what the configuration is now (the daemon: the current
//! policy's `logging`), and opens, reopens, re-caps or closes the file to
//! match; an I/O error there is reported and retried, never fatal.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::file::LogDir;
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

/// How often a watching writer asks for the current settings.
pub const SETTINGS_POLL: Duration = Duration::from_millis(500);

/// Longest the writer sleeps when the queue is empty.
const IDLE_SLEEP_MAX: Duration = Duration::from_millis(50);

/// Shortest sleep between two looks at the queue.
const IDLE_SLEEP_MIN: Duration = Duration::from_millis(2);

/// How often a record that finds no open file makes the writer re-read the
/// settings (so a failing path is not retried per record).
const RETRY_INTERVAL: Duration = Duration::from_millis(50);

/// How long a UDP flow counts as "the same connection" for connection logging.
const UDP_FLOW_SECONDS: u64 = 60;

/// What the writer did, for `stats` and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Lines written.
    pub written: u64,
    /// Rotations to `FILE.old`.
    pub rotations: u64,
    /// Records the packet path could not queue (the queue was full).
    pub lost: u64,
    /// Records the writer could not write: no log file open (logging being
    /// switched off, or the file could not be opened) or a write error.
    pub failed: u64,
}

/// The log's live counters, shared by the senders, the writer and `stats`.
#[derive(Debug, Default)]
pub struct LogCounters {
    written: AtomicU64,
    rotations: AtomicU64,
    lost: AtomicU64,
    failed: AtomicU64,
}

impl LogCounters {
    /// New counters at zero.
    pub fn new() -> Arc<LogCounters> {
        Arc::new(LogCounters::default())
    }

    /// The counts now.
    pub fn stats(&self) -> LogStats {
        LogStats {
            written: self.written.load(Ordering::Relaxed),
            rotations: self.rotations.load(Ordering::Relaxed),
            lost: self.lost.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// The packet path's end of the queue. Cheap to clone, one per worker.
#[derive(Clone)]
pub struct LogSender {
    tx: SyncSender<LogRecord>,
    counters: Arc<LogCounters>,
}

impl std::fmt::Debug for LogSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogSender")
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl LogSender {
    /// Queues a record without waiting; a full queue counts it as lost.
    #[inline]
    pub fn send(&self, record: LogRecord) {
        match self.tx.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                LogCounters::add(&self.counters.lost, 1);
            }
        }
    }

    /// Queues a record, waiting for room: for offline use (replay), where
    /// nothing is gained by losing lines. Never call it on the live path.
    pub fn send_blocking(&self, record: LogRecord) {
        if self.tx.send(record).is_err() {
            LogCounters::add(&self.counters.lost, 1);
        }
    }

    /// Records lost so far because the queue was full.
    pub fn lost(&self) -> u64 {
        self.counters.lost.load(Ordering::Relaxed)
    }

    /// The shared counters (for stats).
    pub fn counters(&self) -> &Arc<LogCounters> {
        &self.counters
    }
}

/// The writer thread's handle.
#[derive(Debug)]
pub struct LogWriter {
    handle: JoinHandle<io::Result<LogStats>>,
}

/// Where a writer's configuration comes from.
enum Settings {
    /// One file, fixed; an I/O error ends the writer.
    Fixed,
    /// Asked every [`SETTINGS_POLL`]; `None` means logging is off.
    Watch(Box<dyn FnMut() -> Option<LogConfig> + Send>),
}

impl LogWriter {
    /// Starts the writer thread. The log file is opened (and its header
    /// written) before this returns, so a bad path is reported at once.
    pub fn spawn(config: LogConfig, capacity: usize) -> io::Result<(LogSender, LogWriter)> {
        let counters = LogCounters::new();
        let file = LogFile::open(config)?;
        Self::start(Some(file), None, Settings::Fixed, capacity, counters, None)
    }

    /// Starts a writer that follows changing settings: `current` is called
    /// now and every [`SETTINGS_POLL`] and says where and how much to log
    /// (`None`: logging is off, the file is closed). A new path is opened
    /// (the old file closed), a new cap applies from the next line. A file
    /// that cannot be opened or written is reported (`tracing::warn!`, once
    /// per distinct error) and retried at the next poll; records that find
    /// no open file count as `failed`.
    pub fn spawn_watching<F>(
        capacity: usize,
        counters: Arc<LogCounters>,
        mut current: F,
    ) -> io::Result<(LogSender, LogWriter)>
    where
        F: FnMut() -> Option<LogConfig> + Send + 'static,
    {
        let want = current();
        let mut last_error = None;
        let file = want
            .clone()
            .and_then(|c| open_reporting(c, &mut last_error));
        let settings = Settings::Watch(Box::new(current));
        // `last_error` goes along so the thread does not repeat the warning.
        Self::start(file, want, settings, capacity, counters, last_error)
    }

    fn start(
        file: Option<LogFile>,
        want: Option<LogConfig>,
        settings: Settings,
        capacity: usize,
        counters: Arc<LogCounters>,
        last_error: Option<String>,
    ) -> io::Result<(LogSender, LogWriter)> {
        let (tx, rx) = sync_channel(capacity.max(1));
        let state = Writer {
            file,
            want,
            settings,
            udp_seen: HashMap::new(),
            line: String::with_capacity(256),
            counters: Arc::clone(&counters),
            last_error,
            next_retry: Instant::now(),
        };
        let handle = std::thread::Builder::new()
            .name("v6fw-log".into())
            .spawn(move || state.run(&rx))?;
        Ok((LogSender { tx, counters }, LogWriter { handle }))
    }

    /// Waits until every sender is dropped and the queue is drained.
    pub fn finish(self) -> io::Result<LogStats> {
        self.handle
            .join()
            .map_err(|_| io::Error::other("the log writer thread panicked"))?
    }
}

/// Opens `config`'s file; on failure warns (unless the same error was
/// reported last time) and returns `None`.
fn open_reporting(config: LogConfig, last_error: &mut Option<String>) -> Option<LogFile> {
    match LogFile::open(config) {
        Ok(f) => {
            *last_error = None;
            Some(f)
        }
        Err(e) => {
            let msg = e.to_string();
            if last_error.as_deref() != Some(msg.as_str()) {
                tracing::warn!(
                    "firewall log: {msg}; fix the directory or its rights, or choose another file with `v6fw log set --path FILE`; retrying every {} ms",
                    SETTINGS_POLL.as_millis()
                );
            }
            *last_error = Some(msg);
            None
        }
    }
}

/// One open log file.
struct LogFile {
    config: LogConfig,
    /// Its directory, held open: the file is opened and rotated relative
    /// to it (see [`super::file`]).
    dir: LogDir,
    out: BufWriter<File>,
    size: u64,
}

impl LogFile {
    fn open(config: LogConfig) -> io::Result<LogFile> {
        let dir = LogDir::open(&config.path)?;
        let (file, size) = dir.open_append()?;
        let mut f = LogFile {
            config,
            dir,
            out: BufWriter::new(file),
            size,
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
        self.dir.rename_to_old()?;
        let (file, size) = self.dir.open_append()?;
        self.out = BufWriter::new(file);
        self.size = size;
        self.write_header()
    }

    /// Writes one formatted line, rotating first if it would pass the cap.
    /// Returns whether it rotated.
    fn write_line(&mut self, line: &str) -> io::Result<bool> {
        let len = line.len() as u64;
        let rotate = self.size + len > self.config.max_size && self.size > header().len() as u64;
        if rotate {
            self.rotate()?;
        }
        self.out.write_all(line.as_bytes())?;
        self.size += len;
        Ok(rotate)
    }
}

/// The writer thread's state.
struct Writer {
    file: Option<LogFile>,
    /// The configuration asked for (the file may have failed to open).
    want: Option<LogConfig>,
    settings: Settings,
    /// UDP flows logged recently, to log a UDP "connection" once.
    udp_seen: HashMap<([u8; 16], [u8; 16], u16, u16), u64>,
    line: String,
    counters: Arc<LogCounters>,
    last_error: Option<String>,
    /// No earlier than this, a record finding no file re-reads the settings.
    next_retry: Instant,
}

impl Writer {
    /// Whether a record repeats a UDP flow logged in the last minute.
    fn repeated_udp(&mut self, r: &LogRecord) -> bool {
        let (Some(src), Some(dst), Some(sport), Some(dport), Some(17)) =
            (r.src, r.dst, r.sport, r.dport, r.proto)
        else {
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
        match self.udp_seen.insert((src, dst, sport, dport), now) {
            Some(t) => now.saturating_sub(t) < UDP_FLOW_SECONDS,
            None => false,
        }
    }

    fn write(&mut self, r: &LogRecord) -> io::Result<()> {
        if self.repeated_udp(r) {
            return Ok(());
        }
        if self.file.is_none() && Instant::now() >= self.next_retry {
            // Logging may have just been switched on: the packet path sees a
            // new policy from its next batch, the writer only at its next
            // poll. Look now rather than lose the first lines.
            self.next_retry = Instant::now() + RETRY_INTERVAL;
            self.poll_settings()?;
        }
        let Some(file) = self.file.as_mut() else {
            LogCounters::add(&self.counters.failed, 1);
            return Ok(());
        };
        self.line.clear();
        r.write_line(&mut self.line, file.config.utc_offset_s);
        match file.write_line(&self.line) {
            Ok(rotated) => {
                LogCounters::add(&self.counters.written, 1);
                LogCounters::add(&self.counters.rotations, u64::from(rotated));
                Ok(())
            }
            Err(e) => {
                LogCounters::add(&self.counters.failed, 1);
                self.fail(e)
            }
        }
    }

    /// An I/O error on the open file: fatal for a fixed writer; a watching
    /// one reports it, closes the file and reopens at the next poll.
    fn fail(&mut self, e: io::Error) -> io::Result<()> {
        if matches!(self.settings, Settings::Fixed) {
            return Err(e);
        }
        let msg = e.to_string();
        if self.last_error.as_deref() != Some(msg.as_str()) {
            tracing::warn!("firewall log: write failed: {msg}; retrying");
        }
        self.last_error = Some(msg);
        self.file = None;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        match file.out.flush() {
            Ok(()) => Ok(()),
            Err(e) => self.fail(e),
        }
    }

    /// Asks for the current settings and brings the file in line with them.
    fn poll_settings(&mut self) -> io::Result<()> {
        let Settings::Watch(current) = &mut self.settings else {
            return Ok(());
        };
        let want = current();
        let same_file = match (&self.file, &want) {
            (Some(f), Some(w)) => f.config.path == w.path,
            _ => false,
        };
        if same_file {
            if let (Some(f), Some(w)) = (self.file.as_mut(), want.as_ref()) {
                // A new cap or UTC offset applies from the next line.
                f.config.clone_from(w);
            }
        } else if want != self.want || (self.file.is_none() && want.is_some()) {
            self.flush()?;
            self.file = None;
            if let Some(w) = want.clone() {
                self.file = open_reporting(w, &mut self.last_error);
                if let Some(f) = &self.file {
                    tracing::info!(
                        "firewall log: writing {} (cap {} bytes)",
                        f.config.path.display(),
                        f.config.max_size
                    );
                }
            }
        }
        self.want = want;
        Ok(())
    }

    fn run(mut self, rx: &Receiver<LogRecord>) -> io::Result<LogStats> {
        let mut next_poll = Instant::now() + SETTINGS_POLL;
        let mut sleep = IDLE_SLEEP_MIN;
        loop {
            // Drain what is queued, then flush once per burst.
            let mut got = 0u64;
            let disconnected = loop {
                match rx.try_recv() {
                    Ok(r) => {
                        self.write(&r)?;
                        got += 1;
                    }
                    Err(TryRecvError::Empty) => break false,
                    Err(TryRecvError::Disconnected) => break true,
                }
            };
            if got > 0 || disconnected {
                self.flush()?;
            }
            if disconnected {
                break;
            }
            if Instant::now() >= next_poll {
                self.poll_settings()?;
                next_poll = Instant::now() + SETTINGS_POLL;
            }
            sleep = if got > 0 {
                IDLE_SLEEP_MIN
            } else {
                (sleep * 2).min(IDLE_SLEEP_MAX)
            };
            std::thread::sleep(sleep);
        }
        Ok(self.counters.stats())
    }
}
