//! End to end, in two network namespaces: `v6fw run --metrics` serves its
//! counters in the OpenMetrics text format, and they move with traffic.
//!
//! In namespace FW (fd00::1), with servers on 8080 (open) and 2222 (closed):
//!
//! 1. `v6fw run --metrics` (no address: [::1]:9640) serves `/metrics` with
//!    the build info, the open pairs and a series per reason, and no warning
//!    about the address;
//! 2. a TCP exchange to 8080 and a refused one to 2222 from PEER raise
//!    `global_port` and `port_closed` for the worker of queue 0 by what was
//!    sent; `v6fw ports open` raises the policy publishes and the open
//!    pairs; another path is 404;
//! 3. `--metrics [::]:9641` warns that the address is not loopback and is
//!    IPv6 only, and serves there over IPv6, not over IPv4 (127.0.0.1:9641
//!    is refused: the socket is IPV6_V6ONLY);
//!    a `JOURNAL_STREAM` that is not stderr's stream leaves the log on stderr;
//! 4. a `JOURNAL_STREAM` that is stderr's stream sends the log to the
//!    journal, or (no journald) to stderr with a warning;
//! 5. a bad address is refused before anything starts.
//!
//! Skips (passes with a note) without root or the tools; CI sets
//! `V6FW_REQUIRE_LIVE=1` to make that a failure.
//!
//! Not on Windows: NFQUEUE, ip6tables and network namespaces are Linux's; `v6fw
//! run` on Windows is driven end to end by dist/wine/e2e.py.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

mod common;

use common::lab::{self, run_bounded, unavailable, wait_for, Lab, FW_ADDR};

/// GETs `http://HOST:PORT/PATH` (HOST `[::1]` unless a third argument
/// names another); prints the status, a newline, the body.
const SCRAPE: &str = r#"
import sys, urllib.request, urllib.error
host = sys.argv[3] if len(sys.argv) > 3 else "[::1]"
try:
    r = urllib.request.urlopen("http://%s:%s%s" % (host, sys.argv[1], sys.argv[2]), timeout=3)
    print(r.status); print(r.headers.get("Content-Type")); print(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code); print(""); print(e.read().decode())
except OSError as e:
    print("fail:" + type(getattr(e, "reason", e)).__name__)
"#;

struct Test {
    lab: Lab,
    runs: usize,
}

impl Test {
    /// `v6fw run ARGS` in FW with its output in files (killed with the lab
    /// if the test fails); returns its index in the lab's children and the
    /// path of its stderr.
    fn start(&mut self, args: &[&str]) -> (usize, std::path::PathBuf) {
        self.start_with(args, |_| None)
    }

    /// [`Test::start`] with `JOURNAL_STREAM` set to what `journal` makes of
    /// the daemon's stderr file (`None`: unset).
    fn start_with(
        &mut self,
        args: &[&str],
        journal: impl Fn(&fs::File) -> Option<String>,
    ) -> (usize, std::path::PathBuf) {
        self.runs += 1;
        let dir = self.lab.net.dir.clone();
        let err = dir.join(format!("run{}.err", self.runs));
        let (state, socket) = (dir.join("state"), dir.join("control.sock"));
        let mut all = vec![
            env!("CARGO_BIN_EXE_v6fw"),
            "run",
            "--state-dir",
            state.to_str().unwrap(),
            "--socket",
            socket.to_str().unwrap(),
            "--stats-interval",
            "0",
        ];
        all.extend_from_slice(args);
        let err_file = fs::File::create(&err).unwrap();
        let mut cmd = self.lab.exec(&self.lab.net.fw.clone(), &all);
        cmd.env_remove("JOURNAL_STREAM");
        if let Some(v) = journal(&err_file) {
            cmd.env("JOURNAL_STREAM", v);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir.join(format!("run{}.out", self.runs))).unwrap())
            .stderr(err_file)
            .spawn()
            .expect("start v6fw run");
        self.lab.children.push(child);
        (self.lab.children.len() - 1, err)
    }

    /// `(status, content type, body)` of a GET in FW, or `fail:...`.
    fn get(&self, port: u16, path: &str) -> Result<(u16, String, String), String> {
        self.get_from("[::1]", port, path)
    }

    /// [`Test::get`] of `http://HOST:PORT/PATH`.
    fn get_from(&self, host: &str, port: u16, path: &str) -> Result<(u16, String, String), String> {
        let out = run_bounded(
            &mut self.lab.exec(
                &self.lab.net.fw,
                &["python3", "-c", SCRAPE, &port.to_string(), path, host],
            ),
            Duration::from_secs(10),
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut lines = text.splitn(3, '\n');
        let status = lines.next().unwrap_or_default();
        let Ok(status) = status.parse() else {
            return Err(text);
        };
        let ctype = lines.next().unwrap_or_default().to_string();
        Ok((status, ctype, lines.next().unwrap_or_default().to_string()))
    }

    /// The body of `/metrics` once it answers (the daemon is starting).
    fn scrape(&self, port: u16) -> String {
        let mut body = String::new();
        wait_for(
            Duration::from_secs(10),
            || match self.get(port, "/metrics") {
                Ok((200, _, b)) => {
                    body = b;
                    true
                }
                _ => false,
            },
            "the metrics endpoint",
        );
        body
    }
}

/// Stops a daemon with SIGINT and waits (bounded) for it.
fn stop(child: &mut Child) {
    // SAFETY: kill has no memory-safety preconditions; the pid is our child's.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    for _ in 0..100 {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("v6fw run did not stop on SIGINT within 10 s");
}

/// The value of the sample `series` (exact labels, as rendered).
fn value(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
        .parse()
        .unwrap()
}

fn packets(text: &str, verdict: &str, reason: &str) -> u64 {
    // The worker label is the part of the series this test does not fix.
    let series = format!(r#"verdict="{verdict}",reason="{reason}"}}"#);
    text.lines()
        .filter(|l| l.starts_with("v6fw_packets_total{") && l.contains(&series))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

#[test]
fn metrics_are_scraped_and_move_with_traffic() {
    if let Some(why) = unavailable() {
        return lab::skip("live_metrics", &why);
    }
    let lab = match Lab::new("v6fwmet", env!("CARGO_BIN_EXE_v6fw")) {
        Ok(l) => l,
        Err(e) => return lab::skip("live_metrics", &e),
    };
    let mut t = Test { lab, runs: 0 };
    let fw = t.lab.net.fw.clone();
    let peer = t.lab.net.peer.clone();
    t.lab.server(&fw, "8080,2222", "");

    // 1. The default address, loopback.
    let (daemon, err) = t.start(&["--open", "8080/tcp", "--metrics"]);
    let before = t.scrape(9640);
    let (_, ctype, _) = t.get(9640, "/metrics").unwrap();
    assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
    assert!(before.contains("v6fw_build_info{version="), "{before}");
    assert!(before.trim_end().ends_with("# EOF"), "{before}");
    assert_eq!(value(&before, r#"v6fw_open_pairs{scope="global"}"#), 1);
    let stderr = fs::read_to_string(&err).unwrap();
    assert!(
        stderr.contains("metrics at http://[::1]:9640/metrics"),
        "{stderr}"
    );
    assert!(!stderr.contains("not loopback"), "{stderr}");

    // 2. Traffic moves the counters of the worker of queue 0.
    assert_eq!(t.lab.client(&peer, "tcp", FW_ADDR, 8080, 3.0), "ok");
    assert_ne!(t.lab.client(&peer, "tcp", FW_ADDR, 2222, 1.0), "ok");
    t.lab.v6fw(&["ports", "open", "9090/tcp"]);
    let after = t.scrape(9640);
    let grew = |v: &str, r: &str| packets(&after, v, r) - packets(&before, v, r);
    assert!(
        grew("accept", "global_port") >= 2,
        "SYN and ACK at least:\n{after}"
    );
    assert!(
        grew("drop", "port_closed") >= 1,
        "the SYN to 2222:\n{after}"
    );
    assert!(
        after.contains(r#"v6fw_packets_total{worker="nfqueue-0",queue="0",verdict="drop",reason="port_closed"} "#),
        "per worker:\n{after}"
    );
    assert_eq!(value(&after, r#"v6fw_open_pairs{scope="global"}"#), 2);
    let not_recorded = r#"v6fw_flows_not_recorded_total{worker="nfqueue-0",queue="0"}"#;
    assert_eq!(value(&after, not_recorded), 0);
    let restarts = r#"v6fw_worker_restarts_total{worker="nfqueue-0",queue="0"}"#;
    assert_eq!(value(&after, restarts), 0);
    assert!(
        value(&after, "v6fw_policy_publishes_total")
            > value(&before, "v6fw_policy_publishes_total"),
        "{after}"
    );
    assert!(after.contains(r#"v6fw_kernel_dropped_total{queue="0",cause="queue_full"}"#));
    assert_eq!(t.get(9640, "/other").unwrap().0, 404);
    stop(&mut t.lab.children[daemon]);

    // 3. A non-loopback address warns, and serves. A JOURNAL_STREAM that is
    // not stderr's stream (a wrapper redirected stderr) leaves the lines on
    // stderr.
    let (daemon, err) = t.start_with(&["--metrics", "[::]:9641"], |f| {
        let m = f.metadata().unwrap();
        Some(format!("{}:{}", m.dev(), m.ino() + 1))
    });
    t.scrape(9641);
    let stderr = fs::read_to_string(&err).unwrap();
    assert!(
        stderr.contains("[::]:9641, which is not loopback"),
        "{stderr}"
    );
    assert!(stderr.contains("IPv6 only"), "{stderr}");
    assert_eq!(
        t.get_from("127.0.0.1", 9641, "/metrics"),
        Err("fail:ConnectionRefusedError\n".into()),
        "[::] must not serve IPv4"
    );
    stop(&mut t.lab.children[daemon]);

    // 4. JOURNAL_STREAM naming stderr's own stream: the journal, or, where
    // no journald listens, stderr with a warning saying so.
    let (daemon, err) = t.start_with(&["--metrics", "[::1]:9642"], |f| {
        let m = f.metadata().unwrap();
        Some(format!("{}:{}", m.dev(), m.ino()))
    });
    t.scrape(9642);
    let stderr = fs::read_to_string(&err).unwrap();
    if Path::new("/run/systemd/journal/socket").exists() {
        assert!(
            !stderr.contains("metrics at"),
            "went to the journal: {stderr}"
        );
    } else {
        assert!(stderr.contains("cannot log to the journal"), "{stderr}");
        assert!(
            stderr.contains("metrics at http://[::1]:9642/metrics"),
            "{stderr}"
        );
    }
    stop(&mut t.lab.children[daemon]);

    // 5. A bad address: refused by the parser, nothing started.
    let (bad, err) = t.start(&["--metrics", "[::1]:0"]);
    let status = t.lab.children[bad].wait().unwrap();
    assert_eq!(status.code(), Some(2));
    let stderr = fs::read_to_string(&err).unwrap();
    assert!(stderr.contains("port 0 is not valid"), "{stderr}");
}
