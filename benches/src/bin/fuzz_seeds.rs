//! Writes the fuzz seed corpora: hand-built packets (every SPEC.md case the
//! decision distinguishes) and a few dozen IPv6 packets taken from the shared
//! captures, plus operation sequences for `policy_ops`.
//!
//! ```text
//! cargo run -p v6fw-benches --bin fuzz_seeds -- --captures ../shared/captures --out fuzz/corpus
//! ```
//!
//! Capture packets are chosen for variety: per capture file, the first packet
//! of each distinct (walk outcome, protocol, extension-header count) shape, and
//! only shapes not already taken from another file more than twice. Packets
//! over 2 KiB are skipped, so the corpora stay small. File names are
//! `hand-<case>` and `cap-<fnv hash>`, so reruns overwrite, never duplicate.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use v6fw_benches::capture::read_ipv6;
use v6fw_engine::walk::walk;
use v6fw_testkit::packets::{self, Rng};

/// Write the fuzz seed corpora.
#[derive(Parser)]
struct Args {
    /// The shared capture directory (searched recursively for .pcap/.pcapng).
    #[arg(long)]
    captures: Option<PathBuf>,
    /// The corpus root: files go to OUT/TARGET/ (one directory per fuzz target).
    #[arg(long, default_value = "fuzz/corpus")]
    out: PathBuf,
    /// Most capture packets to take.
    #[arg(long, default_value_t = 90)]
    max_capture: usize,
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn set(p: &mut [u8], at: usize, v: u8) {
    if let Some(b) = p.get_mut(at) {
        *b = v;
    }
}

fn set16(p: &mut [u8], at: usize, v: u16) {
    if let Some(b) = p.get_mut(at..at + 2) {
        b.copy_from_slice(&v.to_be_bytes());
    }
}

/// A packet with a raw extension chain: fixed header, then `exts` (each
/// (kind, bytes without the first two)), then `upper` with protocol `proto`.
fn chain(exts: &[(u8, Vec<u8>)], proto: u8, upper: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    let kinds: Vec<u8> = exts.iter().map(|e| e.0).chain([proto]).collect();
    for (i, (kind, rest)) in exts.iter().enumerate() {
        let next = kinds.get(i + 1).copied().unwrap_or(59);
        let len = if *kind == 51 {
            ((rest.len() + 2) / 4).saturating_sub(2)
        } else {
            ((rest.len() + 2) / 8).saturating_sub(1)
        };
        body.push(next);
        body.push(u8::try_from(len).unwrap_or(0));
        body.extend_from_slice(rest);
    }
    body.extend_from_slice(upper);
    let mut p = vec![
        0x60,
        0,
        0,
        0,
        0,
        0,
        kinds.first().copied().unwrap_or(proto),
        64,
    ];
    set16(&mut p, 4, u16::try_from(body.len()).unwrap_or(0));
    p.extend_from_slice(&packets::remote(1));
    p.extend_from_slice(&packets::LOCAL);
    p.extend_from_slice(&body);
    p
}

fn tcp_header(dport: u16) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    set16(&mut t, 0, 40_000);
    set16(&mut t, 2, dport);
    set(&mut t, 12, 5 << 4);
    set(&mut t, 13, 0x02);
    t
}

fn hand_packets() -> Vec<(String, Vec<u8>)> {
    let opts = vec![1u8, 4, 0, 0, 0, 0];
    let rt = |ty: u8| {
        let mut r = vec![ty, 0, 0, 0, 0, 0];
        r.extend_from_slice(&packets::LOCAL);
        r
    };
    let frag = |offset: u16, more: bool, id: u32| {
        let mut f = vec![0u8; 6];
        set16(&mut f, 0, (offset << 3) | u16::from(more));
        if let Some(b) = f.get_mut(2..6) {
            b.copy_from_slice(&id.to_be_bytes());
        }
        f
    };
    let tcp = tcp_header(22);
    let mut v: Vec<(String, Vec<u8>)> = vec![
        ("tcp-syn-22".into(), packets::tcp_syn(1, 40_000, 22)),
        ("tcp-syn-closed".into(), packets::tcp_syn(1, 40_000, 9)),
        ("tcp-syn-global".into(), packets::tcp_syn(1, 40_000, 8080)),
        ("tcp-reply".into(), packets::tcp_reply(1, 443, 40_000)),
        ("tcp-out".into(), packets::tcp_out(1, 40_000, 443)),
        ("udp-53".into(), packets::udp(1, 40_000, 53)),
        ("udp-123".into(), packets::udp(1, 40_000, 123)),
        ("icmp-ndp-255".into(), packets::icmpv6_ndp(1)),
        ("icmp-ndp-64".into(), packets::icmpv6(1, 135, 64)),
        ("icmp-echo".into(), packets::icmpv6(1, 128, 64)),
        ("icmp-redirect".into(), packets::icmpv6(1, 137, 255)),
        ("ext-chain3".into(), packets::ext_chain3(1, 40_000, 22)),
        ("first-fragment".into(), packets::first_fragment(1, 53, 7)),
        ("later-fragment".into(), packets::udp_fragment(1, 53, 7, 9)),
        ("malformed-length".into(), packets::malformed(1, 22)),
        ("routing0".into(), chain(&[(43, rt(0))], 6, &tcp)),
        ("routing2".into(), chain(&[(43, rt(2))], 6, &tcp)),
        (
            "chain9".into(),
            chain(
                &[
                    (60, opts.clone()),
                    (43, rt(2)),
                    (51, vec![0; 10]),
                    (43, rt(2)),
                    (51, vec![0; 10]),
                    (43, rt(2)),
                    (51, vec![0; 10]),
                    (43, rt(2)),
                    (60, opts.clone()),
                ],
                6,
                &tcp,
            ),
        ),
        (
            "two-fragment-headers".into(),
            chain(&[(44, frag(0, false, 1)), (44, frag(0, false, 2))], 6, &tcp),
        ),
        (
            "three-dest-opts".into(),
            chain(
                &[(60, opts.clone()), (60, opts.clone()), (60, opts.clone())],
                6,
                &tcp,
            ),
        ),
        (
            "hbh-not-first".into(),
            chain(&[(60, opts.clone()), (0, opts.clone())], 6, &tcp),
        ),
        (
            "no-next-header".into(),
            chain(&[(60, opts.clone())], 59, &[]),
        ),
        (
            "atomic-fragment".into(),
            chain(&[(44, frag(0, false, 3))], 6, &tcp),
        ),
        (
            "first-fragment-cut-tcp".into(),
            chain(
                &[(44, frag(0, true, 4))],
                6,
                tcp.get(..10).unwrap_or_default(),
            ),
        ),
        (
            "first-fragment-cut-chain".into(),
            chain(&[(44, frag(0, true, 5)), (60, vec![1, 20, 0, 0])], 6, &[]),
        ),
        ("ah-zero-len".into(), chain(&[(51, vec![0; 6])], 6, &tcp)),
        (
            "ah".into(),
            chain(&[(51, vec![0; 10])], 17, &[0, 1, 0, 53, 0, 8, 0, 0]),
        ),
        (
            "short-tcp".into(),
            chain(&[], 6, tcp.get(..12).unwrap_or_default()),
        ),
        ("tcp-offset-4".into(), {
            let mut t = tcp.clone();
            set(&mut t, 12, 4 << 4);
            chain(&[], 6, &t)
        }),
        (
            "udp-bad-length".into(),
            chain(&[], 17, &[0, 1, 0, 53, 0, 200, 0, 0]),
        ),
        ("esp".into(), chain(&[], 50, &[0; 16])),
        ("sctp".into(), chain(&[], 132, &[0; 12])),
        (
            "mobility".into(),
            chain(&[(60, opts.clone())], 135, &[0; 8]),
        ),
        (
            "ipv4".into(),
            vec![
                0x45, 0, 0, 20, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
            ],
        ),
        ("empty".into(), vec![]),
        ("v6-39-bytes".into(), {
            let mut p = vec![0u8; 39];
            set(&mut p, 0, 0x60);
            p
        }),
        ("fixed-only-plen0".into(), {
            let mut p = vec![0u8; 40];
            set(&mut p, 0, 0x60);
            set(&mut p, 6, 59);
            p
        }),
    ];
    // Jumbo: payload length 0, hop-by-hop with a Jumbo option of 20 + 8 + 20.
    let mut jumbo_opt = vec![0xC2u8, 4];
    jumbo_opt.extend_from_slice(&(8u32 + 20).to_be_bytes());
    let mut jumbo = chain(&[(0, jumbo_opt)], 6, &tcp);
    set16(&mut jumbo, 4, 0);
    v.push(("jumbo-tcp".into(), jumbo));
    let mut padded = packets::udp(1, 40_000, 53);
    padded.extend_from_slice(&[0xAA; 12]);
    v.push(("udp-with-padding".into(), padded));
    // Issue 12: NDP in an atomic fragment (RFC 6980), MLD at hop limits 1 and
    // 2, an ICMPv6 error quoting one of the host's packets, a SYN-ACK reply,
    // and a first fragment with data after its TCP header (later fragments
    // at offset 8 overlap it, RFC 5722).
    let mut ns_atomic = chain(&[(44, frag(0, false, 9))], 58, &[135, 0, 0, 0, 0, 0, 0, 0]);
    set(&mut ns_atomic, 7, 255);
    v.push(("icmp-ns-atomic".into(), ns_atomic));
    v.push(("icmp-mld-hl1".into(), packets::icmpv6(1, 131, 1)));
    v.push(("icmp-mld-hl2".into(), packets::icmpv6(1, 131, 2)));
    let mut error = vec![1u8, 0, 0, 0, 0, 0, 0, 0];
    error.extend_from_slice(&packets::tcp_out(1, 40_000, 443));
    v.push(("icmp-error-quote".into(), chain(&[], 58, &error)));
    let mut syn_ack = tcp.clone();
    set(&mut syn_ack, 13, 0x12);
    v.push(("tcp-syn-ack".into(), chain(&[], 6, &syn_ack)));
    let mut data = tcp.clone();
    data.extend_from_slice(&[0xAB; 32]);
    v.push((
        "first-fragment-tcp-data".into(),
        chain(&[(44, frag(0, true, 11))], 6, &data),
    ));
    v
}

fn policy_seeds() -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = vec![
        // open global 22/tcp "a", hold, close it, check the held one
        ("open-hold-close".into(), vec![0, 3, 0, 7, 8, 1, 3, 0]),
        // open on c0, ignore global, observe, disable, enable
        (
            "conn-ops".into(),
            vec![2, 0, 4, 1, 4, 0, 7, 0, 7, 5, 0, 7, 6, 1, 0, 6, 1, 1],
        ),
        // port 0 refused; unknown connection refused
        ("refusals".into(), vec![0, 0, 0, 2, 1, 16, 2, 10]),
        (
            "hold-many".into(),
            vec![7, 8, 0, 5, 1, 7, 8, 2, 2, 6, 3, 7, 8, 9, 1, 5, 0, 9, 7],
        ),
    ];
    let mut rng = Rng::new(99);
    for i in 0..16 {
        let len = 8 + usize::try_from(rng.below(120)).unwrap_or(0);
        let bytes = (0..len).map(|_| rng.next_u64().to_le_bytes()[0]).collect();
        v.push((format!("random-{i}"), bytes));
    }
    v
}

fn captures(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            captures(&p, out);
        } else if p.extension().is_some_and(|e| e == "pcap" || e == "pcapng") {
            out.push(p);
        }
    }
}

fn capture_packets(dir: &Path, max: usize) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    captures(dir, &mut files);
    let mut shapes: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for f in files {
        let Ok(pkts) = read_ipv6(&f) else { continue };
        let mut local: Vec<String> = Vec::new();
        for p in pkts {
            if p.bytes.len() > 2_048 || out.len() >= max {
                continue;
            }
            let w = walk(&p.bytes, p.truncated);
            let shape = format!(
                "{:?}/{:?}/{}/{}",
                w.outcome(),
                w.proto(),
                w.ext_headers(),
                p.truncated
            );
            let seen = shapes.entry(shape.clone()).or_insert(0);
            if local.contains(&shape) || *seen >= 2 {
                continue;
            }
            *seen += 1;
            local.push(shape);
            out.push((format!("cap-{:016x}", fnv(&p.bytes)), p.bytes));
        }
    }
    out
}

fn write_all(dir: &Path, seeds: &[(String, Vec<u8>)]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut pkts: Vec<(String, Vec<u8>)> = hand_packets()
        .into_iter()
        .map(|(n, b)| (format!("hand-{n}"), b))
        .collect();
    if let Some(dir) = &args.captures {
        let caps = capture_packets(dir, args.max_capture);
        println!("{} packets from captures", caps.len());
        pkts.extend(caps);
    }
    let ops: Vec<(String, Vec<u8>)> = policy_seeds()
        .into_iter()
        .map(|(n, b)| (format!("hand-{n}"), b))
        .collect();
    for (target, seeds) in [
        ("decide", &pkts),
        ("parse_vs_etherparse", &pkts),
        ("policy_ops", &ops),
    ] {
        if let Err(e) = write_all(&args.out.join(target), seeds) {
            eprintln!("error: writing {}: {e}", args.out.join(target).display());
            return ExitCode::FAILURE;
        }
        println!("{target}: {} seeds", seeds.len());
    }
    ExitCode::SUCCESS
}
