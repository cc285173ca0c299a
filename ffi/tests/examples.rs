//! The C and Python examples (ffi/examples/) against a live `v6fw run` in a
//! network namespace: as root they open, read and close global and
//! per-connection pairs (snapshot semantics included) and `v6fw ports list`
//! sees each change; as uid 65534 they read, and every change is
//! `E_ACCESSDENIED`; with no daemon, `NetFwV6Mgr_Create` fails with a
//! message. The C example is compiled here with gcc against the checked-in
//! header and linked with this build's libv6fw.so.
//!
//! Needs root, gcc, python3, ip and ip6tables; otherwise it skips with a
//! note, or fails under V6FW_REQUIRE_LIVE=1 (CI).
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use v6fw_testkit::lab::{self, has, run_bounded, unavailable, Lab};

const TEST: &str = "ffi examples";

/// The connection the examples use: the FW namespace's loopback.
const CONN: &str = "lo";

/// This build's `deps` directory: the test runs as target/PROFILE/deps/examples-HASH,
/// and cargo builds this package's libv6fw.so for it there (`cargo build` also copies
/// it up to target/PROFILE, `cargo test` does not).
fn deps_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().to_path_buf()
}

/// `from` copied into `dir` with `mode`, so uid 65534 can read or run it.
fn copy_for_everyone(from: &Path, dir: &Path, mode: u32) -> PathBuf {
    let to = dir.join(from.file_name().unwrap());
    fs::copy(from, &to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    fs::set_permissions(&to, fs::Permissions::from_mode(mode)).unwrap();
    to
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `args` in the FW namespace (as uid 65534 when `nobody`), at most
/// 30 s; fails the test unless it exits 0 having printed `ok:`.
fn run_example(lab: &Lab, nobody: bool, args: &[String]) -> String {
    let mut all: Vec<&str> = Vec::new();
    if nobody {
        all.extend([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ]);
    }
    all.extend(args.iter().map(String::as_str));
    let out = run_bounded(&mut lab.exec(&lab.net.fw, &all), Duration::from_secs(30));
    let shown = text(&out);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok: "),
        "`{}` failed:\n{shown}",
        all.join(" ")
    );
    shown
}

/// A python3 that uid 65534 can run: `/usr/bin/python3` if it can (a
/// `python3` on root's PATH may live under /root, e.g. a pyenv shim), else
/// the one on the PATH.
fn python_for_everyone() -> String {
    let runs = |py: &str| {
        run_bounded(
            Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups", py])
                .args(["-c", "pass"]),
            Duration::from_secs(10),
        )
        .status
        .success()
    };
    ["/usr/bin/python3", "python3"]
        .into_iter()
        .find(|py| runs(py))
        .unwrap_or("python3")
        .to_string()
}

/// Whether `ports` (a `ports list --json` array) holds `port`/`proto`.
fn lists(ports: &Value, port: u16, proto: &str) -> bool {
    ports.as_array().is_some_and(|a| {
        a.iter()
            .any(|p| p["port"] == port && p["protocol"] == proto)
    })
}

/// `v6fw ports list --json`: (global pairs, the connection's effective set).
fn cli_list(lab: &Lab) -> (Value, Value) {
    let v: Value = serde_json::from_str(&lab.v6fw(&["ports", "list", "--json"])).unwrap();
    (v["global"].clone(), v["connections"][CONN].clone())
}

#[test]
fn c_and_python_examples_drive_a_live_daemon() {
    if let Some(why) = unavailable() {
        return lab::skip(TEST, &why);
    }
    if !has("gcc", "--version") {
        return lab::skip(TEST, "gcc is not installed (apt-get install gcc)");
    }
    let deps = deps_dir();
    let lib = deps.join("libv6fw.so");
    // The v6fw binary, which cargo builds for v6fw-api's tests in target/PROFILE.
    let v6fw = deps.parent().unwrap().join("v6fw");
    for (file, build) in [(&lib, "-p v6fw-ffi"), (&v6fw, "-p v6fw-api --bin v6fw")] {
        if !file.exists() {
            return lab::skip(
                TEST,
                &format!(
                    "{} is not built: `cargo build {build}` (cargo test --workspace builds it)",
                    file.display()
                ),
            );
        }
    }
    let v6fw: &'static str = Box::leak(v6fw.to_string_lossy().into_owned().into_boxed_str());
    let mut lab = match Lab::new("v6ffi", v6fw) {
        Ok(lab) => lab,
        Err(why) => return lab::skip(TEST, &format!("cannot build the namespaces: {why}")),
    };
    if lab.net.nfqueue_target_works().is_err() {
        return lab::skip(
            TEST,
            "the kernel has no ip6tables NFQUEUE target (xt_NFQUEUE / nft_compat)",
        );
    }
    let dir = lab.net.dir.clone();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let lib = copy_for_everyone(&lib, &dir, 0o644);
    let src = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = copy_for_everyone(&src.join("examples/open_ports.py"), &dir, 0o644);
    let exe = dir.join("open_ports");
    let rpath = format!("-Wl,-rpath,{}", dir.display());
    let gcc = run_bounded(
        Command::new("gcc")
            .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I"])
            .arg(src.join("include"))
            .arg(src.join("examples/open_ports.c"))
            .arg("-L")
            .arg(&dir)
            .args(["-lv6fw", &rpath, "-o"])
            .arg(&exe),
        Duration::from_secs(60),
    );
    assert!(gcc.status.success(), "gcc failed:\n{}", text(&gcc));
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();

    let run = lab.start_run(&[]);
    let sock = dir.join("control.sock");
    let (exe, sock, lib, script) = (
        exe.to_str().unwrap(),
        sock.to_str().unwrap(),
        lib.to_str().unwrap(),
        script.to_str().unwrap(),
    );
    let none = dir.join("none.sock");
    let none = none.to_str().unwrap();
    // (the program, its global pair, its per-connection pair)
    let python = python_for_everyone();
    let examples: [(Vec<&str>, u16, u16); 2] = [
        (vec![exe], 18080, 18081),
        (vec![&python, script, lib], 18090, 18091),
    ];
    for (program, global, own) in &examples {
        let with = |socket: &str, phase: &str| -> Vec<String> {
            let mut v: Vec<String> = program.iter().map(ToString::to_string).collect();
            v.extend([socket, CONN, phase].map(ToString::to_string));
            v
        };
        let phase = |p: &str| with(sock, p);

        let out = run_example(&lab, false, &with(none, "nodaemon"));
        assert!(out.contains("no v6fw daemon is running at"), "{out}");

        let (g, c) = cli_list(&lab);
        assert!(
            !lists(&g, *global, "tcp") && !lists(&c, *own, "udp"),
            "{g} {c}"
        );
        run_example(&lab, false, &phase("open"));
        let (g, c) = cli_list(&lab);
        assert!(
            lists(&g, *global, "tcp"),
            "the CLI sees the global pair: {g}"
        );
        assert!(lists(&c, *own, "udp"), "and the connection's: {c}");
        assert!(
            lists(&c, *global, "tcp"),
            "the connection's set holds the global one: {c}"
        );

        run_example(&lab, true, &phase("user"));
        let after_user = cli_list(&lab);
        assert_eq!(after_user, (g, c), "the refused changes changed nothing");

        run_example(&lab, false, &phase("close"));
        let (g, c) = cli_list(&lab);
        assert!(
            !lists(&g, *global, "tcp") && !lists(&c, *own, "udp"),
            "{g} {c}"
        );
    }
    let status = lab.stop_run(&run);
    assert!(
        status.success(),
        "v6fw run exited {status:?}:\n{}",
        run.log()
    );
}
