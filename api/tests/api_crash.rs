//! Crash safety: a child process applies 1,000 changes one by one and prints
//! an acknowledgement after each; it is killed with SIGKILL at several points.
//! After every kill the policy file parses and holds every acknowledged
//! change (and at most the one change in flight), and the manager reopens it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use v6fw_api::fw::FirewallManager;
use v6fw_api::interfaces::Interface;
use v6fw_api::store::PolicyStore;
use v6fw_engine::{PortPair, Protocol};

const CHANGES: u16 = 1_000;

/// The change number `i` of a run starting at `start`: even ones open a
/// global TCP pair, odd ones an own UDP pair of connection `crash0`.
fn pair_of(port: u16, start: u16) -> (PortPair, bool) {
    let global = (port - start).is_multiple_of(2);
    let proto = if global { Protocol::Tcp } else { Protocol::Udp };
    (PortPair::new(port, proto).unwrap(), global)
}

/// The child: does nothing unless started by `crash_safety` below.
#[test]
fn crash_child() {
    let (Ok(dir), Ok(start)) = (
        std::env::var("V6FW_CRASH_DIR"),
        std::env::var("V6FW_CRASH_START"),
    ) else {
        return;
    };
    let start: u16 = start.parse().unwrap();
    let mgr = FirewallManager::open(Path::new(&dir)).unwrap();
    let crash0 = Interface {
        id: "crash0".into(),
        name: "crash0".into(),
        index: 4242,
    };
    mgr.refresh_from(&[crash0]).unwrap();
    let conn = mgr.connection("crash0").unwrap();
    let mut out = std::io::stdout().lock();
    writeln!(out, "READY").unwrap();
    for port in start..start + CHANGES {
        let (pair, global) = pair_of(port, start);
        let name = format!("n{port}");
        let changed = if global {
            mgr.open_global_port(pair.port(), pair.protocol(), &name)
        } else {
            conn.open_port(pair.port(), pair.protocol(), &name)
        }
        .unwrap();
        assert!(changed);
        writeln!(out, "ACK {port}").unwrap();
        out.flush().unwrap();
    }
    writeln!(out, "DONE").unwrap();
}

/// Runs one child from `start`, kills it after `kill_after` acknowledgements
/// (never, if `None`), and returns every port it acknowledged.
fn run_child(dir: &Path, start: u16, kill_after: Option<usize>) -> Vec<u16> {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env("V6FW_CRASH_DIR", dir)
        .env("V6FW_CRASH_START", start.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = Vec::new();
    let mut killed = false;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(p) = line.strip_prefix("ACK ") {
            acked.push(p.parse::<u16>().unwrap());
            if Some(acked.len()) == kill_after {
                // Let the child get into its next write, then kill it hard.
                std::thread::sleep(std::time::Duration::from_micros(
                    u64::try_from(acked.len() % 7).unwrap() * 150,
                ));
                child.kill().unwrap();
                killed = true;
                break;
            }
        }
    }
    // Acknowledgements already in the pipe count too.
    for line in lines {
        let Ok(line) = line else { break };
        if let Some(p) = line.strip_prefix("ACK ") {
            acked.push(p.parse::<u16>().unwrap());
        }
    }
    let status = child.wait().unwrap();
    if !killed {
        assert!(status.success(), "child failed: {status}");
    }
    acked
}

/// Every acknowledged change of every run is in the file, plus at most one
/// unacknowledged change per killed run.
fn check(dir: &Path, runs: &[(u16, Vec<u16>)]) {
    let store = PolicyStore::new(dir);
    let policy = store
        .load()
        .unwrap()
        .expect("the policy file exists")
        .policy;
    // crash0 is an interface the child adopted in memory: it reaches the
    // file with its first pair of its own.
    let adopted = v6fw_engine::Connection::new("crash0", "crash0", 0);
    let conn = policy.connections.get("crash0").unwrap_or(&adopted);
    for (start, acked) in runs {
        for &port in acked {
            let (pair, global) = pair_of(port, *start);
            let name = format!("n{port}");
            if global {
                assert_eq!(
                    policy.globals.get(&pair).map(|o| &o.name),
                    Some(&name),
                    "{pair} lost"
                );
            } else {
                assert_eq!(
                    conn.open.get(&pair).map(|o| &o.name),
                    Some(&name),
                    "{pair} lost"
                );
            }
        }
    }
    let acked: usize = runs.iter().map(|(_, a)| a.len()).sum();
    let present = policy.globals.len() + conn.open.len();
    assert!(
        present >= acked && present <= acked + runs.len(),
        "{present} pairs on disk for {acked} acknowledged changes"
    );
}

#[test]
fn crash_safety() {
    let dir = tempfile::tempdir().unwrap();
    let mut runs = Vec::new();
    for (i, kill_after) in [Some(1), Some(97), Some(500), None].into_iter().enumerate() {
        let start = 1 + u16::try_from(i).unwrap() * CHANGES;
        let acked = run_child(dir.path(), start, kill_after);
        match kill_after {
            Some(k) => assert!(acked.len() >= k),
            None => assert_eq!(acked.len(), usize::from(CHANGES)),
        }
        // Only acknowledged-or-in-flight changes of this run are counted
        // against it: an unacknowledged one may or may not be there.
        runs.push((start, acked));
        check(dir.path(), &runs);
        // Restart: the manager loads the file (and clears temp files).
        let mgr = FirewallManager::open(dir.path()).unwrap();
        let own = runs
            .iter()
            .flat_map(|(s, a)| a.iter().map(|p| pair_of(*p, *s).1));
        if own.clone().any(|global| !global) {
            assert!(mgr.connection("crash0").is_ok());
        }
        drop(mgr);
        let leftovers = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .map(|e| e.file_name() != "policy.toml" && e.file_name() != "policy.lock")
                    .unwrap_or(true)
            })
            .count();
        assert_eq!(leftovers, 0, "temporary files are cleaned up at start");
    }
}
