//! `v6fw stats` against a running control server: the one-shot view, the
//! live `--watch` view as JSON lines (`--json --watch --count 2`), and, when
//! tmux is installed, the redrawn terminal view. Reading needs no root.
//! On Windows the server is a named pipe; the tmux test is Unix-only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![cfg(any(unix, windows))]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use v6fw_api::fw::LogChange;
use v6fw_engine::{PacketMeta, Protocol};

mod common;

use common::{tcp_syn, Daemon, DaemonOptions};

impl Daemon {
    fn start() -> Daemon {
        Daemon::start_with(
            &DaemonOptions {
                prefix: "v6fw-stats-",
                dir_mode: None,
                socket: "control.sock",
                strict_stop: false,
            },
            |mgr| {
                mgr.open_global_port(8080, Protocol::Tcp, "web").unwrap();
                mgr.connection("test0")
                    .unwrap()
                    .open_port(22, Protocol::Tcp, "ssh")
                    .unwrap();
                mgr.set_log_settings(&LogChange {
                    dropped: Some(true),
                    ..LogChange::default()
                })
                .unwrap();
            },
        )
    }

    /// Decides `n` SYNs to `dport` on connection test0.
    fn traffic(&self, dport: u16, n: usize) {
        let syn = tcp_syn(dport);
        let engine = self.mgr.engine();
        let mut w = engine.worker();
        let snap = engine.table().pin();
        for _ in 0..n {
            w.decide(&snap, &syn, &PacketMeta::inbound(1000, 0));
        }
    }
}

fn stats(socket: &Path, extra: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_v6fw"))
        .arg("stats")
        .args(extra)
        .args(["--socket", socket.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    common::succeeded(out)
}

#[test]
fn stats_once_shows_reasons_log_and_open_ports() {
    let d = Daemon::start();
    d.traffic(9090, 3);
    d.traffic(8080, 2);
    let text = String::from_utf8(stats(&d.socket, &[]).stdout).unwrap();
    assert!(text.contains("packets 5  accepted 2  dropped 3"), "{text}");
    assert!(text.contains("port_closed"), "{text}");
    assert!(text.contains("lost (queue full)"), "{text}");
    assert!(text.contains("global: 8080/tcp"), "{text}");
    assert!(
        text.contains("test0 (index 1000, firewall on): own 22/tcp"),
        "{text}"
    );
    assert!(text.contains("log: dropped on, connections off"), "{text}");

    let json: Value = serde_json::from_slice(&stats(&d.socket, &["--json"]).stdout).unwrap();
    assert_eq!(json["dropped"], 3);
    assert_eq!(json["log"]["lost"], 0);
    assert_eq!(json["log"]["dropped"], true);
    assert_eq!(json["global_ports"][0]["port"], 8080);
    let test0 = json["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "test0")
        .unwrap();
    assert_eq!(test0["open"][0], "22/tcp");
}

#[test]
fn stats_watch_json_prints_one_object_per_second() {
    let d = Daemon::start();
    d.traffic(9090, 4);
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_v6fw"))
        .args(["stats", "--json", "--watch", "--count", "2"])
        .args(["--socket", d.socket.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    // Traffic between the two refreshes (once the first is printed), so the
    // rate is not zero, however long the command took to start.
    std::io::BufRead::read_line(&mut out, &mut text).unwrap();
    {
        let engine = d.mgr.engine();
        let mut w = engine.worker();
        let snap = engine.table().pin();
        for _ in 0..10 {
            w.decide(&snap, &[0x60, 0, 0], &PacketMeta::inbound(1000, 0));
        }
    }
    std::io::Read::read_to_string(&mut out, &mut text).unwrap();
    assert!(child.wait().unwrap().success());
    let took = started.elapsed();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        took >= Duration::from_millis(900),
        "refreshed every second: {took:?}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(lines[0]["packets"], 4);
    assert!(lines[0]["packets_per_s"].is_null());
    assert_eq!(lines[1]["packets"], 14);
    let rate = lines[1]["packets_per_s"].as_f64().unwrap();
    assert!(rate > 0.0 && rate <= 10.0 / 0.9, "{rate}");
    for l in &lines {
        assert!(l["log"]["lost"].is_u64(), "{l}");
        // The reasons as replay --json and run --json print them.
        assert!(
            l["reasons"].as_object().is_some_and(|r| r.len() > 10),
            "{l}"
        );
        assert!(l["reasons"]["open_port"].is_u64(), "{l}");
        assert_eq!(l["global_ports"][0]["port"], 8080);
    }
}

#[test]
#[cfg(unix)] // tmux
fn stats_watch_redraws_in_a_terminal() {
    if !common::tmux::has_tmux() {
        return;
    }
    let d = Daemon::start();
    d.traffic(9090, 2);
    let cmd = format!(
        "{} stats --watch --count 30 --socket {}",
        env!("CARGO_BIN_EXE_v6fw"),
        d.socket.display()
    );
    // Wait for the second frame (it has a rate) to be on the screen.
    let screen = common::tmux::screen(
        &d.socket.with_file_name("tmux.sock"),
        &cmd,
        "packets/s",
        false,
    );
    assert!(screen.contains("packets/s"), "{screen}");
    // Redrawn, not scrolled: one frame on the screen.
    assert_eq!(screen.matches("open ports:").count(), 1, "{screen}");
    assert!(screen.contains("port_closed"), "{screen}");
    // On a terminal each reason with traffic has its bar.
    let closed = screen
        .lines()
        .find(|l| l.contains("port_closed"))
        .unwrap_or_default();
    assert!(closed.contains('\u{2588}'), "{screen}");
}
