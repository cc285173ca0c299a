//! End to end, in two network namespaces: `v6fw run` never locks its admin
//! out and never stops filtering without saying so.
//!
//! In namespace FW (fd00::1), with servers on 2222 (a TCP echo, closed in
//! the policy), 8080 and 9090 (TCP) and 5353 (UDP), the test:
//!
//! 1. opens a TCP session from PEER to 2222 *before* `v6fw run` and uses it
//!    after the start (the daemon adopted it; a new connection to 2222 is
//!    still refused), with the daemon's stdout closed;
//! 2. sends SIGHUP with a policy file that opens 9090/tcp: it takes effect
//!    and the daemon goes on; a corrupt file is refused, the policy stays;
//! 3. starts a second daemon on another queue (and state dir and socket):
//!    refused, naming the first; the first's rules and filtering go on;
//! 4. appends `ip6tables -A INPUT -p tcp --dport 8080 -j DROP` to the
//!    `filter` table (v6fw's chains are in `mangle`): 8080, open in v6fw, is
//!    then dropped (v6fw's NF_ACCEPT went on to filter, it did not end the
//!    packet's way);
//! 5. SIGKILLs the daemon (fail-closed: an open port is dropped while it is
//!    gone; a start that fails on a corrupt policy leaves the rules) and
//!    starts it again: the session still works;
//! 6. a second SIGINT exits at once (130);
//! 7. runs a daemon whose stdout and stderr are pipes nobody reads
//!    (`v6fw run 2>&1 | tee`, tee gone) with `--queue-len 2`, floods it
//!    over UDP and reads non-zero kernel queue drops from `stats --json`;
//!    SIGINT then stops it cleanly (exit 0, rules gone); a daemon with its
//!    output in files warns of the drops and counts them in its stats line
//!    and its `--json` totals, and sends READY=1, WATCHDOG=1 and STOPPING=1
//!    to a fake `$NOTIFY_SOCKET`;
//! 8. SIGKILLs a `--fail-open` daemon: the kernel then accepts (a closed
//!    port is reachable).
//!
//! Skips (passes with a note) without root or the tools; CI sets
//! `V6FW_REQUIRE_LIVE=1` to make that a failure.
//!
//! Not on Windows: NFQUEUE rules, SIGHUP, sock_diag and network namespaces are
//! Linux's; the Windows stop and error paths are in dist/wine/e2e.py.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

mod common;

use common::lab::{self, run_bounded, unavailable, wait_for, Lab, FW_ADDR};
use v6fw_engine::{PortPair, Protocol};

/// A TCP echo server on `port`, touching the ready file once bound.
const ECHO: &str = r#"
import socket, sys, threading, time
ready, port = sys.argv[1], int(sys.argv[2])
def serve(c):
    while True:
        d = c.recv(64)
        if not d:
            return
        c.sendall(d)
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", port)); s.listen(8)
open(ready, "w").close()
deadline = time.time() + 120
while time.time() < deadline:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// One long-lived session: connects, says `connected`, then per line of
/// stdin (a timeout in seconds) sends a byte and prints `ok` or `fail:...`.
const SESSION: &str = r#"
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
print("connected", flush=True)
for line in sys.stdin:
    try:
        s.settimeout(float(line))
        s.sendall(b"x")
        print("ok" if s.recv(16) == b"x" else "bad", flush=True)
    except OSError as e:
        print("fail:" + type(e).__name__, flush=True)
"#;

/// Sends `n` UDP datagrams to `host`:`port` as fast as it can.
const FLOOD: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
for _ in range(int(sys.argv[3])):
    try:
        s.sendto(b"f" * 64, (sys.argv[1], int(sys.argv[2])))
    except OSError:
        pass
"#;

fn skip(why: &str) {
    lab::skip("live_safety", why);
}

/// The session from PEER, driven line by line.
struct Session {
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Session {
    /// One exchange with a `timeout`; `ok` or `fail:...`.
    fn exchange(&mut self, timeout: f64) -> String {
        writeln!(self.stdin, "{timeout}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim().to_string()
    }
}

/// How a daemon's output is handled.
enum Output {
    /// stdout closed (`>&-`), stderr to a file.
    StdoutClosed,
    /// stdout and stderr to files.
    Files,
    /// stdout and stderr pipes whose reader is gone.
    BrokenPipes,
}

struct Daemon {
    pid: u32,
    err: PathBuf,
    out: PathBuf,
}

impl Daemon {
    fn log(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }
}

struct Test {
    lab: Lab,
    state: PathBuf,
    socket: PathBuf,
    runs: u32,
}

impl Drop for Test {
    /// A killed daemon leaves its (unlocked) one-per-namespace file behind
    /// in /run/v6fw: remove it (`ip netns` pins the namespace at
    /// /run/netns/NAME, whose inode is the namespace's).
    fn drop(&mut self) {
        use std::os::unix::fs::MetadataExt;
        if let Ok(m) = fs::metadata(Path::new("/run/netns").join(&self.lab.net.fw)) {
            let _ = fs::remove_file(format!("/run/v6fw/netns-{}.lock", m.ino()));
        }
    }
}

impl Test {
    /// Starts `v6fw run ARGS` in FW on the test's state dir and socket.
    fn start(&mut self, args: &[&str], output: Output) -> Daemon {
        self.start_with_env(args, output, &[])
    }

    /// [`Test::start`] with extra environment variables.
    fn start_with_env(&mut self, args: &[&str], output: Output, env: &[(&str, &str)]) -> Daemon {
        self.runs += 1;
        let err = self.lab.net.dir.join(format!("run{}.err", self.runs));
        let out = self.lab.net.dir.join(format!("run{}.out", self.runs));
        let mut all = vec![
            "sh",
            "-c",
            r#"if [ "$V6FW_CLOSE_STDOUT" = 1 ]; then exec "$@" >&-; else exec "$@"; fi"#,
            "sh",
            env!("CARGO_BIN_EXE_v6fw"),
            "run",
            "--state-dir",
            self.state.to_str().unwrap(),
            "--socket",
            self.socket.to_str().unwrap(),
            "--stats-interval",
            "1",
        ];
        all.extend_from_slice(args);
        let mut cmd = self.lab.exec(&self.lab.net.fw.clone(), &all);
        cmd.stdin(Stdio::null()).envs(env.iter().copied());
        match output {
            Output::StdoutClosed => {
                cmd.env("V6FW_CLOSE_STDOUT", "1")
                    .stderr(fs::File::create(&err).unwrap());
            }
            Output::Files => {
                cmd.stdout(fs::File::create(&out).unwrap())
                    .stderr(fs::File::create(&err).unwrap());
            }
            Output::BrokenPipes => {
                cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            }
        }
        let mut child = cmd.spawn().expect("start v6fw run");
        // `sh` execs v6fw in place: the child's pid is the daemon's.
        let pid = child.id();
        drop(child.stdout.take());
        drop(child.stderr.take());
        self.lab.children.push(child);
        let d = Daemon { pid, err, out };
        if !matches!(output, Output::BrokenPipes) {
            wait_for(
                Duration::from_secs(10),
                || d.log().contains("filtering IPv6") || self.exited(&d).is_some(),
                "v6fw run to start",
            );
            assert!(self.exited(&d).is_none(), "v6fw run died:\n{}", d.log());
        }
        d
    }

    fn child(&mut self, d: &Daemon) -> &mut Child {
        self.lab
            .children
            .iter_mut()
            .find(|c| c.id() == d.pid)
            .unwrap()
    }

    fn exited(&mut self, d: &Daemon) -> Option<ExitStatus> {
        self.child(d).try_wait().unwrap()
    }

    fn signal(&self, d: &Daemon, sig: libc::c_int) {
        // SAFETY: `d.pid` is a child this test started and has not reaped.
        assert_eq!(unsafe { libc::kill(d.pid as libc::pid_t, sig) }, 0);
    }

    fn wait_exit(&mut self, d: &Daemon) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = self.exited(d) {
                return s;
            }
            assert!(Instant::now() < deadline, "v6fw did not exit:\n{}", d.log());
            sleep(Duration::from_millis(20));
        }
    }

    fn client(&self, kind: &str, port: u16, timeout: f64) -> String {
        let peer = self.lab.net.peer.clone();
        self.lab.client(&peer, kind, FW_ADDR, port, timeout)
    }

    fn ip6tables(&self, args: &[&str]) {
        let mut all = vec!["ip6tables", "-w"];
        all.extend_from_slice(args);
        let out = run_bounded(
            &mut self.lab.exec(&self.lab.net.fw, &all),
            Duration::from_secs(10),
        );
        assert!(out.status.success(), "{args:?}: {out:?}");
    }

    /// Writes the policy file with `edit` applied to what it holds now.
    fn edit_policy(&self, edit: impl FnOnce(&mut v6fw_engine::Policy)) {
        let path = self.state.join("policy.toml");
        let mut p = v6fw_api::store::parse(&path, &fs::read_to_string(&path).unwrap()).unwrap();
        edit(&mut p.policy);
        fs::write(&path, v6fw_api::store::render(&p).unwrap()).unwrap();
    }
}

fn exits_refused(out: &std::process::Output, first: &Daemon) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("another v6fw run is already filtering this network namespace")
            && stderr.contains(&format!("pid {}", first.pid)),
        "{stderr}"
    );
}

fn session_from_peer(lab: &mut Lab, port: u16) -> Session {
    let mut child = lab
        .exec(
            &lab.net.peer.clone(),
            &["python3", "-c", SESSION, FW_ADDR, &port.to_string()],
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    lab.children.push(child);
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "connected");
    Session { stdin, stdout }
}

fn echo_server(lab: &mut Lab, port: u16) {
    let ready = lab.net.dir.join("echo-ready");
    let child = lab
        .exec(
            &lab.net.fw.clone(),
            &[
                "python3",
                "-c",
                ECHO,
                ready.to_str().unwrap(),
                &port.to_string(),
            ],
        )
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    lab.children.push(child);
    wait_for(Duration::from_secs(5), || ready.exists(), "the echo server");
}

fn stats_json(t: &Test) -> serde_json::Value {
    let text = t.lab.v6fw(&["stats", "--json"]);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// 20,000 UDP datagrams from PEER to the open 5353, as fast as Python goes.
fn flood(t: &Test) {
    let out = run_bounded(
        &mut t.lab.exec(
            &t.lab.net.peer,
            &["python3", "-c", FLOOD, FW_ADDR, "5353", "20000"],
        ),
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{out:?}");
}

fn kernel_dropped(stats: &serde_json::Value) -> u64 {
    let k = &stats["kernel_dropped"];
    k["queue_dropped"].as_u64().unwrap() + k["user_dropped"].as_u64().unwrap()
}

#[test]
fn live_safety_never_locks_the_admin_out() {
    if let Some(why) = unavailable() {
        return skip(&why);
    }
    let started = Instant::now();
    let mut lab = match Lab::new("v6fs", env!("CARGO_BIN_EXE_v6fw")) {
        Ok(lab) => lab,
        Err(why) => return skip(&format!("cannot build the namespaces: {why}")),
    };
    if lab.net.nfqueue_target_works().is_err() {
        return skip("the kernel has no ip6tables NFQUEUE target (xt_NFQUEUE / nft_compat)");
    }
    let fw = lab.net.fw.clone();
    lab.server(&fw, "8080,9090", "5353");
    echo_server(&mut lab, 2222);
    let mut session = session_from_peer(&mut lab, 2222);
    assert_eq!(session.exchange(3.0), "ok", "the session before v6fw");
    let (state, socket) = (lab.net.dir.join("state"), lab.net.dir.join("control.sock"));
    let mut t = Test {
        lab,
        state,
        socket,
        runs: 0,
    };

    // 1. Start with stdout closed: the open session is adopted.
    let first = t.start(&["--open", "8080/tcp,5353/udp"], Output::StdoutClosed);
    let log = first.log();
    assert!(
        log.contains("adopted") && !log.contains("adopted 0 open sessions"),
        "{log}"
    );
    assert_eq!(session.exchange(3.0), "ok", "the session after the start");
    assert!(
        t.client("tcp", 2222, 1.2).starts_with("fail"),
        "a new connection to the closed 2222"
    );
    assert_eq!(t.client("tcp", 8080, 3.0), "ok", "the open 8080");
    // v6fw's chains are in mangle, without a mark rule (accepts are
    // NF_ACCEPT, on to filter); filter is the admin's alone.
    let rules = t.lab.ip6tables_save_table("mangle");
    assert!(
        rules.contains("-A V6FW-IN -i lo -j RETURN\n-A V6FW-IN -j NFQUEUE --queue-num 0"),
        "{rules}"
    );
    assert!(!rules.contains("mark"), "{rules}");
    assert!(!t.lab.ip6tables_save_table("filter").contains("V6FW"));

    // 2. SIGHUP reloads the edited file; a corrupt one is refused.
    assert!(t.client("tcp", 9090, 1.2).starts_with("fail"));
    t.edit_policy(|p| {
        p.open_global(PortPair::new(9090, Protocol::Tcp).unwrap(), "reloaded");
    });
    t.signal(&first, libc::SIGHUP);
    wait_for(
        Duration::from_secs(5),
        || first.log().contains("policy reloaded"),
        "the reload",
    );
    assert_eq!(t.client("tcp", 9090, 3.0), "ok", "9090 after the reload");
    fs::write(t.state.join("policy.toml"), "global = [ broken").unwrap();
    t.signal(&first, libc::SIGHUP);
    wait_for(
        Duration::from_secs(5),
        || first.log().contains("the running policy stays"),
        "the refused reload",
    );
    assert!(t.exited(&first).is_none(), "SIGHUP stopped the daemon");
    assert_eq!(t.client("tcp", 9090, 3.0), "ok", "the old policy stays");
    assert_eq!(session.exchange(3.0), "ok");

    // 3. A second daemon, on another queue, state dir and socket: refused.
    let other = t.lab.net.dir.join("other");
    let out = run_bounded(
        &mut t.lab.exec(
            &fw,
            &[
                env!("CARGO_BIN_EXE_v6fw"),
                "run",
                "--queues",
                "1",
                "--state-dir",
                other.join("state").to_str().unwrap(),
                "--socket",
                other.join("c.sock").to_str().unwrap(),
            ],
        ),
        Duration::from_secs(10),
    );
    exits_refused(&out, &first);
    let rules = t.lab.ip6tables_save();
    assert!(
        rules.contains("-A V6FW-IN -j NFQUEUE --queue-num 0"),
        "{rules}"
    );
    assert!(
        t.client("tcp", 2222, 1.2).starts_with("fail"),
        "still filtering"
    );
    assert_eq!(t.client("tcp", 8080, 3.0), "ok");

    // 4. The admin's DROP in filter INPUT sees what v6fw (in mangle) accepted.
    let drop_8080 = ["INPUT", "-p", "tcp", "--dport", "8080", "-j", "DROP"];
    t.ip6tables(&[&["-A"][..], &drop_8080].concat());
    assert!(
        t.client("tcp", 8080, 1.2).starts_with("fail"),
        "the appended DROP"
    );
    t.ip6tables(&[&["-D"][..], &drop_8080].concat());
    assert_eq!(t.client("tcp", 8080, 3.0), "ok");

    // 5. SIGKILL: fail-closed, nothing passes until the restart; the
    //    session survives the restart.
    t.edit_policy_restore_8080();
    t.signal(&first, libc::SIGKILL);
    t.wait_exit(&first);
    assert!(t.lab.ip6tables_save().contains("V6FW-IN"), "rules stay");
    assert!(
        t.client("tcp", 8080, 1.0).starts_with("fail"),
        "fail-closed while no daemon runs"
    );
    // A start that fails (a corrupt policy) leaves the old rules alone.
    let good = fs::read_to_string(t.state.join("policy.toml")).unwrap();
    fs::write(t.state.join("policy.toml"), "global = [ broken").unwrap();
    let out = run_bounded(
        &mut t.lab.exec(
            &fw,
            &[
                env!("CARGO_BIN_EXE_v6fw"),
                "run",
                "--state-dir",
                t.state.to_str().unwrap(),
                "--socket",
                t.socket.to_str().unwrap(),
            ],
        ),
        Duration::from_secs(10),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("policy.toml is not valid"), "{stderr}");
    assert!(t.lab.ip6tables_save().contains("V6FW-IN"), "rules stay");
    fs::write(t.state.join("policy.toml"), good).unwrap();
    let second = t.start(&[], Output::Files);
    assert!(
        !second.log().contains("adopted 0 open sessions"),
        "{}",
        second.log()
    );
    assert_eq!(
        session.exchange(5.0),
        "ok",
        "the session after SIGKILL + restart"
    );
    assert_eq!(t.client("tcp", 8080, 3.0), "ok");

    // 6. A second SIGINT during the stop exits at once. (Two signals sent
    //    back to back merge into one: the kernel does not queue them; so the
    //    second is sent once the first is no longer pending.)
    t.signal(&second, libc::SIGINT);
    wait_delivered(second.pid, libc::SIGINT);
    t.signal(&second, libc::SIGINT);
    assert_eq!(t.wait_exit(&second).code(), Some(130), "{}", second.log());

    // 7. `2>&1 | tee` with tee gone, and a flood over --queue-len 2.
    let third = t.start(&["--queue-len", "2"], Output::BrokenPipes);
    // Its output is gone: wait until its control socket answers (it is
    // served once the queues are bound and the rules are in).
    let answers = |t: &mut Test| {
        let out = run_bounded(
            &mut t.lab.exec(
                &t.lab.net.fw,
                &[
                    env!("CARGO_BIN_EXE_v6fw"),
                    "stats",
                    "--json",
                    "--socket",
                    t.socket.to_str().unwrap(),
                ],
            ),
            Duration::from_secs(10),
        );
        out.status.success()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !answers(&mut t) {
        if let Some(status) = t.exited(&third) {
            panic!("the third daemon died: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "the third daemon does not answer"
        );
        sleep(Duration::from_millis(50));
    }
    sleep(Duration::from_millis(500));
    let mut drops = 0;
    for _ in 0..5 {
        flood(&t);
        drops = kernel_dropped(&stats_json(&t));
        if drops > 0 {
            break;
        }
    }
    assert!(
        drops > 0,
        "no kernel drops after the floods: {}",
        stats_json(&t)
    );
    assert!(
        t.exited(&third).is_none(),
        "the daemon died on its closed output"
    );
    t.signal(&third, libc::SIGINT);
    assert_eq!(t.wait_exit(&third).code(), Some(0), "Ctrl-C with tee gone");
    assert!(!t.lab.ip6tables_save().contains("V6FW"), "rules removed");

    // 7b. The daemon's own log and totals count the kernel's drops too;
    //     and it speaks systemd's notify protocol to $NOTIFY_SOCKET.
    let notify_path = t.lab.net.dir.join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let fourth = t.start_with_env(
        &["--queue-len", "2", "--json"],
        Output::Files,
        &[
            ("NOTIFY_SOCKET", notify_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "1000000"),
        ],
    );
    let mut seen = Vec::new();
    while !seen.iter().any(|m| m == "WATCHDOG=1") {
        let mut buf = [0u8; 256];
        let n = notify
            .recv(&mut buf)
            .expect("READY=1 and WATCHDOG=1 from the daemon");
        seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert_eq!(
        seen.first().map(String::as_str),
        Some("READY=1"),
        "{seen:?}"
    );
    for _ in 0..5 {
        flood(&t);
        sleep(Duration::from_millis(1500)); // the daemon reads them every second
        if fourth.log().contains("the kernel dropped") {
            break;
        }
    }
    let log = fourth.log();
    assert!(log.contains("the kernel dropped"), "no warning:\n{log}");
    t.signal(&fourth, libc::SIGTERM);
    assert_eq!(t.wait_exit(&fourth).code(), Some(0), "{}", fourth.log());
    let mut buf = [0u8; 256];
    let stopping = std::iter::from_fn(|| notify.recv(&mut buf).ok().map(|n| buf[..n].to_vec()))
        .take(100)
        .any(|m| m == b"STOPPING=1");
    assert!(stopping, "no STOPPING=1");
    let text = fs::read_to_string(&fourth.out).unwrap();
    let totals: serde_json::Value = serde_json::from_str(&text).unwrap();
    let k = &totals["kernel"];
    assert!(
        k["queue_dropped"].as_u64().unwrap() + k["user_dropped"].as_u64().unwrap() > 0,
        "{text}"
    );
    let line = fourth
        .log()
        .lines()
        .rev()
        .find(|l| l.contains("stats: packets="))
        .map(str::to_string)
        .unwrap_or_default();
    assert!(
        !line.is_empty() && !line.contains("kernel_queue_dropped=0 kernel_user_dropped=0"),
        "the stats line: {line}"
    );

    // 8. Fail-open: with the daemon gone, the kernel accepts.
    let open = t.start(&["--fail-open"], Output::Files);
    assert!(
        t.client("tcp", 9090, 1.2).starts_with("fail"),
        "{}",
        open.log()
    );
    t.signal(&open, libc::SIGKILL);
    t.wait_exit(&open);
    assert_eq!(t.client("tcp", 9090, 3.0), "ok", "queue bypass");
    eprintln!(
        "live_safety: passed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

impl Test {
    /// Makes the policy file valid again (step 2 left it corrupt), without
    /// 9090 (closed again for step 8) and with 8080 and 5353 open.
    fn edit_policy_restore_8080(&self) {
        let mut p = v6fw_engine::Policy::default();
        for (port, proto) in [(8080, Protocol::Tcp), (5353, Protocol::Udp)] {
            p.open_global(PortPair::new(port, proto).unwrap(), "restored");
        }
        let path: &Path = &self.state.join("policy.toml");
        fs::write(path, v6fw_api::store::render(&p.into()).unwrap()).unwrap();
    }
}

/// Waits (2 s at most) until signal `sig` is no longer pending for process
/// `pid` (its `SigPnd` and `ShdPnd` masks in /proc): its handler has run.
fn wait_delivered(pid: u32, sig: libc::c_int) {
    let bit = 1u64 << (sig - 1);
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
            return; // gone: nothing is pending any more
        };
        let pending = status
            .lines()
            .filter(|l| l.starts_with("SigPnd:") || l.starts_with("ShdPnd:"))
            .filter_map(|l| u64::from_str_radix(l.split_whitespace().nth(1)?, 16).ok())
            .any(|mask| mask & bit != 0);
        if !pending {
            return;
        }
        sleep(Duration::from_millis(1));
    }
}
