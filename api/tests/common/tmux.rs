//! A command in a tmux terminal: what it draws, for tests of terminal views.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Whether tmux can be run here (a test without it skips, saying so).
pub fn has_tmux() -> bool {
    let ok = Command::new("tmux")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIPPED: tmux is not installed");
    }
    ok
}

/// Runs `cmd` in a new 120x60 tmux server on socket `sock` and returns the
/// screen once it contains `until` (or after 10 s), escape sequences
/// included when `escapes`; the server is killed before returning.
pub fn screen(sock: &Path, cmd: &str, until: &str, escapes: bool) -> String {
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .arg("-S")
            .arg(sock)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let started = tmux(&["new-session", "-d", "-x", "120", "-y", "60", cmd]);
    assert!(
        started.status.success(),
        "tmux new-session {cmd}: {}",
        String::from_utf8_lossy(&started.stderr)
    );
    let capture: &[&str] = if escapes {
        &["capture-pane", "-p", "-e"]
    } else {
        &["capture-pane", "-p"]
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut screen = String::new();
    while Instant::now() < deadline && !screen.contains(until) {
        std::thread::sleep(Duration::from_millis(200));
        screen = String::from_utf8_lossy(&tmux(capture).stdout).into_owned();
    }
    let _ = tmux(&["kill-server"]);
    screen
}
