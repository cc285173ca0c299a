//! One command line: errors as JSON with `--json`, one size syntax, one JSON
//! shape for per-reason counts, colour only on a terminal and never with
//! `NO_COLOR`. On Windows the daemon is a named pipe; the colour test needs
//! tmux, a Unix terminal multiplexer, and is Unix's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![cfg(any(unix, windows))]

use std::process::{Command, Output, Stdio};

use serde_json::Value;
use v6fw_engine::{PacketMeta, Protocol};

mod common;

use common::sample::sample;
use common::{root_or_skip, tcp_syn, Daemon, DaemonOptions};

fn v6fw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_v6fw"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The one JSON object a failed `--json` command wrote to stderr.
fn json_error(out: &Output) -> Value {
    assert!(!out.status.success());
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    serde_json::from_str(&err).unwrap_or_else(|e| panic!("{e}: {err}"))
}

fn start_daemon() -> Daemon {
    let d = Daemon::start_with(
        &DaemonOptions {
            prefix: "v6fw-cli-",
            dir_mode: None,
            socket: "control.sock",
            strict_stop: false,
        },
        |mgr| {
            mgr.connection("test0")
                .unwrap()
                .open_port(22, Protocol::Tcp, "ssh")
                .unwrap();
        },
    );
    let engine = d.mgr.engine();
    let mut w = engine.worker();
    let snap = engine.table().pin();
    for dport in [22, 9090, 9091] {
        w.decide(&snap, &tcp_syn(dport), &PacketMeta::inbound(1000, 0));
    }
    d
}

#[test]
fn errors_are_one_json_object_on_stderr_with_json() {
    let s = sample();
    let s = s.to_str().unwrap();
    let e = json_error(&v6fw(&["replay", "/nonexistent/x.pcap", "--json"]));
    assert_eq!(e["code"], "E_FAIL");
    assert!(
        e["error"].as_str().unwrap().contains("/nonexistent/x.pcap"),
        "{e}"
    );
    let e = json_error(&v6fw(&["replay", s, "--json", "--explain", "99"]));
    assert!(
        e["error"].as_str().unwrap().contains("only 28 frames"),
        "{e}"
    );
    // A bad value is an invalid argument, as the API's errors say it.
    let out = v6fw(&["replay", s, "--json", "--open", "0/tcp"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "clap's exit code for a usage error"
    );
    let e = json_error(&out);
    assert_eq!(e["code"], "E_INVALIDARG");
    assert_eq!(e["hresult"], 0x8007_0057u32);
    assert!(
        e["error"].as_str().unwrap().contains("port 0 is not valid"),
        "{e}"
    );
    let e = json_error(&v6fw(&["replay", s, "--json", "--no-such-option"]));
    assert_eq!(e["code"], "E_INVALIDARG");
    let e = json_error(&v6fw(&[
        "stats",
        "--json",
        "--socket",
        "/nonexistent/v6fw.sock",
    ]));
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("no v6fw daemon is running"),
        "{e}"
    );
    // `check --json` of a bad file: the same object, each error listed.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("policy.toml");
    std::fs::write(&bad, "[globals]\n\"0/tcp\" = \"zero\"\nnot_a_key = 1\n").unwrap();
    let e = json_error(&v6fw(&["check", bad.to_str().unwrap(), "--json"]));
    assert_eq!(e["code"], "E_INVALIDARG");
    assert!(e["error"].as_str().unwrap().contains("is not valid"), "{e}");
    assert!(e["errors"][0]["line"].as_u64().unwrap() >= 1, "{e}");
    // Without --json: the text a person reads.
    let out = v6fw(&["replay", "/nonexistent/x.pcap"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("v6fw: /nonexistent/x.pcap"), "{err}");
}

#[test]
fn one_size_syntax_for_every_size_option() {
    // The same words are refused the same way by both options.
    let s = sample();
    let log = tempfile::tempdir().unwrap();
    let log_file = log.path().join("pfirewall.log");
    let replay_err = v6fw(&[
        "replay",
        s.to_str().unwrap(),
        "--log",
        log_file.to_str().unwrap(),
        "--log-max-size",
        "4 parsecs",
    ]);
    let set_err = v6fw(&["log", "set", "--max-size", "4 parsecs"]);
    for out in [&replay_err, &set_err] {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("\"4 parsecs\" is not a size"), "{err}");
    }
    if !root_or_skip("one_size_syntax_for_every_size_option") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // Nothing serves it: the commands change the policy file themselves.
    #[cfg(unix)]
    let sock = dir.path().join("control.sock");
    #[cfg(windows)]
    let sock = std::path::PathBuf::from(format!(
        r"\\.\pipe\v6fw-sizes-{}",
        dir.path().file_name().unwrap().to_string_lossy()
    ));
    let place = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--state-dir", state.to_str().unwrap()]);
        all.extend(["--socket", sock.to_str().unwrap()]);
        v6fw(&all)
    };
    // K/M/G, KB/MB/GB and KiB/MiB/GiB all count in powers of 1024.
    for (size, bytes) in [
        ("4MiB", 4u64 << 20),
        ("4M", 4 << 20),
        ("4MB", 4 << 20),
        ("4 mb", 4 << 20),
        ("2KiB", 2048),
        ("1G", 1 << 30),
        ("5000", 5000),
    ] {
        let out = place(&["log", "set", "--max-size", size]);
        assert!(
            out.status.success(),
            "{size}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let shown: Value =
            serde_json::from_slice(&place(&["log", "show", "--json"]).stdout).unwrap();
        assert_eq!(shown["max_size"], bytes, "{size}");
    }
}

#[test]
fn per_reason_counts_have_one_json_shape() {
    let s = sample();
    let out = v6fw(&[
        "replay",
        s.to_str().unwrap(),
        "--open",
        "22/tcp,53/udp",
        "--json",
    ]);
    let replayed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = start_daemon();
    let out = v6fw(&["stats", "--json", "--socket", d.socket.to_str().unwrap()]);
    let stats: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let (r, s) = (
        replayed["reasons"].as_object().unwrap(),
        stats["reasons"].as_object().unwrap(),
    );
    // Every reason, by name, to its count: the same keys in both.
    assert_eq!(r.len(), v6fw_engine::Reason::COUNT);
    assert_eq!(r.keys().collect::<Vec<_>>(), s.keys().collect::<Vec<_>>());
    assert_eq!(r["not_ipv6"], 1);
    assert_eq!(s["open_port"], 1);
    assert_eq!(s["port_closed"], 2);
}

#[cfg(unix)]
/// What `v6fw stats --watch` draws in a tmux terminal, escape sequences
/// included, run under `env ENV`; None without tmux.
fn watch_screen(d: &Daemon, env: &str) -> Option<String> {
    if !common::tmux::has_tmux() {
        return None;
    }
    let cmd = format!(
        "env {env} {} stats --watch --count 30 --socket {}",
        env!("CARGO_BIN_EXE_v6fw"),
        d.socket.display()
    );
    // One tmux server per view: a server being killed takes no new session.
    let sock = d
        .socket
        .with_file_name(format!("tmux-{}.sock", env.replace('=', "-")));
    Some(common::tmux::screen(&sock, &cmd, "open ports:", true))
}

#[cfg(unix)] // tmux
#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let d = start_daemon();
    let Some(coloured) = watch_screen(&d, "TERM=xterm") else {
        return;
    };
    let closed = coloured
        .lines()
        .find(|l| l.contains("port_closed"))
        .unwrap_or_default();
    assert!(closed.contains('\u{2588}'), "a bar: {coloured}");
    assert!(closed.contains("\x1b[31m"), "drop in red: {closed:?}");
    let plain = watch_screen(&d, "NO_COLOR=1").unwrap();
    let closed = plain
        .lines()
        .find(|l| l.contains("port_closed"))
        .unwrap_or_default();
    assert!(closed.contains('\u{2588}'), "still a bar: {plain}");
    assert!(!closed.contains("\x1b[3"), "no colour: {closed:?}");
    // Not a terminal: no bars, no escape sequences at all.
    let out = v6fw(&[
        "stats",
        "--watch",
        "--count",
        "1",
        "--socket",
        d.socket.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("port_closed"), "{text}");
    assert!(
        !text.contains('\x1b') && !text.contains('\u{2588}'),
        "{text}"
    );
}
