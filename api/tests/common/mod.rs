//! What several API test files share: a control-server fixture, a packet
//! builder and a check that a command succeeded. Each test file is its own crate and uses only part of it.
#![allow(dead_code, unused_imports, clippy::unwrap_used)]

#[cfg(any(unix, windows))]
mod daemon;
#[cfg(target_os = "linux")]
pub use v6fw_testkit::lab;
pub mod pcap;
#[cfg(any(unix, windows))]
mod root;
pub mod sample;
#[cfg(unix)]
pub mod tmux;

#[cfg(any(unix, windows))]
pub use daemon::{Daemon, DaemonOptions};
#[cfg(unix)]
pub use root::runnable_by_everyone;
#[cfg(any(unix, windows))]
pub use root::{is_root, root_or_skip};

/// A TCP SYN 2001:db8::1 port 40000 → 2001:db8::2 port `dport`.
pub fn tcp_syn(dport: u16) -> Vec<u8> {
    use v6fw_testkit::builders::{tcp_syn_pkt, LOCAL, REMOTE};
    tcp_syn_pkt(LOCAL, REMOTE, 40000, dport)
}

/// `out` itself if the command exited 0; otherwise fails with its exit
/// status, stdout and stderr (a process that printed nothing says so).
pub fn succeeded(out: std::process::Output) -> std::process::Output {
    assert!(
        out.status.success(),
        "exit {:?}; stdout: {:?}; stderr: {:?}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Whether this runs under Wine (ntdll exports `wine_get_version`), where
/// the check `why` names cannot be made: then the test says so and returns
/// early (.ci/windows.sh lists every such check).
#[cfg(windows)]
pub fn wine_skip(why: &str) -> bool {
    use windows::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
    // SAFETY: both strings are NUL-terminated literals; ntdll is always loaded.
    let wine = unsafe {
        GetModuleHandleW(windows::core::w!("ntdll.dll"))
            .map(|m| GetProcAddress(m, windows::core::s!("wine_get_version")).is_some())
            .unwrap_or(false)
    };
    if wine {
        eprintln!("note: under Wine, not checked: {why}");
    }
    wine
}
