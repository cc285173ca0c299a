//! What admins type for pairs: `22/tcp`, ranges `6000:6007/tcp` (inclusive,
//! as ufw), service names `ssh` or `ssh/tcp` (through the service table, see
//! [`Services`]).
//!
//! The engine does no I/O: the table is the bundled one unless the caller
//! installed another (the API installs `/etc/services` where it exists).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use super::{PolicyError, PortPair, Protocol};

/// Consecutive ports of one protocol, `first..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortRun {
    /// The protocol.
    pub protocol: Protocol,
    /// The first port, 1-65535.
    pub first: u16,
    /// The last port, `first` or more.
    pub last: u16,
}

impl PortRun {
    /// Every pair of the run, in order.
    pub fn pairs(self) -> impl Iterator<Item = PortPair> {
        (self.first..=self.last).filter_map(move |p| PortPair::new(p, self.protocol).ok())
    }
}

impl std::fmt::Display for PortRun {
    /// `22/tcp` or `6000:6007/tcp`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.first == self.last {
            write!(f, "{}/{}", self.first, self.protocol)
        } else {
            write!(f, "{}:{}/{}", self.first, self.last, self.protocol)
        }
    }
}

/// Service names and their pairs, as `/etc/services` has them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Services(BTreeMap<String, Vec<PortPair>>);

/// The bundled table: the common services, for hosts without
/// `/etc/services` (Windows, minimal containers).
const BUNDLED: &str = "\
ftp-data 20/tcp\nftp 21/tcp\nssh 22/tcp\ntelnet 23/tcp\nsmtp 25/tcp\n\
domain 53/tcp\ndomain 53/udp\nbootps 67/udp\nbootpc 68/udp\ntftp 69/udp\n\
http 80/tcp www\nkerberos 88/tcp\nkerberos 88/udp\npop3 110/tcp\nsunrpc 111/tcp\nsunrpc 111/udp\n\
ntp 123/udp\nnetbios-ns 137/udp\nnetbios-dgm 138/udp\nnetbios-ssn 139/tcp\nimap2 143/tcp imap\n\
snmp 161/udp\nsnmp-trap 162/udp\nldap 389/tcp\nhttps 443/tcp\nhttps 443/udp\nmicrosoft-ds 445/tcp\n\
isakmp 500/udp\nsyslog 514/udp\nsubmission 587/tcp\nipp 631/tcp\nldaps 636/tcp\nrsync 873/tcp\n\
imaps 993/tcp\npop3s 995/tcp\nsocks 1080/tcp\nopenvpn 1194/tcp\nopenvpn 1194/udp\nms-sql-s 1433/tcp\n\
l2tp 1701/udp\nradius 1812/udp\nnfs 2049/tcp\nnfs 2049/udp\nmysql 3306/tcp\nms-wbt-server 3389/tcp\n\
ipsec-nat-t 4500/udp\nsip 5060/tcp\nsip 5060/udp\nxmpp-client 5222/tcp\npostgresql 5432/tcp\n\
mdns 5353/udp\nx11 6000/tcp\nirc 6667/tcp\nhttp-alt 8080/tcp webcache\nwireguard 51820/udp\n";

static INSTALLED: OnceLock<Services> = OnceLock::new();

impl Services {
    /// The bundled table of common services.
    pub fn bundled() -> Services {
        Services::parse(BUNDLED)
    }

    /// Reads `/etc/services` text: `name port/proto [aliases...] [# comment]`;
    /// lines that are not that are skipped, as every resolver does.
    pub fn parse(text: &str) -> Services {
        let mut map: BTreeMap<String, Vec<PortPair>> = BTreeMap::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let (Some(name), Some(pair)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(pair) = pair.parse::<PortPair>() else {
                continue;
            };
            for n in std::iter::once(name).chain(words) {
                let e = map.entry(n.to_ascii_lowercase()).or_default();
                if !e.contains(&pair) {
                    e.push(pair);
                }
            }
        }
        Services(map)
    }

    /// Makes `self` the table names are resolved with, from now on. Only
    /// the first call counts (returns whether it did).
    pub fn install(self) -> bool {
        INSTALLED.set(self).is_ok()
    }

    /// The installed table, or the bundled one.
    pub fn current() -> &'static Services {
        static BUNDLED_TABLE: OnceLock<Services> = OnceLock::new();
        INSTALLED
            .get()
            .unwrap_or_else(|| BUNDLED_TABLE.get_or_init(Services::bundled))
    }

    /// The pairs of a service name (any case), sorted.
    pub fn lookup(&self, name: &str) -> Option<Vec<PortPair>> {
        let mut v = self.0.get(&name.to_ascii_lowercase())?.clone();
        v.sort_unstable();
        Some(v)
    }
}

/// Reads what an admin writes for pairs: `22/tcp`, `6000:6007/tcp`, `ssh`,
/// `ssh/tcp` (names through [`Services::current`]). The runs are sorted.
pub fn parse_spec(text: &str) -> Result<Vec<PortRun>, PolicyError> {
    let s = text.trim();
    let (ports, proto) = match s.split_once('/') {
        Some((ports, proto)) => (ports.trim(), Some(proto.parse::<Protocol>()?)),
        None => (s, None),
    };
    if let Some((lo, hi)) = ports.split_once(':') {
        let proto = proto.ok_or_else(|| PolicyError::InvalidPair(text.to_string()))?;
        let num = |t: &str| {
            t.trim()
                .parse::<u32>()
                .map_err(|_| PolicyError::InvalidPair(text.to_string()))
        };
        let (first, last) = (num(lo)?, num(hi)?);
        let port = |n: u32| {
            u16::try_from(n)
                .ok()
                .filter(|&p| p != 0)
                .ok_or(PolicyError::InvalidPort(n))
        };
        let (first, last) = (port(first)?, port(last)?);
        if first > last {
            return Err(PolicyError::InvalidRange(text.to_string()));
        }
        return Ok(vec![PortRun {
            protocol: proto,
            first,
            last,
        }]);
    }
    if ports.chars().all(|c| c.is_ascii_digit()) && !ports.is_empty() {
        let pair: PortPair = match proto {
            Some(_) => s.parse()?,
            None => return Err(PolicyError::InvalidPair(text.to_string())),
        };
        return Ok(vec![PortRun {
            protocol: pair.protocol(),
            first: pair.port(),
            last: pair.port(),
        }]);
    }
    let pairs = Services::current()
        .lookup(ports)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| proto.is_none_or(|want| p.protocol() == want))
        .map(|p| PortRun {
            protocol: p.protocol(),
            first: p.port(),
            last: p.port(),
        })
        .collect::<Vec<_>>();
    if pairs.is_empty() {
        return Err(PolicyError::UnknownService(text.to_string()));
    }
    Ok(pairs)
}

/// Every pair `text` names (see [`parse_spec`]), in order.
pub fn parse_pairs(text: &str) -> Result<Vec<PortPair>, PolicyError> {
    Ok(parse_spec(text)?
        .into_iter()
        .flat_map(PortRun::pairs)
        .collect())
}

/// Groups sorted pairs into runs of consecutive ports (for listings).
pub fn runs(pairs: impl IntoIterator<Item = PortPair>) -> Vec<PortRun> {
    let mut out: Vec<PortRun> = Vec::new();
    for p in pairs {
        match out.last_mut() {
            Some(r)
                if r.protocol == p.protocol() && u32::from(r.last) + 1 == u32::from(p.port()) =>
            {
                r.last = p.port();
            }
            _ => out.push(PortRun {
                protocol: p.protocol(),
                first: p.port(),
                last: p.port(),
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs_of(s: &str) -> Vec<String> {
        parse_spec(s)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn ranges_names_and_errors() {
        assert_eq!(runs_of("6000:6007/tcp"), ["6000:6007/tcp"]);
        assert_eq!(parse_pairs("6000:6007/tcp").unwrap().len(), 8);
        assert_eq!(runs_of("7:7/udp"), ["7/udp"]);
        assert_eq!(runs_of("22/tcp"), ["22/tcp"]);
        assert_eq!(runs_of("ssh"), ["22/tcp"]);
        assert_eq!(runs_of("SSH/tcp"), ["22/tcp"]);
        assert_eq!(runs_of("domain"), ["53/tcp", "53/udp"]);
        assert_eq!(runs_of("domain/udp"), ["53/udp"]);
        let e = |s: &str| parse_spec(s).unwrap_err().to_string();
        assert!(
            e("8:7/tcp").contains("\"8:7/tcp\" is backwards"),
            "{}",
            e("8:7/tcp")
        );
        assert_eq!(e("0:5/tcp"), "port 0 is not valid: ports are 1-65535");
        assert_eq!(
            e("1:70000/tcp"),
            "port 70000 is not valid: ports are 1-65535"
        );
        assert!(e("nosuchservice").contains("no service \"nosuchservice\""));
        assert!(e("ssh/udp").contains("no service \"ssh/udp\""));
        assert!(e("1:5").contains("not a port/protocol pair"));
        assert!(e("22").contains("not a port/protocol pair"));
    }

    #[test]
    fn services_text_and_runs() {
        let s = Services::parse("# c\nfoo 1234/tcp bar # x\nfoo 1234/udp\nbad line\nbaz 0/tcp\n");
        let tcp = PortPair::new(1234, Protocol::Tcp).unwrap();
        let udp = PortPair::new(1234, Protocol::Udp).unwrap();
        assert_eq!(s.lookup("FOO"), Some(vec![tcp, udp]));
        assert_eq!(s.lookup("bar"), Some(vec![tcp]));
        assert_eq!(s.lookup("baz"), None);
        let pairs =
            ["1/tcp", "2/tcp", "3/tcp", "5/tcp", "6/udp"].map(|p| p.parse::<PortPair>().unwrap());
        let r: Vec<String> = runs(pairs).iter().map(ToString::to_string).collect();
        assert_eq!(r, ["1:3/tcp", "5/tcp", "6/udp"]);
    }
}
