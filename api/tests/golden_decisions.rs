//! Behaviour unchanged: the per-packet lines of every shared capture, the
//! bundled samples and the fuzz corpora, decided under a few policies, equal
//! the lines recorded from main before the engine's walk and decision were
//! rewritten on wire views (issue 18). A line holds the decision (reason,
//! proto, dport), the walk's facts (outcome, extension headers, fragment,
//! Jumbo length, upper layer, ICMPv6 quote) and the firewall log line.
//!
//! The recorded lines are gzip files under `tests/golden/decisions/`, one per
//! set (a capture file, or a fuzz corpus), and `inputs.tsv` there names every
//! input file each set was recorded from, with its length and CRC-32. Only
//! those files are compared: a file the record does not name (a new shared
//! capture, an input a fuzz run or a contributor added to a corpus) is
//! reported as new and not compared, so adding inputs never fails the test;
//! a recorded file that changed or disappeared fails it, and so does any
//! line that differs. To re-record (only when a change of behaviour, or a
//! new input, is intended and reviewed):
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
const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/decisions");
/// The record of which input files each set was recorded from.
const INPUTS: &str = "inputs.tsv";

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

/// The files of a corpus directory, sorted (none if it does not exist).
fn corpus_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = entries
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

/// How a set's lines are made from its input files.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// One capture file, replayed.
    Capture,
    /// A corpus of capture files, each replayed after a `== NAME` line.
    CaptureCorpus,
    /// A corpus of raw packets ([`packet_lines`]).
    PacketCorpus,
}

/// Where a set's inputs come from: the shared captures beside the checkout,
/// or the repository itself.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Origin {
    Shared,
    Repo,
}

impl Origin {
    fn as_str(self) -> &'static str {
        match self {
            Origin::Shared => "shared",
            Origin::Repo => "repo",
        }
    }
}

/// One golden set as it is now: its name, how its lines are made and its
/// input files (name in the set, path), sorted by name.
struct Set {
    name: String,
    kind: Kind,
    origin: Origin,
    files: Vec<(String, PathBuf)>,
}

impl Set {
    /// The set's lines, from the inputs named in `keep` (in order).
    fn lines(&self, keep: &[&(String, PathBuf)]) -> String {
        match self.kind {
            Kind::Capture => keep.iter().map(|(_, p)| replay_lines(p)).collect(),
            Kind::CaptureCorpus => {
                let mut out = String::new();
                for (name, p) in keep {
                    let _ = writeln!(out, "== {name}");
                    out.push_str(&replay_lines(p));
                }
                out
            }
            Kind::PacketCorpus => {
                let paths: Vec<PathBuf> = keep.iter().map(|(_, p)| p.clone()).collect();
                packet_lines(&paths)
            }
        }
    }
}

/// Where the inputs are.
struct Roots {
    /// The checkout (its `samples/` and `fuzz/corpus/`).
    repo: PathBuf,
    /// The shared captures.
    captures: PathBuf,
}

/// Every golden set found under `roots` now.
fn sets(roots: &Roots) -> Vec<Set> {
    let mut sets = Vec::new();
    for (dir, origin) in [
        (roots.captures.clone(), Origin::Shared),
        (roots.repo.join("samples"), Origin::Repo),
    ] {
        let mut files = Vec::new();
        capture_files(&dir, &mut files);
        let base = if origin == Origin::Shared {
            roots.captures.clone()
        } else {
            roots.repo.clone()
        };
        for f in files {
            let rel = f
                .strip_prefix(&base)
                .unwrap()
                .to_string_lossy()
                .replace(['/', '\\'], "__");
            sets.push(Set {
                name: rel.clone(),
                kind: Kind::Capture,
                origin,
                files: vec![(rel, f)],
            });
        }
    }
    for (corpus, kind) in [
        ("capture_file", Kind::CaptureCorpus),
        ("decide", Kind::PacketCorpus),
        ("parse_vs_etherparse", Kind::PacketCorpus),
    ] {
        let files = corpus_files(&roots.repo.join("fuzz/corpus").join(corpus))
            .into_iter()
            .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
            .collect();
        sets.push(Set {
            name: format!("corpus__{corpus}"),
            kind,
            origin: Origin::Repo,
            files,
        });
    }
    sets
}

/// A file's content hash as recorded: its length and CRC-32.
fn content_hash(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let mut crc = flate2::Crc::new();
    crc.update(&bytes);
    format!("{}:{:08x}", bytes.len(), crc.sum())
}

/// One recorded input: its set's origin, and its content hash.
struct Recorded {
    origin: String,
    hash: String,
}

/// `inputs.tsv`: set -> input name -> what was recorded (sorted by name).
type Record = std::collections::BTreeMap<String, std::collections::BTreeMap<String, Recorded>>;

fn read_record(golden: &Path) -> Record {
    let path = golden.join(INPUTS);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut record = Record::new();
    for (i, l) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with('#'))
    {
        let f: Vec<&str> = l.split('\t').collect();
        let [set, origin, name, hash] = f[..] else {
            panic!("{}:{}: want set, origin, name, hash", path.display(), i + 1);
        };
        record.entry(set.to_owned()).or_default().insert(
            name.to_owned(),
            Recorded {
                origin: origin.to_owned(),
                hash: hash.to_owned(),
            },
        );
    }
    record
}

fn write_record(golden: &Path, sets: &[Set]) {
    let mut out =
        String::from("# set\torigin\tinput\tlength:crc32 (written by V6FW_GOLDEN_WRITE=1)\n");
    for s in sets {
        for (name, path) in &s.files {
            let _ = writeln!(
                out,
                "{}\t{}\t{name}\t{}",
                s.name,
                s.origin.as_str(),
                content_hash(path)
            );
        }
    }
    std::fs::write(golden.join(INPUTS), out).unwrap();
}

/// What a comparison found: notes (new inputs, skipped sets) and failures.
#[derive(Default, Debug)]
struct Report {
    notes: Vec<String>,
    failures: Vec<String>,
}

/// Compares the sets under `roots` (only those named in `only`, when given)
/// with the record in `golden`.
fn compare(roots: &Roots, golden: &Path, only: Option<&[&str]>) -> Report {
    let wanted = |name: &str| only.is_none_or(|o| o.contains(&name));
    let record = read_record(golden);
    let sets: Vec<Set> = sets(roots)
        .into_iter()
        .filter(|s| wanted(&s.name))
        .collect();
    let mut report = Report::default();
    let shared_present = roots.captures.is_dir();
    let mut skipped = 0;
    for (set, inputs) in record.iter().filter(|(s, _)| wanted(s)) {
        if sets.iter().any(|s| &s.name == set) {
            continue;
        }
        let shared = inputs.values().any(|r| r.origin == Origin::Shared.as_str());
        if shared && !shared_present {
            skipped += 1;
        } else {
            report
                .failures
                .push(format!("{set}: recorded, but its input is gone"));
        }
    }
    if skipped > 0 {
        report.notes.push(format!(
            "{skipped} recorded sets skipped: the shared captures are absent ({})",
            roots.captures.display()
        ));
    }
    for set in &sets {
        let Some(recorded) = record.get(&set.name) else {
            report.notes.push(format!(
                "{}: new set ({} inputs), not compared",
                set.name,
                set.files.len()
            ));
            continue;
        };
        let mut keep = Vec::new();
        let mut broken = false;
        for f in &set.files {
            match recorded.get(&f.0) {
                None => report
                    .notes
                    .push(format!("{}: new input {}, not compared", set.name, f.0)),
                Some(r) if r.hash != content_hash(&f.1) => {
                    broken = true;
                    report.failures.push(format!(
                        "{}: input {} changed since it was recorded ({} then, {} now)",
                        set.name,
                        f.0,
                        r.hash,
                        content_hash(&f.1)
                    ));
                }
                Some(_) => keep.push(f),
            }
        }
        for name in recorded.keys() {
            if !set.files.iter().any(|f| &f.0 == name) {
                broken = true;
                report
                    .failures
                    .push(format!("{}: recorded input {name} is gone", set.name));
            }
        }
        if broken {
            continue;
        }
        let path = gz_path(golden, &set.name);
        let Some(recorded) = read_gz(&path) else {
            report.failures.push(format!(
                "{}: no recorded lines at {}",
                set.name,
                path.display()
            ));
            continue;
        };
        let now = set.lines(&keep);
        if let Some(diff) = first_difference(&checkout_free(&recorded), &checkout_free(&now)) {
            report.failures.push(format!("{}, {diff}", set.name));
        }
    }
    report
}

/// The first line where `recorded` and `now` differ, if they do.
fn first_difference(recorded: &str, now: &str) -> Option<String> {
    if recorded == now {
        return None;
    }
    let (mut r, mut n) = (recorded.lines(), now.lines());
    for i in 1.. {
        match (r.next(), n.next()) {
            (Some(a), Some(b)) if a == b => {}
            (a, b) => {
                return Some(format!(
                    "line {i}:\n  recorded: {}\n  now:      {}",
                    a.unwrap_or("(end)"),
                    b.unwrap_or("(end)")
                ))
            }
        }
    }
    None
}

fn gz_path(golden: &Path, name: &str) -> PathBuf {
    golden.join(format!("{name}.txt.gz"))
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

/// Prints notes past the test harness's capture (they are not failures,
/// but a reader of `cargo test` should see them).
fn print_notes(notes: &[String]) {
    let mut err = std::io::stderr();
    for n in notes {
        let _ = writeln!(err, "golden_decisions: note: {n}");
    }
}

/// The checkout, with the shared captures beside it when they are there
/// (testkit's `shared::captures`: a clone alone skips them with a note; CI
/// and `V6FW_REQUIRE_LIVE=1` require them).
fn checkout() -> Roots {
    let captures = v6fw_testkit::shared::captures("golden_decisions")
        .unwrap_or_else(|| v6fw_testkit::shared::shared_dir().join("captures"));
    Roots {
        repo: PathBuf::from(ROOT),
        captures,
    }
}

#[test]
fn decisions_equal_the_recorded_lines() {
    let roots = checkout();
    let golden = Path::new(GOLDEN);
    if std::env::var_os("V6FW_GOLDEN_WRITE").is_some() {
        assert!(
            roots.captures.is_dir(),
            "recording needs the shared captures at {}",
            roots.captures.display()
        );
        let sets = sets(&roots);
        std::fs::create_dir_all(golden).unwrap();
        for s in &sets {
            let all: Vec<&(String, PathBuf)> = s.files.iter().collect();
            write_gz(&gz_path(golden, &s.name), &s.lines(&all));
        }
        write_record(golden, &sets);
        return;
    }
    let report = compare(&roots, golden, None);
    print_notes(&report.notes);
    assert!(
        report.failures.is_empty(),
        "{} differences from the recorded lines (an input changed, disappeared, or is decided \
         differently; re-record only if that is intended: see this file's docs):\n{}",
        report.failures.len(),
        report.failures.join("\n")
    );
}

/// A scratch copy of the `decide` corpus: a file added to it is a note, not
/// a failure; a recorded file changed or removed is a failure.
#[test]
fn new_inputs_are_notes_and_changed_inputs_fail() {
    let scratch = tempfile::tempdir().unwrap();
    let corpus = scratch.path().join("fuzz/corpus/decide");
    std::fs::create_dir_all(&corpus).unwrap();
    let original = corpus_files(&Path::new(ROOT).join("fuzz/corpus/decide"));
    for f in &original {
        std::fs::copy(f, corpus.join(f.file_name().unwrap())).unwrap();
    }
    let roots = Roots {
        repo: scratch.path().to_path_buf(),
        captures: scratch.path().join("no-captures"),
    };
    let only: &[&str] = &["corpus__decide"];
    let golden = Path::new(GOLDEN);

    let clean = compare(&roots, golden, Some(only));
    assert!(clean.failures.is_empty(), "{:?}", clean.failures);
    assert!(clean.notes.is_empty(), "{:?}", clean.notes);

    // A new input, as libFuzzer or a contributor would add it: a TCP SYN
    // to port 22 (decided, but not compared).
    let mut syn = vec![0x60, 0, 0, 0, 0, 20, 6, 64];
    syn.extend_from_slice(&[0xfd; 32]);
    syn.extend_from_slice(&[
        0x30, 0x39, 0, 22, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff,
    ]);
    syn.extend_from_slice(&[0, 0, 0, 0]);
    std::fs::write(corpus.join("new-finding"), &syn).unwrap();
    let added = compare(&roots, golden, Some(only));
    assert!(added.failures.is_empty(), "{:?}", added.failures);
    assert_eq!(
        added.notes,
        ["corpus__decide: new input new-finding, not compared"]
    );

    // One recorded input changed: a failure that names it.
    let victim = corpus.join(original[0].file_name().unwrap());
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes.push(0);
    std::fs::write(&victim, &bytes).unwrap();
    let changed = compare(&roots, golden, Some(only));
    let name = victim.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(changed.failures.len(), 1, "{:?}", changed.failures);
    assert!(changed.failures[0].contains(&format!("input {name} changed")));

    // Removed: a failure too.
    std::fs::remove_file(&victim).unwrap();
    let gone = compare(&roots, golden, Some(only));
    assert_eq!(
        gone.failures,
        [format!("corpus__decide: recorded input {name} is gone")]
    );
}

/// A decision that changes on a recorded input fails: the same corpus
/// compared against a record whose lines were altered.
#[test]
fn a_changed_decision_fails() {
    let scratch = tempfile::tempdir().unwrap();
    let golden = scratch.path().join("golden");
    std::fs::create_dir_all(&golden).unwrap();
    std::fs::copy(Path::new(GOLDEN).join(INPUTS), golden.join(INPUTS)).unwrap();
    let text = read_gz(&gz_path(Path::new(GOLDEN), "corpus__decide")).unwrap();
    let altered = text.replacen(" port_closed ", " open_port ", 1);
    assert_ne!(altered, text, "the corpus has a port_closed line to alter");
    write_gz(&gz_path(&golden, "corpus__decide"), &altered);
    let r = compare(&checkout(), &golden, Some(&["corpus__decide"]));
    assert_eq!(r.failures.len(), 1, "{:?}", r.failures);
    assert!(r.failures[0].starts_with("corpus__decide, line "));
}
