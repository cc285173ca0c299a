//! Behaviour unchanged: the per-packet lines of every shared capture, the
//! bundled samples and the fuzz corpora, decided under a few policies, equal
//! the lines recorded from main before the engine's walk and decision were
//! rewritten on wire views (issue 18). A line holds the decision (reason,
//! proto, dport), the walk's facts (outcome, extension headers, fragment,
//! Jumbo length, upper layer, ICMPv6 quote) and the firewall log line.
//!
//! The recorded lines are gzip files under `tests/golden/decisions/`. To
//! re-record them (only when a change of behaviour is intended and reviewed):
//! `V6FW_GOLDEN_WRITE=1 cargo test -p v6fw-api --test golden_decisions`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use v6fw_api::log::LogRecord;
use v6fw_capture::file::CaptureFile;
use v6fw_capture::replay::{replay, ReplayOptions};
use v6fw_engine::walk::walk;
use v6fw_engine::{
    Connection, Decision, Direction, Engine, HashKey, IcmpErrors, PacketMeta, Policy, PortPair,
    Prefix, Protocol, Scope, StateConfig,
};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const CAPTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/captures");
const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/decisions");

fn pair(port: u16, proto: Protocol) -> PortPair {
    PortPair::new(port, proto).unwrap()
}

fn prefixes(texts: &[&str]) -> Vec<Prefix> {
    texts.iter().map(|t| t.parse().unwrap()).collect()
}

/// The policies, with the local prefixes of their replay.
fn policies() -> Vec<(&'static str, Policy, Vec<Prefix>)> {
    let default = Policy::default();

    let mut open = Policy::default();
    open.state.enabled = true;
    for (port, proto) in [
        (22, Protocol::Tcp),
        (80, Protocol::Tcp),
        (443, Protocol::Tcp),
        (53, Protocol::Udp),
        (123, Protocol::Udp),
    ] {
        open.open_global(pair(port, proto), "g");
    }
    let mut conn = Connection::new("eth0", "eth0", 0);
    conn.open_port(pair(547, Protocol::Udp), "dhcp");
    conn.open_port(pair(179, Protocol::Tcp), "bgp");
    conn.ignore_global(pair(80, Protocol::Tcp));
    open.add_connection(conn).unwrap();

    let mut related = open.clone();
    related.icmp_errors = IcmpErrors::Related;

    let mut scoped = Policy::default();
    scoped.state.enabled = true;
    let link_local = Scope::parse(&["fe80::/10"]).unwrap();
    let global = Scope::parse(&["2000::/3"]).unwrap();
    scoped.open_global_from(pair(22, Protocol::Tcp), "ssh", link_local.clone());
    scoped.open_global_from(pair(53, Protocol::Udp), "dns", global.clone());
    let mut conn = Connection::new("eth0", "eth0", 0);
    conn.open_port_from(pair(80, Protocol::Tcp), "web", global);
    conn.open_port_from(pair(547, Protocol::Udp), "dhcp", link_local);
    scoped.add_connection(conn).unwrap();

    let mut disabled = Policy::default();
    let mut conn = Connection::new("eth0", "eth0", 0);
    conn.enabled = false;
    disabled.add_connection(conn).unwrap();

    vec![
        ("default", default, vec![]),
        (
            "open_state",
            open,
            prefixes(&["fe80::/10", "2001:db8::/32"]),
        ),
        ("related", related, prefixes(&["2000::/3"])),
        ("scoped", scoped, prefixes(&["fe80::/16"])),
        ("disabled", disabled, vec![]),
    ]
}

fn engine(policy: &Policy) -> Engine {
    let state = StateConfig {
        hash_key: HashKey::Fixed(18),
        ..StateConfig::from(&policy.state)
    };
    Engine::with_state(policy.clone(), state)
}

/// One packet's line: the decision, the walk's facts, the log line.
fn line(out: &mut String, tag: &str, packet: &[u8], meta: &PacketMeta, d: &Decision) {
    let w = walk(packet, meta.truncated);
    let dir = match meta.direction {
        Direction::Inbound => "in",
        Direction::Outbound => "out",
    };
    let col = |v: Option<u16>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    let _ = write!(
        out,
        "{tag} {dir} if{} t{} {} {} {} | {:?} hl{} ext{} {:?} {:?} {:?} {:?} {:?} |",
        meta.if_index,
        u8::from(meta.truncated),
        d.reason,
        col(d.proto.map(u16::from)),
        col(d.dport),
        w.outcome(),
        w.hop_limit(),
        w.ext_headers(),
        w.proto(),
        w.fragment(),
        w.jumbo(),
        w.upper(),
        w.quote(),
    );
    match LogRecord::new(packet, &w, d, meta.direction, meta.now_ns) {
        Some(r) => {
            out.push(' ');
            r.write_line(out, 0);
        }
        None => out.push_str(" -\n"),
    }
}

fn capture_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            capture_files(&p, out);
        } else if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("pcap" | "pcapng")
        ) {
            out.push(p);
        }
    }
}

fn corpus_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

/// The lines of one capture file replayed under every policy.
fn replay_lines(path: &Path) -> String {
    let mut out = String::new();
    for (name, policy, local) in policies() {
        let engine = engine(&policy);
        let opts = ReplayOptions { local, if_index: 0 };
        let Ok(mut file) = CaptureFile::open(path) else {
            let _ = writeln!(out, "{name} cannot open");
            return out;
        };
        let r = replay(&mut file, &engine, &opts, |r| {
            let tag = format!("{name} #{}", r.frame);
            line(&mut out, &tag, r.packet, &r.meta, &r.decision);
            ControlFlow::Continue(())
        });
        match r {
            Ok(t) => {
                let _ = writeln!(out, "{name} end {} packets", t.packets());
            }
            Err(e) => {
                let _ = writeln!(out, "{name} error {e}");
            }
        }
    }
    out
}

/// The lines of raw packet inputs (a fuzz corpus), each decided on a fresh
/// worker as the `decide` fuzz check sequences it: inbound, inbound on a
/// disabled or unknown interface, outbound, inbound again; whole and truncated.
fn packet_lines(files: &[PathBuf]) -> String {
    let mut out = String::new();
    for (name, policy, _) in policies() {
        let engine = engine(&policy);
        let snap = engine.table().pin();
        for f in files {
            let data = std::fs::read(f).unwrap();
            let base = f.file_name().unwrap().to_string_lossy();
            for truncated in [false, true] {
                let mut worker = engine.worker();
                let metas = [
                    PacketMeta::inbound(0, 1),
                    PacketMeta::inbound(7, 2),
                    PacketMeta::outbound(0, 3),
                    PacketMeta::inbound(0, 4),
                ];
                for meta in metas {
                    let meta = PacketMeta { truncated, ..meta };
                    let d = worker.decide(&snap, &data, &meta);
                    line(&mut out, &format!("{name} {base}"), &data, &meta, &d);
                }
            }
        }
    }
    out
}

/// Every golden set: its file name and its lines now.
fn sets() -> Vec<(String, String)> {
    let mut sets = Vec::new();
    let mut files = Vec::new();
    capture_files(Path::new(CAPTURES), &mut files);
    capture_files(&Path::new(ROOT).join("samples"), &mut files);
    for f in &files {
        let rel = f
            .strip_prefix(CAPTURES)
            .or_else(|_| f.strip_prefix(ROOT))
            .unwrap()
            .to_string_lossy()
            .replace(['/', '\\'], "__");
        sets.push((rel, replay_lines(f)));
    }
    for corpus in ["capture_file"] {
        let mut out = String::new();
        for f in corpus_files(&Path::new(ROOT).join("fuzz/corpus").join(corpus)) {
            let _ = writeln!(out, "== {}", f.file_name().unwrap().to_string_lossy());
            out.push_str(&replay_lines(&f));
        }
        sets.push((format!("corpus__{corpus}"), out));
    }
    for corpus in ["decide", "parse_vs_etherparse"] {
        let files = corpus_files(&Path::new(ROOT).join("fuzz/corpus").join(corpus));
        sets.push((format!("corpus__{corpus}"), packet_lines(&files)));
    }
    sets
}

fn gz_path(name: &str) -> PathBuf {
    Path::new(GOLDEN).join(format!("{name}.txt.gz"))
}

fn read_gz(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    let mut s = String::new();
    GzDecoder::new(&bytes[..]).read_to_string(&mut s).ok()?;
    Some(s)
}

fn write_gz(path: &Path, text: &str) {
    let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(text.as_bytes()).unwrap();
    std::fs::write(path, enc.finish().unwrap()).unwrap();
}

/// `text` with the checkout's directory taken out of every path an error
/// line names (`/work/x/api/../fuzz/corpus/...` is `fuzz/corpus/...`, with
/// `/` between its parts on Windows too): the lines were recorded in another
/// checkout, on Linux.
fn checkout_free(text: &str) -> String {
    text.lines()
        .map(|l| match (l.find(" /"), l.find("/api/..")) {
            (Some(start), Some(end)) if start < end => {
                // `/api/..` and the separator after it (`/`, or `\` on Windows).
                let rest = &l[end + "/api/../".len()..];
                format!("{}{}", &l[..=start], rest.replace('\\', "/"))
            }
            _ => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn decisions_equal_the_recorded_lines() {
    let sets = sets();
    assert!(
        sets.len() > 100,
        "the shared captures are missing: {CAPTURES}"
    );
    if std::env::var_os("V6FW_GOLDEN_WRITE").is_some() {
        std::fs::create_dir_all(GOLDEN).unwrap();
        for (name, text) in &sets {
            write_gz(&gz_path(name), text);
        }
        return;
    }
    let mut failures = Vec::new();
    for (name, now) in &sets {
        let path = gz_path(name);
        let Some(recorded) = read_gz(&path) else {
            failures.push(format!("{name}: no recorded lines at {}", path.display()));
            continue;
        };
        let (recorded, now) = (checkout_free(&recorded), checkout_free(now));
        if recorded == now {
            continue;
        }
        let (mut r, mut n) = (recorded.lines(), now.lines());
        for i in 1.. {
            match (r.next(), n.next()) {
                (Some(a), Some(b)) if a == b => {}
                (a, b) => {
                    failures.push(format!(
                        "{name}, line {i}:\n  recorded: {}\n  now:      {}",
                        a.unwrap_or("(end)"),
                        b.unwrap_or("(end)")
                    ));
                    break;
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} sets differ from the lines recorded on main:\n{}",
        failures.len(),
        sets.len(),
        failures.join("\n")
    );
}
