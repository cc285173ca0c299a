//! One firewall log line in the W3C extended format of Windows Firewall's
//! `pfirewall.log`, so that tools which read that log read v6fw's.
//!
//! ```text
//! #Version: 1.5
//! #Software: v6fw 0.1.0
//! #Time Format: Local
//! #Fields: date time action protocol src-ip dst-ip src-port dst-port size tcpflags tcpsyn tcpack tcpwin icmptype icmpcode info path
//! 2026-01-01 00:00:00 DROP TCP 2001:db8:2::20 2001:db8:1::10 40003 8080 60 S 1000 0 65535 - - port_closed RECEIVE
//! ```
//!
//! A record is plain data of fixed size (no allocation), built on the packet
//! path and formatted on the writer thread. Every decided IPv6 packet can
//! have one, a version-6 packet under 40 bytes too: a field the packet does
//! not hold is `-`, as the W3C format allows.

use std::fmt::{self, Write as _};
use std::net::Ipv6Addr;

use v6fw_engine::walk::{Upper, Walk};
use v6fw_engine::wire::addresses_of_cut;
use v6fw_engine::{Decision, Direction, Reason, Verdict};

/// How every log file v6fw writes begins: the header up to the version.
pub const HEADER_START: &str = "#Version: 1.5\n#Software: v6fw ";

/// The header lines, ending with the `#Fields:` line.
pub fn header() -> String {
    format!(
        "{HEADER_START}{}\n#Time Format: Local\n#Fields: date time action protocol src-ip dst-ip src-port dst-port size tcpflags tcpsyn tcpack tcpwin icmptype icmpcode info path\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// TCP fields of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpFields {
    /// Flags byte.
    pub flags: u8,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// Window.
    pub window: u16,
}

/// One log line's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRecord {
    /// Wall-clock time, nanoseconds since the Unix epoch (UTC).
    pub time_ns: u64,
    /// Accept or drop.
    pub verdict: Verdict,
    /// SPEC.md's reason, written in `info`.
    pub reason: Reason,
    /// Upper-layer protocol, if the walk reached it.
    pub proto: Option<u8>,
    /// Source address (`None`: the packet is too short to hold it).
    pub src: Option<[u8; 16]>,
    /// Destination address (`None`: the packet is too short to hold it).
    pub dst: Option<[u8; 16]>,
    /// Source port (TCP/UDP).
    pub sport: Option<u16>,
    /// Destination port (TCP/UDP).
    pub dport: Option<u16>,
    /// Packet size in bytes.
    pub size: u32,
    /// TCP fields.
    pub tcp: Option<TcpFields>,
    /// ICMPv6 type and code.
    pub icmp: Option<(u8, u8)>,
    /// Which way the packet went.
    pub direction: Direction,
}

impl LogRecord {
    /// The record for a decided packet, or `None` for `not_ipv6` (no IPv6
    /// packet to log). A version-6 packet under 40 bytes has a record too,
    /// with the addresses it holds whole and `-` for the rest.
    pub fn new(
        packet: &[u8],
        walk: &Walk<'_>,
        decision: &Decision,
        direction: Direction,
        time_ns: u64,
    ) -> Option<LogRecord> {
        if decision.reason == Reason::NotIpv6 {
            return None;
        }
        let (src, dst) = if packet.len() >= 40 {
            (Some(walk.src()), Some(walk.dst()))
        } else {
            addresses_of_cut(packet)
        };
        let (sport, dport, tcp, icmp) = match walk.upper() {
            Upper::Tcp {
                sport,
                dport,
                flags,
                window,
                seq,
                ack,
            } => (
                Some(sport),
                Some(dport),
                Some(TcpFields {
                    flags,
                    seq,
                    ack,
                    window,
                }),
                None,
            ),
            Upper::Udp { sport, dport } => (Some(sport), Some(dport), None, None),
            Upper::Icmp { ty, code } => (None, None, None, Some((ty, code))),
            Upper::None | Upper::Other => (None, None, None, None),
        };
        Some(LogRecord {
            time_ns,
            verdict: decision.verdict(),
            reason: decision.reason,
            proto: decision.proto,
            src,
            dst,
            sport,
            dport,
            size: u32::try_from(packet.len()).unwrap_or(u32::MAX),
            tcp,
            icmp,
            direction,
        })
    }
}

/// The 16 bytes at `at`, if the packet holds them all.
fn protocol_name(p: u8) -> Option<&'static str> {
    match p {
        6 => Some("TCP"),
        17 => Some("UDP"),
        58 => Some("ICMPv6"),
        _ => None,
    }
}

fn tcp_flag_letters(flags: u8, out: &mut String) {
    // Windows Firewall's letters: A(ck) F(in) P(sh) R(st) S(yn) U(rg).
    for (bit, letter) in [
        (0x10, 'A'),
        (0x01, 'F'),
        (0x08, 'P'),
        (0x04, 'R'),
        (0x02, 'S'),
        (0x20, 'U'),
    ] {
        if flags & bit != 0 {
            out.push(letter);
        }
    }
    if out.is_empty() {
        out.push('-');
    }
}

/// Days since 1970-01-01 to a civil date (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

/// Writes `value` or `-`.
fn opt(out: &mut String, v: Option<impl fmt::Display>) {
    match v {
        Some(v) => {
            let _ = write!(out, " {v}");
        }
        None => out.push_str(" -"),
    }
}

impl LogRecord {
    /// Appends the line (with its newline) to `out`. `utc_offset_s` shifts
    /// the time to local time (`#Time Format: Local`).
    pub fn write_line(&self, out: &mut String, utc_offset_s: i64) {
        let secs = i64::try_from(self.time_ns / 1_000_000_000).unwrap_or(i64::MAX) + utc_offset_s;
        let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
        let t = secs.rem_euclid(86_400);
        let _ = write!(
            out,
            "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02} {}",
            t / 3600,
            t / 60 % 60,
            t % 60,
            match self.verdict {
                Verdict::Accept => "ALLOW",
                Verdict::Drop => "DROP",
            }
        );
        match self.proto {
            Some(p) => match protocol_name(p) {
                Some(name) => {
                    let _ = write!(out, " {name}");
                }
                None => {
                    let _ = write!(out, " {p}");
                }
            },
            None => out.push_str(" -"),
        }
        opt(out, self.src.map(Ipv6Addr::from));
        opt(out, self.dst.map(Ipv6Addr::from));
        opt(out, self.sport);
        opt(out, self.dport);
        let _ = write!(out, " {} ", self.size);
        match self.tcp {
            Some(t) => {
                let mut flags = String::new();
                tcp_flag_letters(t.flags, &mut flags);
                let _ = write!(out, "{flags} {} {} {}", t.seq, t.ack, t.window);
            }
            None => out.push_str("- - - -"),
        }
        opt(out, self.icmp.map(|(t, _)| t));
        opt(out, self.icmp.map(|(_, c)| c));
        let _ = writeln!(
            out,
            " {} {}",
            self.reason,
            match self.direction {
                Direction::Inbound => "RECEIVE",
                Direction::Outbound => "SEND",
            }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn flags() {
        let mut s = String::new();
        tcp_flag_letters(0x12, &mut s);
        assert_eq!(s, "AS");
        s.clear();
        tcp_flag_letters(0, &mut s);
        assert_eq!(s, "-");
    }

    #[test]
    fn a_line() {
        let r = LogRecord {
            time_ns: 1_767_225_600_000_000_000 + 61_000_000_000,
            verdict: Verdict::Drop,
            reason: Reason::PortClosed,
            proto: Some(6),
            src: Some("2001:db8:2::20".parse::<Ipv6Addr>().unwrap().octets()),
            dst: Some("2001:db8:1::10".parse::<Ipv6Addr>().unwrap().octets()),
            sport: Some(40003),
            dport: Some(8080),
            size: 60,
            tcp: Some(TcpFields {
                flags: 0x02,
                seq: 1000,
                ack: 0,
                window: 65535,
            }),
            icmp: None,
            direction: Direction::Inbound,
        };
        let mut s = String::new();
        r.write_line(&mut s, 3600);
        assert_eq!(
            s,
            "2026-01-01 01:01:01 DROP TCP 2001:db8:2::20 2001:db8:1::10 40003 8080 60 S 1000 0 65535 - - port_closed RECEIVE\n"
        );
    }

    #[test]
    fn a_short_version_6_packet_has_a_line_with_dashes() {
        let mut packet = vec![0x60, 0, 0, 0, 0, 0, 6, 64];
        packet.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        packet.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0]);
        assert_eq!(packet.len(), 30);
        let walk = v6fw_engine::walk::walk(&packet, false);
        // What the engine decides for it (SPEC step 2).
        let d = Decision {
            reason: Reason::Malformed,
            proto: None,
            dport: None,
        };
        let r = LogRecord::new(&packet, &walk, &d, Direction::Inbound, 0).unwrap();
        let mut s = String::new();
        r.write_line(&mut s, 0);
        assert_eq!(
            s,
            "1970-01-01 00:00:00 DROP - 2001:db8::1 - - - 30 - - - - - - malformed RECEIVE\n"
        );
        let r = LogRecord::new(packet.get(..20).unwrap(), &walk, &d, Direction::Inbound, 0);
        let mut s = String::new();
        r.unwrap().write_line(&mut s, 0);
        assert!(s.contains(" DROP - - - - - 20 "), "{s}");
    }

    #[test]
    fn new_reasons_are_written_by_name() {
        let src = "2001:db8:2::20".parse::<Ipv6Addr>().unwrap().octets();
        let dst = "2001:db8:1::10".parse::<Ipv6Addr>().unwrap().octets();
        let base = LogRecord {
            time_ns: 1_767_225_600_000_000_000,
            verdict: Verdict::Drop,
            reason: Reason::FragmentOverlap,
            proto: None,
            src: Some(src),
            dst: Some(dst),
            sport: None,
            dport: None,
            size: 64,
            tcp: None,
            icmp: None,
            direction: Direction::Inbound,
        };
        let mut s = String::new();
        base.write_line(&mut s, 0);
        assert!(
            s.ends_with(" - - - - - - fragment_overlap RECEIVE\n"),
            "{s}"
        );
        let icmp = LogRecord {
            reason: Reason::IcmpUnrelated,
            proto: Some(58),
            icmp: Some((1, 4)),
            ..base
        };
        s.clear();
        icmp.write_line(&mut s, 0);
        assert!(s.ends_with(" 1 4 icmp_unrelated RECEIVE\n"), "{s}");
    }
}
