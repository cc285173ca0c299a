//! The control socket: every request, bad requests, many clients. The CLI
//! through a daemon, access by peer uid and the socket's lifetime are in
//! cli_daemon.rs.
//!
//! On Windows the same requests and clients go through the named pipe; the
//! tests of raw socket I/O are Unix-only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![cfg(any(unix, windows))]
#![cfg_attr(windows, allow(unused_imports, dead_code))]

use std::io::{BufRead, BufReader, Read, Write};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use serde_json::json;
use v6fw_api::control::client::Client;
use v6fw_api::control::protocol::{
    ChangedResult, ConnectionsResult, PingResult, PortsResult, ProtoArg, Reply, Request,
    StatsResult,
};
use v6fw_api::fw::{FirewallManager, E_ABORT, E_INVALIDARG};
use v6fw_engine::{PacketMeta, Protocol, Reason};

mod common;

use common::{tcp_syn, Daemon};

impl Daemon {
    fn start() -> Daemon {
        Daemon::reachable("v6fw-control-")
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

    // Oversized (for root, who may `load` a large policy, past the
    // larger limit): an error reply, then the connection is closed.
    let (mut big, mut big_r) = d.raw();
    let junk = vec![b'x'; v6fw_api::control::protocol::MAX_ADMIN_REQUEST_BYTES + 1];
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
