//! The firewall log writer: rotation at a tiny cap, a flood against a writer
//! that cannot write (the packet path never waits), settings followed at
//! runtime, and the per-decision hook the daemon's workers use.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use v6fw_api::log::{
    header, LogConfig, LogCounters, LogHook, LogRecord, LogWriter, TcpFields, SETTINGS_POLL,
};
use v6fw_engine::{Direction, Reason, Verdict};

fn record(i: u32) -> LogRecord {
    LogRecord {
        time_ns: 1_767_225_600_000_000_000 + u64::from(i) * 1_000_000,
        verdict: Verdict::Drop,
        reason: Reason::PortClosed,
        proto: Some(6),
        src: Some("2001:db8:2::20".parse::<Ipv6Addr>().unwrap().octets()),
        dst: Some("2001:db8:1::10".parse::<Ipv6Addr>().unwrap().octets()),
        sport: Some(40_000),
        dport: Some(9090),
        size: 60,
        tcp: Some(TcpFields {
            flags: 0x02,
            seq: i, // keeps every line distinct
            ack: 0,
            window: 65_535,
        }),
        icmp: None,
        direction: Direction::Inbound,
    }
}

fn line_len(i: u32) -> usize {
    let mut s = String::new();
    record(i).write_line(&mut s, 0);
    s.len()
}

fn config(path: &Path, max_size: u64) -> LogConfig {
    LogConfig {
        path: path.to_path_buf(),
        max_size,
        utc_offset_s: 0,
    }
}

/// The record lines of a log file (header lines left out); checks the header.
fn records_in(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    if text.is_empty() {
        return Vec::new();
    }
    assert!(
        text.starts_with(&header()),
        "{} has no header:\n{text}",
        path.display()
    );
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

fn old(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".old");
    PathBuf::from(s)
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

#[test]
fn log_rotates_once_at_a_1kib_cap_and_loses_nothing() {
    const CAP: u64 = 1024;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pfirewall.log");
    // Seq numbers 1000.. all print with 4 digits: every line is as long.
    let len = line_len(1000);
    let per_file = (CAP as usize - header().len()) / len;
    assert!(per_file >= 2, "a line of {len} bytes");
    let sent = u32::try_from(per_file + 3).unwrap();
    let (tx, writer) = LogWriter::spawn(config(&path, CAP), 1024).unwrap();
    for i in 0..sent {
        tx.send(record(1000 + i));
    }
    let lost = tx.lost();
    drop(tx);
    let stats = writer.finish().unwrap();
    assert_eq!(stats.rotations, 1, "{stats:?}");
    assert_eq!(stats.written + lost, u64::from(sent), "{stats:?}");
    let (older, newer) = (records_in(&old(&path)), records_in(&path));
    assert_eq!(
        older.len() + newer.len(),
        usize::try_from(stats.written).unwrap()
    );
    assert_eq!(
        older.len(),
        per_file,
        "the first file is full before it rotates"
    );
    // Every line in order, none twice: .old has the first ones.
    let all: Vec<&String> = older.iter().chain(&newer).collect();
    for (k, l) in all.iter().enumerate() {
        let want = format!(" S {} 0 65535 ", 1000 + k);
        assert!(l.contains(&want), "line {k}: {l}");
    }
    assert!(size(&path) <= CAP && size(&old(&path)) <= CAP);
}

#[test]
fn log_never_exceeds_its_cap_over_many_rotations() {
    const CAP: u64 = 1024;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fw.log");
    let (tx, writer) = LogWriter::spawn(config(&path, CAP), 64).unwrap();
    // Watch the sizes while the writer works.
    let watching = {
        let (p, o) = (path.clone(), old(&path));
        std::thread::spawn(move || {
            let mut biggest = 0;
            for _ in 0..200 {
                biggest = biggest.max(size(&p)).max(size(&o));
                std::thread::sleep(Duration::from_millis(1));
            }
            biggest
        })
    };
    for i in 0..2_000 {
        tx.send_blocking(record(10_000 + i));
    }
    drop(tx);
    let stats = writer.finish().unwrap();
    assert!(watching.join().unwrap() <= CAP);
    assert!(stats.rotations > 100, "{stats:?}");
    assert_eq!(stats.written, 2_000);
    assert!(size(&path) <= CAP && size(&old(&path)) <= CAP);
    // The last line written is the last line of the file.
    let last = records_in(&path).pop().unwrap();
    assert!(last.contains(" S 11999 0 "), "{last}");
}

#[cfg(unix)] // a FIFO (mkfifo) is what blocks the writer here: a Unix file type
#[test]
fn log_flood_against_a_blocked_writer_never_waits() {
    use std::ffi::CString;
    use std::io::Read;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::OpenOptionsExt;
    use std::sync::atomic::{AtomicBool, Ordering};

    const SENT: u64 = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pfirewall.log");
    let c = CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path that lives across the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // Held read-write (so the writer's open does not block) and never read
    // until the end: the writer blocks once the pipe buffer is full.
    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let (tx, writer) = LogWriter::spawn(config(&fifo, u64::MAX / 2), 16).unwrap();
    // The packet path: every send returns although nobody reads the log.
    for i in 0..SENT {
        tx.send(record(u32::try_from(i).unwrap()));
    }
    let lost = tx.lost();
    assert!(
        lost > 0,
        "a tiny queue in front of a blocked writer must lose lines"
    );
    assert!(lost < SENT);
    drop(tx);

    // Now drain the FIFO until the writer has finished.
    let done = Arc::new(AtomicBool::new(false));
    let draining = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let mut buf = [0u8; 65_536];
            loop {
                match reader.read(&mut buf) {
                    Ok(n) if n > 0 => bytes.extend_from_slice(&buf[..n]),
                    _ if done.load(Ordering::SeqCst) => break,
                    _ => std::thread::sleep(Duration::from_millis(1)),
                }
            }
            bytes
        })
    };
    let stats = writer.finish().unwrap();
    done.store(true, Ordering::SeqCst);
    let bytes = draining.join().unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let lines = text.lines().filter(|l| !l.starts_with('#')).count() as u64;
    assert_eq!(stats.written, lines);
    assert_eq!(stats.failed, 0);
    assert_eq!(stats.written + lost, SENT, "{stats:?}, lost {lost}");
    eprintln!("flood: {SENT} sent, {} written, {lost} lost", stats.written);
}

/// Waits (bounded) until `path` has `n` record lines.
fn wait_lines(path: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while records_in(path).len() < n {
        assert!(
            Instant::now() < deadline,
            "{} never got {n} lines",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn log_writer_follows_settings_at_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    let wanted = Arc::new(Mutex::new(Some(config(&a, 1 << 20))));
    let w = Arc::clone(&wanted);
    let counters = LogCounters::new();
    let (tx, writer) =
        LogWriter::spawn_watching(64, Arc::clone(&counters), move || w.lock().clone()).unwrap();
    let settle = || std::thread::sleep(SETTINGS_POLL * 3);
    for i in 0..3 {
        tx.send(record(i));
    }
    wait_lines(&a, 3);
    *wanted.lock() = Some(config(&b, 1 << 20));
    settle();
    for i in 3..5 {
        tx.send(record(i));
    }
    wait_lines(&b, 2);
    assert_eq!(records_in(&a).len(), 3);
    // A new cap applies without reopening: 1 KiB rotates b.log.
    *wanted.lock() = Some(config(&b, 1024));
    settle();
    for i in 5..25 {
        tx.send(record(i));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while counters.stats().written < 25 {
        assert!(Instant::now() < deadline, "{:?}", counters.stats());
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(counters.stats().rotations >= 1);
    assert!(size(&b) <= 1024);
    // Off: the file is closed, records are counted as not written.
    *wanted.lock() = None;
    settle();
    tx.send(record(99));
    drop(tx);
    let stats = writer.finish().unwrap();
    assert_eq!(stats.written, 25);
    assert_eq!(stats.failed, 1);
    assert_eq!(stats.lost, 0);
    assert_eq!(counters.stats(), stats);
}

#[test]
fn log_writer_reports_a_bad_path_and_keeps_going() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("no-such-dir").join("x.log");
    let good = dir.path().join("x.log");
    let wanted = Arc::new(Mutex::new(Some(config(&bad, 1 << 20))));
    let w = Arc::clone(&wanted);
    let (tx, writer) =
        LogWriter::spawn_watching(64, LogCounters::new(), move || w.lock().clone()).unwrap();
    tx.send(record(1));
    std::thread::sleep(SETTINGS_POLL);
    *wanted.lock() = Some(config(&good, 1 << 20));
    std::thread::sleep(SETTINGS_POLL * 3);
    tx.send(record(2));
    wait_lines(&good, 1);
    drop(tx);
    let stats = writer.finish().unwrap();
    assert_eq!((stats.written, stats.failed), (1, 1), "{stats:?}");
}

mod hook {
    use super::*;
    use v6fw_api::fw::{FirewallManager, LogChange};
    use v6fw_capture::backend::{decide_batch_with, Backend, CaptureError, Packet};
    use v6fw_engine::Policy;

    /// One batch of packets in memory.
    struct Batch(Vec<Vec<u8>>);

    impl Backend for Batch {
        fn recv_batch(&mut self, _: Duration) -> Result<usize, CaptureError> {
            Ok(self.0.len())
        }
        fn packet(&self, i: usize) -> Option<Packet<'_>> {
            self.0.get(i).map(|b| Packet {
                bytes: b,
                direction: Direction::Inbound,
                if_index: 3,
                truncated: false,
            })
        }
        fn send_verdicts(&mut self, _: &[Verdict]) -> Result<(), CaptureError> {
            Ok(())
        }
        fn name(&self) -> &str {
            "batch"
        }
    }

    fn syn(dport: u16) -> Vec<u8> {
        let b = etherparse::PacketBuilder::ipv6(
            "2001:db8:2::20".parse::<Ipv6Addr>().unwrap().octets(),
            "2001:db8:1::10".parse::<Ipv6Addr>().unwrap().octets(),
            64,
        )
        .tcp(40_000, dport, 7, 65_535)
        .syn();
        let mut out = Vec::new();
        b.write(&mut out, &[]).unwrap();
        out
    }

    #[test]
    fn log_hook_logs_what_the_current_settings_ask() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pfirewall.log");
        let mgr = FirewallManager::in_memory(Policy::default());
        let (tx, writer) = LogWriter::spawn(config(&path, 1 << 20), 64).unwrap();
        let mut hook = LogHook::new(tx, Arc::clone(mgr.shared_log_settings()));
        let engine = mgr.engine();
        let mut worker = engine.worker();
        let b = Batch(vec![syn(9090), syn(9091)]);
        let mut v = [Verdict::Accept; 2];
        let dropped = |on| {
            let change = LogChange {
                dropped: Some(on),
                ..LogChange::default()
            };
            assert!(mgr.set_log_settings(&change).unwrap(), "a change");
        };
        // Logging off: nothing.
        decide_batch_with(&b, engine, &mut worker, 1, &mut v, &mut hook);
        assert_eq!(v, [Verdict::Drop, Verdict::Drop]);
        // The setter reaches the running hook from its next batch...
        dropped(true);
        decide_batch_with(&b, engine, &mut worker, 2, &mut v, &mut hook);
        // ... and so does switching it off again.
        dropped(false);
        decide_batch_with(&b, engine, &mut worker, 3, &mut v, &mut hook);
        assert_eq!(v, [Verdict::Drop, Verdict::Drop]);
        drop(hook);
        let stats = writer.finish().unwrap();
        assert_eq!(stats.written, 2);
        let lines = records_in(&path);
        assert!(lines[0].contains(" DROP TCP 2001:db8:2::20 2001:db8:1::10 40000 9090 60 S 7 0 65535 - - port_closed RECEIVE"), "{lines:?}");
        assert!(lines[1].contains(" 9091 "), "{lines:?}");
    }
}
