//! The control socket: every request, bad requests, many clients, access
//! control by peer uid, the CLI through a daemon, shutdown.
//!
//! On Windows the same requests, clients and CLI go through the named pipe;
//! the tests of raw socket I/O, peer uids and socket files are Unix-only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![cfg(any(unix, windows))]
#![cfg_attr(windows, allow(unused_imports, dead_code))]

use std::io::{BufRead, BufReader, Read, Write};
#[cfg(unix)]
use std::os::unix::fs::PermissionsExt;
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use v6fw_api::control::client::Client;
use v6fw_api::control::protocol::{
    ChangedResult, ConnectionsResult, PingResult, PortsResult, ProtoArg, Reply, Request,
    StatsResult,
};
use v6fw_api::control::server::serve;
use v6fw_api::fw::{FirewallManager, E_ABORT, E_FAIL, E_INVALIDARG};
use v6fw_engine::{PacketMeta, Protocol, Reason};

mod common;

use common::{tcp_syn, Daemon, DaemonOptions};

impl Daemon {
    /// A daemon on a socket in a fresh 0755 directory under /tmp (so an
    /// unprivileged user can reach it), with connection `test0` (index 1000).
    fn start() -> Daemon {
        Daemon::start_with(
            &DaemonOptions {
                prefix: "v6fw-control-",
                dir_mode: Some(0o755),
                socket: "run/control.sock",
                strict_stop: true,
            },
            |_| {},
        )
    }

    fn client(&self) -> Client {
        Client::connect(&self.socket)
            .unwrap()
            .expect("the daemon answers")
    }

    #[cfg(unix)]
    fn raw(&self) -> (UnixStream, BufReader<UnixStream>) {
        let s = UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let r = BufReader::new(s.try_clone().unwrap());
        (s, r)
    }
}

#[cfg(unix)]
fn read_reply(r: &mut BufReader<UnixStream>) -> Reply {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.ends_with('\n'), "a whole reply line: {line:?}");
    serde_json::from_str(&line).unwrap()
}

fn err_code(reply: &Reply) -> u32 {
    assert!(!reply.ok, "{reply:?}");
    reply.error.as_ref().unwrap().hresult
}

fn open(connection: Option<&str>, port: i64, proto: &str, name: &str) -> Request {
    Request::OpenPort {
        connection: connection.map(str::to_string),
        port,
        protocol: ProtoArg::Name(proto.into()),
        name: name.into(),
        from: Vec::new(),
        last_port: None,
    }
}

#[test]
fn ranges_over_the_socket_are_one_change() {
    let d = Daemon::start();
    let mut c = d.client();
    let range = |port: i64, last: i64| Request::OpenPort {
        connection: None,
        port,
        protocol: ProtoArg::Name("udp".into()),
        name: "r".into(),
        from: Vec::new(),
        last_port: Some(last),
    };
    let r: ChangedResult = c.request(&range(6000, 6007)).unwrap();
    assert!(r.changed);
    let g: PortsResult = c.request(&Request::GlobalPorts).unwrap();
    let ports: Vec<u16> = g.ports.iter().map(|p| p.port).collect();
    assert_eq!(ports, (6000..=6007).collect::<Vec<u16>>());
    for bad in [range(8, 7), range(0, 5), range(1, 70000)] {
        let e = c.call(&bad).unwrap_err();
        assert_eq!(e.hresult(), E_INVALIDARG, "{bad:?}: {e}");
    }
    let r: ChangedResult = c
        .request(&Request::ClosePort {
            connection: None,
            port: 6001,
            protocol: ProtoArg::Number(17),
            last_port: Some(6006),
        })
        .unwrap();
    assert!(r.changed);
    let g: PortsResult = c.request(&Request::GlobalPorts).unwrap();
    let ports: Vec<u16> = g.ports.iter().map(|p| p.port).collect();
    assert_eq!(ports, [6000, 6007]);
}

#[test]
fn load_replaces_the_whole_policy_or_nothing() {
    let d = Daemon::start();
    let mut c = d.client();
    let r: ChangedResult = c.request(&open(None, 443, "tcp", "https")).unwrap();
    assert!(r.changed);
    let load = |text: &str| Request::Load {
        policy: text.into(),
        source: "new.toml".into(),
    };
    let text =
        "[globals]\n\"ssh\" = { name = \"ssh\", from = [\"fd00::/8\"] }\n\"53/udp\" = \"dns\"\n";
    let r: ChangedResult = c.request(&load(text)).unwrap();
    assert!(r.changed);
    let g: PortsResult = c.request(&Request::GlobalPorts).unwrap();
    let got: Vec<(u16, &str, Vec<String>)> = g
        .ports
        .iter()
        .map(|p| (p.port, p.protocol.as_str(), p.from.clone()))
        .collect();
    assert_eq!(
        got,
        [
            (22, "tcp", vec!["fd00::/8".to_string()]),
            (53, "udp", vec![])
        ],
        "443/tcp is gone: the whole policy was replaced"
    );
    // The file holds exactly what runs.
    let stored = std::fs::read_to_string(d.dir.path().join("state/policy.toml")).unwrap();
    assert!(
        stored.contains("fd00::/8") && !stored.contains("443/tcp"),
        "{stored}"
    );
    // A file with one bad entry is refused whole.
    let e = c
        .call(&load(
            "[globals]\n\"80/tcp\" = \"web\"\n\"8:7/tcp\" = \"x\"\n",
        ))
        .unwrap_err();
    assert!(
        e.to_string().contains("new.toml is not valid at line 3"),
        "{e}"
    );
    let g: PortsResult = c.request(&Request::GlobalPorts).unwrap();
    assert_eq!(g.ports.len(), 2, "nothing of the bad file was applied");
    // Reload re-reads the daemon's own file.
    std::fs::write(
        d.dir.path().join("state/policy.toml"),
        "[globals]\n\"8080/tcp\" = \"alt\"\n",
    )
    .unwrap();
    let r: ChangedResult = c.request(&Request::Reload).unwrap();
    assert!(r.changed);
    let g: PortsResult = c.request(&Request::GlobalPorts).unwrap();
    assert_eq!(g.ports.iter().map(|p| p.port).collect::<Vec<_>>(), [8080]);
}

#[test]
fn scoped_open_over_the_socket() {
    let d = Daemon::start();
    let mut c = d.client();
    let scoped = |from: &[&str]| Request::OpenPort {
        connection: Some("test0".into()),
        port: 22,
        protocol: ProtoArg::Name("tcp".into()),
        name: "ssh".into(),
        from: from.iter().map(|s| s.to_string()).collect(),
        last_port: None,
    };
    let r: ChangedResult = c.request(&scoped(&["fd00::/8", "2001:db8::/32"])).unwrap();
    assert!(r.changed);
    let r: ChangedResult = c.request(&scoped(&["2001:db8::/32", "fd00::/8"])).unwrap();
    assert!(!r.changed, "the same scope in another order is no change");
    let ports: PortsResult = c
        .request(&Request::OpenPorts {
            connection: "test0".into(),
        })
        .unwrap();
    let p = ports.ports.iter().find(|p| p.port == 22).unwrap();
    assert_eq!(p.from, ["2001:db8::/32", "fd00::/8"]);
    let r: ChangedResult = c.request(&scoped(&["fd00::/16"])).unwrap();
    assert!(r.changed, "another scope replaces the scope");
    let e = c.call(&scoped(&["fd00::/8", "fd00::/200"])).unwrap_err();
    assert_eq!(e.hresult(), E_INVALIDARG);
    assert!(
        e.to_string()
            .contains("\"fd00::/200\" is not an IPv6 prefix"),
        "{e}"
    );
    let ports: PortsResult = c
        .request(&Request::OpenPorts {
            connection: "test0".into(),
        })
        .unwrap();
    let p = ports.ports.iter().find(|p| p.port == 22).unwrap();
    assert_eq!(p.from, ["fd00::/16"], "a refused change changes nothing");
}

#[test]
fn every_request_over_the_socket() {
    let d = Daemon::start();
    let mut c = d.client();
    let ping: PingResult = c.request(&Request::Ping).unwrap();
    assert!(ping.admin, "the tests run as root");
    let r: ChangedResult = c.request(&open(None, 443, "tcp", "https")).unwrap();
    assert!(r.changed);
    let r: ChangedResult = c.request(&open(None, 443, "tcp", "again")).unwrap();
    assert!(!r.changed);
    let r: ChangedResult = c
        .request(&Request::OpenPort {
            connection: Some("test0".into()),
            port: 22,
            protocol: ProtoArg::Number(6),
            name: "ssh".into(),
            from: Vec::new(),
            last_port: None,
        })
        .unwrap();
    assert!(r.changed);
    let g: PortsResult = c.request(&Request::GlobalPorts).unwrap();
    assert_eq!(g.ports.len(), 1);
    assert_eq!((g.ports[0].port, g.ports[0].name.as_str()), (443, "https"));
    let p: PortsResult = c
        .request(&Request::OpenPorts {
            connection: "test0".into(),
        })
        .unwrap();
    let got: Vec<(u16, &str)> = p.ports.iter().map(|p| (p.port, p.name.as_str())).collect();
    assert_eq!(got, [(22, "ssh"), (443, "https")]);
    let is = c
        .call(&Request::IsPortOpen {
            connection: Some("test0".into()),
            port: 443,
            protocol: ProtoArg::Number(6),
        })
        .unwrap();
    assert_eq!(is, json!({"open": false}), "own pairs only");
    for req in [
        Request::IgnoreGlobal {
            connection: "test0".into(),
            port: 443,
            protocol: ProtoArg::Name("TCP".into()),
        },
        Request::Disable {
            connection: "test0".into(),
        },
    ] {
        let r: ChangedResult = c.request(&req).unwrap();
        assert!(r.changed);
    }
    let conns: ConnectionsResult = c.request(&Request::Connections).unwrap();
    let t0 = conns.connections.iter().find(|c| c.id == "test0").unwrap();
    assert_eq!((t0.if_index, t0.firewalled), (1000, false));
    assert_eq!(t0.open, ["22/tcp"]);
    assert_eq!(t0.ignored, ["443/tcp"]);
    for req in [
        Request::ObserveGlobal {
            connection: "test0".into(),
            port: 443,
            protocol: ProtoArg::Number(6),
        },
        Request::Enable {
            connection: "test0".into(),
        },
        Request::ClosePort {
            connection: None,
            port: 443,
            protocol: ProtoArg::Number(6),
            last_port: None,
        },
    ] {
        let r: ChangedResult = c.request(&req).unwrap();
        assert!(r.changed, "{req:?}");
    }
    assert!(!d.mgr.is_global_port_open(443, Protocol::Tcp).unwrap());

    // Raw-number validation and unknown connections: E_INVALIDARG.
    for req in [
        open(None, 0, "tcp", ""),
        open(None, 65536, "udp", ""),
        open(None, -5, "udp", ""),
        open(None, 80, "icmp", ""),
        Request::OpenPort {
            connection: None,
            port: 80,
            protocol: ProtoArg::Number(1),
            name: String::new(),
            from: Vec::new(),
            last_port: None,
        },
        open(Some("nope"), 80, "tcp", ""),
    ] {
        let e = c.call(&req).unwrap_err();
        assert_eq!(e.hresult(), E_INVALIDARG, "{req:?}: {e}");
    }
    assert_eq!(d.mgr.global_open_ports().count(), 0);

    // Stats: the engine's counters per reason.
    let mut w = d.mgr.engine().worker();
    {
        let snap = d.mgr.engine().table().pin();
        w.decide(&snap, &tcp_syn(22), &PacketMeta::inbound(1000, 0));
        w.decide(&snap, &tcp_syn(23), &PacketMeta::inbound(1000, 0));
    }
    let s: StatsResult = c.request(&Request::Stats).unwrap();
    assert_eq!((s.packets, s.accepted, s.dropped), (2, 1, 1));
    let count = |name: &str| s.reasons.iter().find(|r| r.reason == name).unwrap().count;
    assert_eq!((count("open_port"), count("port_closed")), (1, 1));

    // Refresh re-reads the host's interfaces: test0 is not one of them, so
    // it keeps its policy with index 0.
    let _: ChangedResult = c.request(&Request::Refresh).unwrap();
    assert_eq!(d.mgr.connection("test0").unwrap().if_index().unwrap(), 0);
    assert!(d
        .mgr
        .connection("test0")
        .unwrap()
        .is_port_open(22, Protocol::Tcp)
        .unwrap());
}

#[test]
fn a_change_over_the_socket_decides_the_next_packet() {
    let d = Daemon::start();
    let mut c = d.client();
    let mut w = d.mgr.engine().worker();
    let mut decide = |port| {
        let snap = d.mgr.engine().table().pin();
        w.decide(&snap, &tcp_syn(port), &PacketMeta::inbound(1000, 0))
            .reason
    };
    assert_eq!(decide(8443), Reason::PortClosed);
    c.call(&open(Some("test0"), 8443, "tcp", "alt")).unwrap();
    assert_eq!(decide(8443), Reason::OpenPort);
    c.call(&open(None, 9443, "tcp", "g")).unwrap();
    assert_eq!(decide(9443), Reason::GlobalPort);
    // The acknowledged change is on disk too.
    let text = std::fs::read_to_string(d.dir.path().join("state/policy.toml")).unwrap();
    assert!(text.contains("\"9443/tcp\" = \"g\""), "{text}");
}

#[test]
#[cfg(unix)] // raw socket I/O: half-close, partial lines
fn bad_requests_get_error_replies_and_the_server_lives() {
    let d = Daemon::start();
    let (mut s, mut r) = d.raw();
    for line in [
        &b"hello"[..],
        b"{}",
        b"[1,2,3]",
        br#"{"op":"format_disk"}"#,
        br#"{"op":"open_port","port":80,"protocol":"tcp","conection":"test0"}"#,
        br#"{"op":"open_port","port":"80","protocol":"tcp"}"#,
        b"\xff\xfe\x00garbage",
    ] {
        s.write_all(line).unwrap();
        s.write_all(b"\n").unwrap();
        let reply = read_reply(&mut r);
        assert_eq!(err_code(&reply), E_INVALIDARG, "{line:?}");
        assert!(!reply.error.unwrap().message.is_empty());
    }
    // A blank line is skipped; the connection still works.
    s.write_all(b"\n{\"op\":\"ping\"}\n").unwrap();
    assert!(read_reply(&mut r).ok);
    assert_eq!(d.mgr.global_open_ports().count(), 0);

    // Oversized: an error reply, then the connection is closed.
    let (mut big, mut big_r) = d.raw();
    let junk = vec![b'x'; 70 * 1024];
    let _ = big.write_all(&junk);
    assert_eq!(err_code(&read_reply(&mut big_r)), E_INVALIDARG);
    let mut rest = Vec::new();
    let _ = big_r.read_to_end(&mut rest);
    assert!(rest.is_empty());

    // Half-written then the writer side closes: an error, then closed.
    let (mut half, mut half_r) = d.raw();
    half.write_all(br#"{"op":"pi"#).unwrap();
    half.shutdown(std::net::Shutdown::Write).unwrap();
    let reply = read_reply(&mut half_r);
    assert_eq!(err_code(&reply), E_INVALIDARG);
    assert!(reply.error.unwrap().message.contains("newline"));

    // Half-written and left hanging: E_ABORT after the request timeout,
    // while another client is served meanwhile.
    let (mut slow, mut slow_r) = d.raw();
    slow.write_all(br#"{"op":"#).unwrap();
    let t = Instant::now();
    let mut other = d.client();
    let _: PingResult = other.request(&Request::Ping).unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "not blocked by the slow client"
    );
    let reply = read_reply(&mut slow_r);
    assert_eq!(err_code(&reply), E_ABORT);
    assert!(t.elapsed() >= Duration::from_secs(4));

    // And the first connection is still fine.
    s.write_all(b"{\"op\":\"global_ports\"}\n").unwrap();
    assert!(read_reply(&mut r).ok);
}

#[test]
fn many_clients_at_once() {
    let d = Daemon::start();
    let threads: Vec<_> = (0..24u16)
        .map(|t| {
            let socket = d.socket.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect(&socket).unwrap().unwrap();
                for i in 0..10u16 {
                    let port = i64::from(10_000 + t * 100 + i);
                    let r: ChangedResult = c.request(&open(None, port, "udp", "m")).unwrap();
                    assert!(r.changed);
                    let _: PortsResult = c.request(&Request::GlobalPorts).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(d.mgr.global_open_ports().count(), 240);
    let reloaded = FirewallManager::open_read_only(&d.dir.path().join("state")).unwrap();
    assert_eq!(reloaded.global_open_ports().count(), 240, "all on disk");
}

/// Copies the `v6fw` binary where an unprivileged user can run it.
#[cfg(unix)]
fn v6fw_for_everyone(dir: &Path) -> PathBuf {
    let bin = dir.join("v6fw");
    std::fs::copy(env!("CARGO_BIN_EXE_v6fw"), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[cfg(unix)]
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(unix)]
fn as_nobody(bin: &Path, args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin)
        .args(args)
        .output()
        .unwrap()
}

#[test]
#[cfg(unix)] // uid 65534 through setpriv
fn unprivileged_users_read_but_cannot_change() {
    if !is_root() {
        eprintln!("note: not root, skipping the unprivileged-user test");
        return;
    }
    let d = Daemon::start();
    d.mgr.open_global_port(443, Protocol::Tcp, "https").unwrap();
    let bin = v6fw_for_everyone(d.dir.path());
    let sock = d.socket.to_str().unwrap();
    let out = as_nobody(&bin, &["ports", "list", "--global", "--socket", sock]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("443/tcp"),
        "{out:?}"
    );
    let out = as_nobody(
        &bin,
        &[
            "ports",
            "list",
            "--connection",
            "test0",
            "--json",
            "--socket",
            sock,
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["connections"]["test0"][0]["port"], 443);

    let before = d.mgr.policy();
    let out = as_nobody(
        &bin,
        &["ports", "open", "8443/tcp", "--name", "x", "--socket", sock],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("E_ACCESSDENIED 0x80070005") && err.contains("sudo"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    let out = as_nobody(
        &bin,
        &[
            "firewall",
            "disable",
            "--connection",
            "test0",
            "--socket",
            sock,
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("E_ACCESSDENIED"));
    assert_eq!(*d.mgr.policy(), *before, "nothing changed");

    // Without a daemon, editing the file directly is refused too.
    let state = d.dir.path().join("state");
    let out = as_nobody(
        &bin,
        &[
            "ports",
            "open",
            "8443/tcp",
            "--socket",
            "/nonexistent/s",
            "--state-dir",
            state.to_str().unwrap(),
        ],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("E_ACCESSDENIED"),
        "{out:?}"
    );
    let on_disk = FirewallManager::open_read_only(&state).unwrap();
    assert!(!on_disk.is_global_port_open(8443, Protocol::Tcp).unwrap());
}

#[test]
fn the_cli_goes_through_the_daemon() {
    let d = Daemon::start();
    let bin = env!("CARGO_BIN_EXE_v6fw");
    let sock = d.socket.to_str().unwrap();
    let elsewhere = d.dir.path().join("unused-state");
    let run = |args: &[&str]| {
        Command::new(bin)
            .args(args)
            .args(["--socket", sock, "--state-dir", elsewhere.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let out = run(&["ports", "open", "8080/tcp", "--name", "web"]);
    assert!(out.status.success(), "{out:?}");
    let out = run(&[
        "ports",
        "open",
        "53/udp",
        "--name",
        "dns",
        "--connection",
        "test0",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(d.mgr.is_global_port_open(8080, Protocol::Tcp).unwrap());
    assert!(d
        .mgr
        .connection("test0")
        .unwrap()
        .is_port_open(53, Protocol::Udp)
        .unwrap());
    assert!(
        !elsewhere.exists(),
        "the daemon's policy was changed, not a file"
    );
    let out = run(&[
        "ports",
        "ignore-global",
        "8080/tcp",
        "--connection",
        "test0",
    ]);
    assert!(out.status.success(), "{out:?}");
    let out = run(&["connections", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["connections"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["ignored"][0] == "8080/tcp"));
    let out = run(&["stats", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["packets"], 0);
    let out = run(&["ports", "close", "0/tcp"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("E_INVALIDARG 0x80070057"));
    let out = run(&["firewall", "disable", "--connection", "test0"]);
    assert!(out.status.success(), "{out:?}");
    assert!(!d.mgr.connection("test0").unwrap().is_firewalled().unwrap());
}

#[test]
#[cfg(unix)] // socket files: stale, in the way, their mode
fn shutdown_stale_and_live_sockets() {
    let mut d = Daemon::start();
    second_server_is_refused(&d, "already listening");
    d.stop();
    assert!(!d.socket.exists(), "the socket file is removed at shutdown");
    assert!(Client::connect(&d.socket).unwrap().is_none());
    // A stale socket file (nobody listening) is replaced.
    let stale = std::os::unix::net::UnixListener::bind(&d.socket).unwrap();
    drop(stale);
    assert!(d.socket.exists());
    let stop = Arc::new(AtomicBool::new(false));
    let h = serve(Arc::clone(&d.mgr), &d.socket, Arc::clone(&stop)).unwrap();
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o666);
    let mut c = Client::connect(&d.socket).unwrap().unwrap();
    let _: PingResult = c.request(&Request::Ping).unwrap();
    stop.store(true, Ordering::Release);
    h.join().unwrap();
    // A regular file in the way is not touched.
    std::fs::write(&d.socket, "x").unwrap();
    let e = serve(
        Arc::clone(&d.mgr),
        &d.socket,
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap_err();
    assert!(e.to_string().contains("not a socket"), "{e}");
    // With no daemon, reads fall back to the file; stats says no daemon runs.
    let out = Command::new(env!("CARGO_BIN_EXE_v6fw"))
        .args(["stats", "--socket", d.socket.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no v6fw daemon is running"));
}

/// `v6fw ARGS` as a client, without --socket.
fn v6fw_cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_v6fw"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn state_dir_leads_to_its_own_daemon_only() {
    let d = Daemon::start();
    d.mgr
        .open_global_port(4242, Protocol::Tcp, "daemon")
        .unwrap();
    let state = d.dir.path().join("state");
    // Without the record, --state-dir reads the file, never a daemon.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(
        other.path().join("policy.toml"),
        "[globals]\n\"5151/udp\" = \"file\"\n",
    )
    .unwrap();
    v6fw_api::store::record_socket(&state, &d.socket).unwrap();
    let list = |dir: &Path| {
        let out = v6fw_cli(&[
            "ports",
            "list",
            "--global",
            "--state-dir",
            dir.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    // The daemon's state dir leads to it (its policy, live).
    d.mgr.open_global_port(4343, Protocol::Tcp, "live").unwrap();
    let mine = list(&state);
    assert!(
        mine.contains("4242/tcp") && mine.contains("4343/tcp"),
        "{mine}"
    );
    // Another state dir shows its own file.
    let theirs = list(other.path());
    assert!(
        theirs.contains("5151/udp") && !theirs.contains("4242"),
        "{theirs}"
    );
    // A record there pointing at this daemon (which serves another
    // directory) is not followed.
    v6fw_api::store::record_socket(other.path(), &d.socket).unwrap();
    let theirs = list(other.path());
    assert!(
        theirs.contains("5151/udp") && !theirs.contains("4242"),
        "{theirs}"
    );
    // Commands that need a daemon say which state dir had none.
    let empty = tempfile::tempdir().unwrap();
    let out = v6fw_cli(&["stats", "--state-dir", empty.path().to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "no v6fw daemon has used the state directory {}",
            empty.path().display()
        )),
        "{err}"
    );
    // stats through the record reaches the daemon.
    let out = v6fw_cli(&["stats", "--json", "--state-dir", state.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[cfg(windows)]
fn a_second_server_on_a_live_pipe_is_refused() {
    let d = Daemon::start();
    if common::wine_skip("a second server on a live pipe (Wine ignores FIRST_PIPE_INSTANCE)") {
        return;
    }
    second_server_is_refused(&d, "exists already");
}

/// A second server on the live daemon's socket (pipe) is refused with `E_FAIL`
/// and a message that `says`.
fn second_server_is_refused(d: &Daemon, says: &str) {
    let e = serve(
        Arc::clone(&d.mgr),
        &d.socket,
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap_err();
    assert_eq!(e.hresult(), E_FAIL);
    assert!(e.to_string().contains(says), "{e}");
}
