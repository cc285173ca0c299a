//! End to end, in two network namespaces: a hostile local user cannot stop,
//! blind or starve `v6fw run` through its endpoints (issue 29's findings).
//!
//! In namespace FW, `v6fw run --metrics` runs under `prlimit --nofile=1024`
//! (systemd's default soft limit, here the hard one too). As `nobody`, a
//! client then sends the metrics endpoint a request with
//! `Content-Length: 1000000000000` and no body, a 64 MiB header line without
//! CRLF, 300,000 pipelined requests, and opens 600 idle connections to it and
//! 600 to the control socket, and holds them. While they are held:
//!
//! - the daemon is alive, and its peak RSS (VmHWM) grew by less than
//!   [`RSS_BOUND`] (tiny_http grew by the line's 64 MiB, and by 420 MB for
//!   the pipelined requests);
//! - it holds at most the endpoints' caps in descriptors more than before;
//! - a scrape with a 1 s timeout is answered (3 tries at most);
//! - root's `v6fw ports open` through the control socket succeeds;
//!
//! and at SIGTERM the daemon exits 0 and removes its rules. The huge
//! Content-Length got 413, and the pipelined requests one answer.
//!
//! Skips (passes with a note) without root, the tools, `prlimit` or
//! `setpriv`; CI sets `V6FW_REQUIRE_LIVE=1` to make that a failure.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::lab::{self, has, run_bounded, unavailable, wait_for, Lab};

/// How much the daemon's peak RSS may grow under the whole attack: the
/// endpoints' buffers (32 × 4 KiB heads and answers, 8 control clients'
/// threads) with room to spare, far below the 64 MiB line alone.
const RSS_BOUND: u64 = 16 << 20;

/// The Python `nobody` can run.
const SYSTEM_PYTHON: &str = "/usr/bin/python3";

/// The attacker, run as `nobody`: ARGS port, control socket, out dir.
/// Writes `results.json` there once it holds its idle connections, then
/// holds them until `stop` appears there (60 s at most).
const ATTACK: &str = r#"
import json, os, resource, socket, sys, threading, time
port, control, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
res = {}
def conn():
    return socket.create_connection(("::1", port), timeout=10)
def read_all(s, limit=1 << 20):
    data = b""
    try:
        while len(data) < limit:
            d = s.recv(65536)
            if not d:
                break
            data += d
    except OSError as e:
        data += b"<" + type(e).__name__.encode() + b">"
    return data
def first_line(data):
    return data.split(b"\r\n")[0].decode(errors="replace")
def send_in_background(s, payload):
    def go():
        try:
            s.sendall(payload)
        except OSError:
            pass
    t = threading.Thread(target=go, daemon=True); t.start(); return t

# 1. A body announced that never comes.
s = conn()
s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n")
res["huge_content_length"] = first_line(read_all(s)); s.close()

# 2. A 64 MiB header line without CRLF.
s = conn()
t = send_in_background(s, b"GET /metrics HTTP/1.1\r\nX-Long: " + b"a" * (64 << 20))
res["long_line"] = first_line(read_all(s)); t.join(15); s.close()

# 3. 300,000 pipelined requests.
s = conn()
t = send_in_background(s, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 300000)
data = read_all(s, 64 << 20)
res["pipelined_answers"] = data.count(b"HTTP/1.1 "); t.join(15); s.close()

# 4. Idle connections, held.
held, failed = [], 0
for _ in range(600):
    try:
        held.append(conn())
    except OSError:
        failed += 1
res["metrics_idle"], res["metrics_idle_failed"] = len(held), failed
failed = 0
for _ in range(600):
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    u.settimeout(5)
    for _ in range(100):
        try:
            u.connect(control); held.append(u); break
        except BlockingIOError:
            time.sleep(0.05)
        except OSError:
            failed += 1; break
res["control_idle_failed"] = failed
with open(os.path.join(out, "results.tmp"), "w") as f:
    json.dump(res, f)
os.rename(os.path.join(out, "results.tmp"), os.path.join(out, "results.json"))
deadline = time.time() + 60
while time.time() < deadline and not os.path.exists(os.path.join(out, "stop")):
    time.sleep(0.1)
"#;

/// One GET of /metrics with a 1 s timeout: `ok` or `fail:<why>`.
const SCRAPE: &str = r#"
import urllib.request
try:
    body = urllib.request.urlopen("http://[::1]:9640/metrics", timeout=1).read()
    print("ok" if b"v6fw_build_info" in body else "bad")
except OSError as e:
    print("fail:" + type(getattr(e, "reason", e)).__name__)
"#;

/// A field of /proc/PID/status, in bytes (`VmRSS`, `VmHWM`).
fn status_bytes(pid: u32, field: &str) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .trim()
        .parse()
        .unwrap();
    kib << 10
}

fn descriptors(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count()
}

fn alive(child: &mut Child) -> bool {
    child.try_wait().unwrap().is_none()
}

fn scrape(lab: &Lab) -> String {
    let out = run_bounded(
        &mut lab.exec(&lab.net.fw, &["python3", "-c", SCRAPE]),
        Duration::from_secs(10),
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn hostile_clients_do_no_harm() {
    if let Some(why) = unavailable() {
        return lab::skip("live_hostile", &why);
    }
    if !has("prlimit", "--version") || !has("setpriv", "--version") {
        return lab::skip(
            "live_hostile",
            "`prlimit`/`setpriv` are not installed (util-linux)",
        );
    }
    // Not the `python3` on root's PATH, which may be under /root.
    if !has(SYSTEM_PYTHON, "-V") {
        return lab::skip(
            "live_hostile",
            "/usr/bin/python3 is not installed (apt-get install python3)",
        );
    }
    let mut lab = match Lab::new("v6fwhst", env!("CARGO_BIN_EXE_v6fw")) {
        Ok(l) => l,
        Err(e) => return lab::skip("live_hostile", &e),
    };
    let fw = lab.net.fw.clone();
    let dir = lab.net.dir.clone();
    let (socket, state) = (dir.join("control.sock"), dir.join("state"));
    let err = dir.join("run.err");
    let daemon = lab
        .exec(
            &fw,
            &[
                "prlimit",
                "--nofile=1024:1024",
                lab.v6fw,
                "run",
                "--metrics",
                "--stats-interval",
                "0",
                "--state-dir",
                state.to_str().unwrap(),
                "--socket",
                socket.to_str().unwrap(),
            ],
        )
        .stdin(Stdio::null())
        .stdout(fs::File::create(dir.join("run.out")).unwrap())
        .stderr(fs::File::create(&err).unwrap())
        .spawn()
        .expect("start v6fw run");
    let pid = daemon.id();
    lab.children.push(daemon);
    let log = || fs::read_to_string(&err).unwrap_or_default();
    wait_for(
        Duration::from_secs(10),
        || log().contains("filtering IPv6"),
        "v6fw run to start",
    );
    // ip netns exec and prlimit exec in place: `pid` is the daemon.
    assert_eq!(
        fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap()
            .trim(),
        "v6fw"
    );
    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    assert!(
        limits
            .lines()
            .any(|l| l.starts_with("Max open files") && l.contains(" 1024 ")),
        "{limits}"
    );
    wait_for(
        Duration::from_secs(10),
        || scrape(&lab) == "ok",
        "the first scrape",
    );
    let (rss_before, hwm_before) = (status_bytes(pid, "VmRSS"), status_bytes(pid, "VmHWM"));
    let fds_before = descriptors(pid);

    // The attack, as nobody, from a directory it may write.
    let out = dir.join("attacker");
    fs::create_dir(&out).unwrap();
    fs::set_permissions(&out, fs::Permissions::from_mode(0o777)).unwrap();
    let attacker = lab
        .exec(
            &fw,
            &[
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                SYSTEM_PYTHON,
                "-c",
                ATTACK,
                "9640",
                socket.to_str().unwrap(),
                out.to_str().unwrap(),
            ],
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(dir.join("attacker.err")).unwrap())
        .spawn()
        .expect("start the attacker");
    lab.children.push(attacker);
    let results = out.join("results.json");
    let attacker_err = || fs::read_to_string(dir.join("attacker.err")).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !results.exists() {
        let attacker = lab.children.last_mut().unwrap();
        assert!(
            alive(attacker),
            "the attacker ended early: {}",
            attacker_err()
        );
        assert!(
            Instant::now() < deadline,
            "the attack did not finish within 120 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let got: serde_json::Value = serde_json::from_str(&fs::read_to_string(&results).unwrap())
        .unwrap_or_else(|e| panic!("{e}: {}", attacker_err()));
    eprintln!("attack results: {got}");
    assert!(
        got["huge_content_length"]
            .as_str()
            .unwrap()
            .starts_with("HTTP/1.1 413"),
        "{got}"
    );
    assert!(got["pipelined_answers"].as_u64().unwrap() <= 1, "{got}");
    assert_eq!(got["metrics_idle"], 600, "the connects themselves: {got}");

    // While the idle connections are held:
    let daemon = lab.children.iter_mut().find(|c| c.id() == pid).unwrap();
    assert!(alive(daemon), "the daemon died: {}", log());
    let (rss, hwm) = (status_bytes(pid, "VmRSS"), status_bytes(pid, "VmHWM"));
    let fds = descriptors(pid);
    eprintln!(
        "daemon: VmRSS {rss_before} -> {rss}, VmHWM {hwm_before} -> {hwm} bytes; \
         descriptors {fds_before} -> {fds}"
    );
    assert!(
        hwm.saturating_sub(hwm_before) < RSS_BOUND,
        "peak RSS grew from {hwm_before} to {hwm} bytes"
    );
    assert!(
        fds <= fds_before + 32 + 64,
        "descriptors {fds_before} -> {fds}: more than the endpoints' caps"
    );
    let tries: Vec<String> = (0..3).map(|_| scrape(&lab)).collect();
    assert!(
        tries.iter().any(|t| t == "ok"),
        "no scrape answered within 1 s while the idle connections are held: {tries:?}"
    );
    lab.v6fw(&["ports", "open", "9090/tcp"]);
    assert!(lab.v6fw(&["ports", "list"]).contains("9090"));

    // SIGTERM: exit 0, rules removed (the attacker still holds its
    // connections).
    // SAFETY: kill has no memory-safety preconditions; `pid` is our
    // unreaped child.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) }, 0);
    let daemon = lab.children.iter_mut().find(|c| c.id() == pid).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = daemon.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "no exit within 10 s of SIGTERM: {}",
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}: {}", log());
    let rules = lab.ip6tables_save();
    assert!(!rules.contains("V6FW"), "rules left: {rules}");
    fs::write(out.join("stop"), "").unwrap();
}
