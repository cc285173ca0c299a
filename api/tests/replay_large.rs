//! Replay streams: a capture of 5 million packets is replayed in the same
//! memory as one of 50 thousand. The capture is generated in a temporary
//! directory (about 400 MB), never committed. The speed of replay is a
//! measurement, reported in docs/benchmarks.md, not asserted here.
//!
//! The peak memory of each replay is its child process's: on Unix the
//! largest `ru_maxrss` of `getrusage(RUSAGE_CHILDREN)` (this file holds one
//! test so that it sees only these two replays), on Windows the process's
//! `PeakWorkingSetSize` (`GetProcessMemoryInfo` on its handle).
#![cfg(any(unix, windows))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

/// A few packet shapes: TCP SYNs to open and closed ports, UDP, ICMPv6 echo.
fn templates() -> Vec<Vec<u8>> {
    let src = [
        0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20,
    ];
    let dst = [
        0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mac = [2, 0, 0, 0, 0, 1];
    let mut out = Vec::new();
    for dport in [22u16, 8080] {
        let mut v = Vec::new();
        etherparse::PacketBuilder::ethernet2(mac, mac)
            .ipv6(src, dst, 64)
            .tcp(40000, dport, 1, 65535)
            .syn()
            .write(&mut v, &[])
            .unwrap();
        out.push(v);
    }
    let mut v = Vec::new();
    etherparse::PacketBuilder::ethernet2(mac, mac)
        .ipv6(src, dst, 64)
        .udp(5353, 53)
        .write(&mut v, b"query")
        .unwrap();
    out.push(v);
    let mut v = Vec::new();
    etherparse::PacketBuilder::ethernet2(mac, mac)
        .ipv6(src, dst, 64)
        .icmpv6_echo_request(1, 1)
        .write(&mut v, b"ping")
        .unwrap();
    out.push(v);
    out
}

fn write_capture(path: &Path, packets: u64) {
    let mut f = common::pcap::PcapWriter::create(path, common::pcap::ETHERNET);
    let t = templates();
    for i in 0..packets {
        let p = &t[(i % t.len() as u64) as usize];
        let sec = 1_767_225_600 + (i / 1_000_000) as u32;
        f.frame(sec, (i % 1_000_000) as u32, p);
    }
    f.finish();
}

/// Largest resident set of any child waited for so far, in KiB.
#[cfg(unix)]
fn peak_rss_kib(_child: &std::process::Child) -> i64 {
    // SAFETY: `usage` is a plain C struct for which all-zero bytes are valid;
    // getrusage only writes into it.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage), 0);
        usage.ru_maxrss
    }
}

/// The peak working set of `child` (exited, its handle still open), in KiB.
#[cfg(windows)]
fn peak_rss_kib(child: &std::process::Child) -> i64 {
    use std::os::windows::io::AsRawHandle;
    use windows::Win32::Foundation::HANDLE;
    use windows::Win32::System::ProcessStatus::{GetProcessMemoryInfo, PROCESS_MEMORY_COUNTERS};
    let mut counters = PROCESS_MEMORY_COUNTERS::default();
    let size = u32::try_from(std::mem::size_of::<PROCESS_MEMORY_COUNTERS>()).unwrap();
    // SAFETY: the handle is the child's, open until `child` is dropped;
    // `counters` is writable for `size` bytes.
    let ok = unsafe {
        GetProcessMemoryInfo(HANDLE(child.as_raw_handle() as isize), &mut counters, size)
    };
    assert!(ok.as_bool(), "GetProcessMemoryInfo failed");
    i64::try_from(counters.PeakWorkingSetSize / 1024).unwrap()
}

/// Replays `path`; its JSON summary and its peak memory in KiB.
fn replay(path: &Path) -> (String, i64) {
    let child = Command::new(env!("CARGO_BIN_EXE_v6fw"))
        .args([
            "replay",
            path.to_str().unwrap(),
            "--open",
            "22/tcp",
            "--json",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = String::new();
    let mut stderr = String::new();
    let mut child = child;
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "replay failed ({status}): {stderr}");
    let rss = peak_rss_kib(&child);
    (stdout, rss)
}

#[test]
fn five_million_packets_in_constant_memory() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.pcap");
    let large = dir.path().join("large.pcap");
    write_capture(&small, 50_000);
    let n: u64 = 5_000_000;
    write_capture(&large, n);

    let (s, small_rss) = replay(&small);
    let (l, large_rss) = replay(&large);
    std::fs::remove_file(&large).unwrap();

    let v: serde_json::Value = serde_json::from_str(&l).unwrap();
    assert_eq!(v["packets"], n);
    assert_eq!(v["reasons"]["open_port"], n / 4);
    assert_eq!(
        v["reasons"]["port_closed"],
        2 * n / 4,
        "8080/tcp and 53/udp"
    );
    assert_eq!(v["reasons"]["icmp_allowed"], n / 4);
    let sv: serde_json::Value = serde_json::from_str(&s).unwrap();
    assert_eq!(sv["packets"], 50_000);
    // 100 times the packets, the same memory (a little slack for the allocator).
    println!("max RSS: {small_rss} KiB for 50,000 packets, {large_rss} KiB for {n}");
    #[cfg(windows)]
    if small_rss == 0
        && common::wine_skip("the peak memory of an exited child (Wine reports 0 for it)")
    {
        return;
    }
    assert!(small_rss > 0, "no peak memory was measured");
    assert!(
        large_rss <= small_rss + 4 * 1024,
        "replay memory grew with the capture: {small_rss} KiB -> {large_rss} KiB"
    );
}
