//! One simulated WinDivert handle: hands out the packets of
//! `batch-0001.pkts`, `batch-0002.pkts`, ... in its directory, one receive
//! per file (or more, if a file holds more packets than the caller has
//! room for), checks what the caller re-injects, and logs every step to
//! `sim.log` in the same directory.
//!
//! The log, one line per event (appended, written at once):
//!
//! ```text
//! open filter="ipv6 and not loopback" layer=0 priority=0 flags=0
//! param 0 4096                                  <- WinDivertSetParam(param, value)
//! recv batch=1 packets=3                        <- a WinDivertRecvEx that returned 3
//! send batch=1 packets=2 bytes=132              <- a WinDivertSendEx of 2 packets
//! verdict batch=1 packet=0 in ifidx=3 accept    <- packet 0 of batch-0001 was re-injected
//! verdict batch=1 packet=1 in ifidx=3 drop      <- ... and this one was not
//! shutdown how=3
//! close
//! error ...                                     <- a misuse or a bad input file
//! ```
//!
//! The `verdict` lines of a receive are written when the caller asks for
//! the next one (the real driver has no such moment either: a packet not
//! re-injected is simply gone), or at close. So once `verdict batch=N`
//! lines are in the log, the caller has finished batch N.
//!
//! After the last file, a receive waits (looking every few milliseconds)
//! for the next file or for `WinDivertShutdown`, after which it fails with
//! `ERROR_NO_DATA`, as the driver does.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::address::Address;
use crate::input::{parse_batch, SimPacket};

/// `ERROR_INVALID_DATA`: a batch file that does not parse.
pub const ERROR_INVALID_DATA: u32 = 13;
/// `ERROR_INVALID_PARAMETER`: bad arguments, or a re-injected packet the
/// simulator never handed out.
pub const ERROR_INVALID_PARAMETER: u32 = 87;
/// `ERROR_INSUFFICIENT_BUFFER`: the next packet is larger than the buffer (it is lost).
pub const ERROR_INSUFFICIENT_BUFFER: u32 = 122;
/// `ERROR_NO_DATA`: the handle was shut down.
pub const ERROR_NO_DATA: u32 = 232;

/// How often a waiting receive looks for the next file or a shutdown.
const POLL: Duration = Duration::from_millis(5);

/// One packet handed out by the last receive, and whether it came back.
#[derive(Debug)]
struct Outstanding {
    batch: u32,
    index: usize,
    packet: SimPacket,
    reinjected: bool,
}

/// The mutable part of a handle.
#[derive(Debug)]
struct State {
    log: File,
    /// The number of the next batch file to read.
    next_batch: u32,
    /// Packets read from a file but not handed out yet: (batch, index, packet).
    pending: std::collections::VecDeque<(u32, usize, SimPacket)>,
    /// What the last receive handed out.
    outstanding: Vec<Outstanding>,
}

/// A simulated handle.
#[derive(Debug)]
pub struct Sim {
    dir: PathBuf,
    recv_shut: AtomicBool,
    send_shut: AtomicBool,
    state: Mutex<State>,
}

/// A receive's result: bytes written and packets (addresses) filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Bytes of packet data written to the buffer.
    pub bytes: usize,
    /// Packets (and addresses) written.
    pub packets: usize,
}

impl State {
    fn log(&mut self, line: &str) {
        // A log that cannot be written cannot report it either.
        let _ = writeln!(self.log, "{line}");
    }

    /// Logs the verdicts of what the last receive handed out.
    fn settle(&mut self) {
        let done = std::mem::take(&mut self.outstanding);
        for o in &done {
            let line = format!(
                "verdict batch={} packet={} {} ifidx={} {}",
                o.batch,
                o.index,
                if o.packet.outbound { "out" } else { "in" },
                o.packet.if_idx,
                if o.reinjected { "accept" } else { "drop" }
            );
            self.log(&line);
        }
    }
}

impl Sim {
    /// Opens a handle on `dir` (which must exist), logging the open.
    pub fn open(dir: &Path, open_line: &str) -> std::io::Result<Sim> {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("sim.log"))?;
        writeln!(log, "{open_line}")?;
        Ok(Sim {
            dir: dir.to_path_buf(),
            recv_shut: AtomicBool::new(false),
            send_shut: AtomicBool::new(false),
            state: Mutex::new(State {
                log,
                next_batch: 1,
                pending: std::collections::VecDeque::new(),
                outstanding: Vec::new(),
            }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Logs one line.
    pub fn log(&self, line: &str) {
        self.state().log(line);
    }

    /// The file of batch `n`.
    fn batch_path(&self, n: u32) -> PathBuf {
        self.dir.join(format!("batch-{n:04}.pkts"))
    }

    /// Reads the next batch file into `pending` if it exists. `Ok(false)`: not there (yet).
    fn load_next(&self, st: &mut State) -> Result<bool, u32> {
        let n = st.next_batch;
        let path = self.batch_path(n);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => {
                st.log(&format!(
                    "error batch={n}: cannot read {}: {e}",
                    path.display()
                ));
                return Err(ERROR_INVALID_DATA);
            }
        };
        st.next_batch += 1;
        match parse_batch(&text) {
            Ok(packets) => {
                st.pending
                    .extend(packets.into_iter().enumerate().map(|(i, p)| (n, i, p)));
                Ok(true)
            }
            Err(e) => {
                st.log(&format!("error batch={n}: {}: {e}", path.display()));
                Err(ERROR_INVALID_DATA)
            }
        }
    }

    /// `WinDivertRecvEx`: waits for packets, then copies as many as fit
    /// (at most `addrs.len()`) into `buf`, one address each.
    pub fn recv(&self, buf: &mut [u8], addrs: &mut [Address], now: i64) -> Result<Received, u32> {
        if addrs.is_empty() {
            self.log("error recv: no room for an address");
            return Err(ERROR_INVALID_PARAMETER);
        }
        self.state().settle();
        loop {
            if self.recv_shut.load(Ordering::Acquire) {
                return Err(ERROR_NO_DATA);
            }
            {
                let mut st = self.state();
                if !st.pending.is_empty() || self.load_next(&mut st)? {
                    if !st.pending.is_empty() {
                        return self.hand_out(&mut st, buf, addrs, now);
                    }
                    continue; // an empty file: look at the next one
                }
            }
            std::thread::sleep(POLL);
        }
    }

    fn hand_out(
        &self,
        st: &mut State,
        buf: &mut [u8],
        addrs: &mut [Address],
        now: i64,
    ) -> Result<Received, u32> {
        let mut at = 0usize;
        let mut n = 0usize;
        while let (Some((_, _, p)), Some(slot)) = (st.pending.front(), addrs.get_mut(n)) {
            let Some(dst) = buf.get_mut(at..at + p.bytes.len()) else {
                break;
            };
            dst.copy_from_slice(&p.bytes);
            *slot = Address::network(now, p.outbound, p.if_idx);
            at += p.bytes.len();
            n += 1;
            if let Some((batch, index, packet)) = st.pending.pop_front() {
                st.outstanding.push(Outstanding {
                    batch,
                    index,
                    packet,
                    reinjected: false,
                });
            }
        }
        if n == 0 {
            // The first packet does not fit: the driver loses it.
            if let Some((batch, index, p)) = st.pending.pop_front() {
                st.log(&format!(
                    "error batch={batch} packet={index}: {} bytes do not fit the {}-byte buffer: lost",
                    p.bytes.len(),
                    buf.len()
                ));
            }
            return Err(ERROR_INSUFFICIENT_BUFFER);
        }
        let batch = st.outstanding.first().map_or(0, |o| o.batch);
        st.log(&format!("recv batch={batch} packets={n}"));
        Ok(Received {
            bytes: at,
            packets: n,
        })
    }

    /// `WinDivertSendEx`: `bytes` holds `addrs.len()` packets, each of which
    /// must be one the last receive handed out (in order, with its address).
    pub fn send(&self, bytes: &[u8], addrs: &[Address]) -> Result<usize, u32> {
        if self.send_shut.load(Ordering::Acquire) {
            return Err(ERROR_NO_DATA);
        }
        let mut st = self.state();
        let mut at = 0usize;
        let mut next = 0usize;
        for (k, addr) in addrs.iter().enumerate() {
            let rest = bytes.get(at..).unwrap_or(&[]);
            let found = st
                .outstanding
                .iter()
                .enumerate()
                .skip(next)
                .find(|(_, o)| !o.reinjected && rest.starts_with(&o.packet.bytes))
                .map(|(i, _)| i);
            let Some(i) = found else {
                st.log(&format!(
                    "error send: packet {k} (at byte {at}) is none the last receive handed out"
                ));
                return Err(ERROR_INVALID_PARAMETER);
            };
            let Some(o) = st.outstanding.get_mut(i) else {
                return Err(ERROR_INVALID_PARAMETER);
            };
            if addr.outbound() != o.packet.outbound || addr.if_idx() != o.packet.if_idx {
                let line = format!(
                    "error send: packet {k} (batch {} packet {}) comes back with another address",
                    o.batch, o.index
                );
                st.log(&line);
                return Err(ERROR_INVALID_PARAMETER);
            }
            o.reinjected = true;
            at += o.packet.bytes.len();
            next = i + 1;
        }
        if at != bytes.len() {
            st.log(&format!(
                "error send: {} bytes after the {} packets",
                bytes.len() - at,
                addrs.len()
            ));
            return Err(ERROR_INVALID_PARAMETER);
        }
        let batch = st.outstanding.first().map_or(0, |o| o.batch);
        st.log(&format!(
            "send batch={batch} packets={} bytes={at}",
            addrs.len()
        ));
        Ok(at)
    }

    /// `WinDivertShutdown(how)`: 1 receive, 2 send, 3 both.
    pub fn shutdown(&self, how: u32) -> Result<(), u32> {
        if !(1..=3).contains(&how) {
            self.log(&format!("error shutdown: how={how} is not 1, 2 or 3"));
            return Err(ERROR_INVALID_PARAMETER);
        }
        if how & 1 != 0 {
            self.recv_shut.store(true, Ordering::Release);
        }
        if how & 2 != 0 {
            self.send_shut.store(true, Ordering::Release);
        }
        self.log(&format!("shutdown how={how}"));
        Ok(())
    }

    /// `WinDivertClose`: settles the last receive and logs the close.
    pub fn close(&self) {
        let mut st = self.state();
        st.settle();
        st.log("close");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn lines(dir: &Path) -> Vec<String> {
        std::fs::read_to_string(dir.join("sim.log"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn hands_out_batches_and_logs_what_came_back() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("batch-0001.pkts"),
            "in 3 600000000000\nout 4 6011\nin 3 60aabb\n",
        )
        .unwrap();
        let sim = Sim::open(dir.path(), "open").unwrap();
        let mut buf = [0u8; 64];
        let mut addrs = [Address::default(); 2];
        // Room for two addresses: the file's three packets take two receives.
        let got = sim.recv(&mut buf, &mut addrs, 7).unwrap();
        assert_eq!(
            got,
            Received {
                bytes: 8,
                packets: 2
            }
        );
        assert_eq!(&buf[..8], &[0x60, 0, 0, 0, 0, 0, 0x60, 0x11]);
        assert!(!addrs[0].outbound() && addrs[0].if_idx() == 3 && addrs[0].ipv6());
        assert!(addrs[1].outbound() && addrs[1].if_idx() == 4);
        assert_eq!(addrs[0].timestamp, 7);
        // Re-inject the second only.
        assert_eq!(sim.send(&buf[6..8], &addrs[1..2]), Ok(2));
        let got = sim.recv(&mut buf, &mut addrs, 8).unwrap();
        assert_eq!(
            got,
            Received {
                bytes: 3,
                packets: 1
            }
        );
        sim.close();
        assert_eq!(
            lines(dir.path()),
            [
                "open",
                "recv batch=1 packets=2",
                "send batch=1 packets=1 bytes=2",
                "verdict batch=1 packet=0 in ifidx=3 drop",
                "verdict batch=1 packet=1 out ifidx=4 accept",
                "recv batch=1 packets=1",
                "verdict batch=1 packet=2 in ifidx=3 drop",
                "close",
            ]
        );
    }

    #[test]
    fn refuses_a_packet_it_never_handed_out() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("batch-0001.pkts"), "in 1 6000\n").unwrap();
        let sim = Sim::open(dir.path(), "open").unwrap();
        let mut buf = [0u8; 8];
        let mut addrs = [Address::default(); 1];
        sim.recv(&mut buf, &mut addrs, 0).unwrap();
        assert_eq!(
            sim.send(&[0x60, 0x01], &addrs),
            Err(ERROR_INVALID_PARAMETER)
        );
        let moved = [Address::network(0, true, 1)];
        assert_eq!(sim.send(&[0x60, 0], &moved), Err(ERROR_INVALID_PARAMETER));
        assert!(lines(dir.path())
            .iter()
            .any(|l| l.contains("comes back with another address")));
    }

    #[test]
    fn waits_for_the_next_file_then_fails_after_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let sim = std::sync::Arc::new(Sim::open(dir.path(), "open").unwrap());
        let waiting = std::sync::Arc::clone(&sim);
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 8];
            let mut addrs = [Address::default(); 1];
            let first = waiting.recv(&mut buf, &mut addrs, 0);
            let second = waiting.recv(&mut buf, &mut addrs, 0);
            (first, second)
        });
        // Written as the crate's docs say (another name, then a rename): the
        // receive is already polling, and a file it found empty it would skip.
        let tmp = dir.path().join("next.tmp");
        std::fs::write(&tmp, "out 2 60\n").unwrap();
        std::fs::rename(&tmp, dir.path().join("batch-0001.pkts")).unwrap();
        // The second receive waits (no batch-0002) until the shutdown.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !lines(dir.path()).iter().any(|l| l.starts_with("recv")) {
            assert!(
                std::time::Instant::now() < deadline,
                "the first batch was not received within 30 s: {:?}",
                lines(dir.path())
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        sim.shutdown(3).unwrap();
        let (first, second) = t.join().unwrap();
        assert_eq!(
            first,
            Ok(Received {
                bytes: 1,
                packets: 1
            })
        );
        assert_eq!(second, Err(ERROR_NO_DATA));
        assert_eq!(
            sim.send(&[0x60], &[Address::network(0, true, 2)]),
            Err(ERROR_NO_DATA)
        );
        assert_eq!(sim.shutdown(9), Err(ERROR_INVALID_PARAMETER));
    }

    #[test]
    fn a_bad_file_fails_the_receive_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("batch-0001.pkts"), "up 1 60\n").unwrap();
        let sim = Sim::open(dir.path(), "open").unwrap();
        let mut buf = [0u8; 8];
        let mut addrs = [Address::default(); 1];
        assert_eq!(sim.recv(&mut buf, &mut addrs, 0), Err(ERROR_INVALID_DATA));
        assert!(lines(dir.path())
            .iter()
            .any(|l| l.starts_with("error batch=1:") && l.contains("line 1")));
    }
}
