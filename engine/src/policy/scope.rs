//! Source scopes (SPEC.md, "Scopes"): IPv6 prefixes, the scope a pair may
//! carry, and an open pair's entry (its name and its scope).
//!
//! In the policy file an entry is either its name (`"22/tcp" = "ssh"`, any
//! source) or a table (`"22/tcp" = { name = "ssh", from = ["fd00::/8"] }`);
//! unknown keys in the table are refused.

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use serde::de::{Error, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An IPv6 prefix such as `fd00::/8`; an address alone is a /128. Read from
/// text, a prefix with bits set past its length (`fd00::1/8`) is an error
/// that names the network meant (`fd00::/8`), never silently widened;
/// [`Prefix::new`] clears those bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    addr: u128,
    len: u8,
}

/// Why a prefix could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// The text is not an IPv6 address with an optional length of 0-128.
    #[error(
        "{0:?} is not an IPv6 prefix: write ADDRESS/LENGTH with a length of 0-128, e.g. fd00::/8 or 2001:db8::/32"
    )]
    Invalid(String),
    /// The address has bits set past the length (`fd00::1/8`): the text
    /// and the network it would have meant.
    #[error(
        "{text:?} has bits set past its length: the network is {network}; write {network} (or the address alone for that one host)"
    )]
    HostBits {
        /// The text as given.
        text: String,
        /// The network the length gives (`fd00::/8`).
        network: Prefix,
    },
}

impl Prefix {
    /// The prefix of `len` bits (at most 128) of `addr`.
    pub fn new(addr: [u8; 16], len: u8) -> Option<Prefix> {
        (len <= 128).then(|| Prefix {
            addr: u128::from_be_bytes(addr) & Self::mask(len),
            len,
        })
    }

    const fn mask(len: u8) -> u128 {
        match u128::MAX.checked_shl(128 - len as u32) {
            Some(m) => m,
            None => 0,
        }
    }

    /// Whether `addr` lies inside the prefix.
    #[inline]
    pub fn contains(&self, addr: &[u8; 16]) -> bool {
        u128::from_be_bytes(*addr) & Self::mask(self.len) == self.addr
    }

    /// The prefix length, 0-128.
    pub const fn length(&self) -> u8 {
        self.len
    }
}

impl FromStr for Prefix {
    type Err = PrefixError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PrefixError::Invalid(s.to_string());
        let (addr, len) = match s.trim().split_once('/') {
            Some((a, l)) => (a, l.trim().parse::<u8>().map_err(|_| err())?),
            None => (s.trim(), 128),
        };
        let addr: Ipv6Addr = addr.trim().parse().map_err(|_| err())?;
        let network = Prefix::new(addr.octets(), len).ok_or_else(err)?;
        if network.addr != u128::from_be_bytes(addr.octets()) {
            return Err(PrefixError::HostBits {
                text: s.trim().to_string(),
                network,
            });
        }
        Ok(network)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv6Addr::from(self.addr), self.len)
    }
}

impl Serialize for Prefix {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Prefix {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(D::Error::custom)
    }
}

/// The sources a pair lets in: a sorted list of prefixes without repeats;
/// empty means any source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope(Vec<Prefix>);

impl Scope {
    /// Any source.
    pub const ANY: Scope = Scope(Vec::new());

    /// A scope of these prefixes (sorted, repeats dropped); none means any
    /// source.
    pub fn new(prefixes: impl IntoIterator<Item = Prefix>) -> Scope {
        let mut v: Vec<Prefix> = prefixes.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        Scope(v)
    }

    /// Reads each text as a prefix; the first that is not one is the error.
    pub fn parse<S: AsRef<str>>(texts: &[S]) -> Result<Scope, PrefixError> {
        texts
            .iter()
            .map(|t| t.as_ref().parse())
            .collect::<Result<Vec<Prefix>, _>>()
            .map(Scope::new)
    }

    /// Whether any source is let in (no prefixes).
    pub fn is_any(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a packet from `src` is let in.
    #[inline]
    pub fn holds(&self, src: &[u8; 16]) -> bool {
        self.0.is_empty() || self.0.iter().any(|p| p.contains(src))
    }

    /// The prefixes, sorted.
    pub fn prefixes(&self) -> &[Prefix] {
        &self.0
    }
}

impl fmt::Display for Scope {
    /// `any`, or the prefixes joined with `,`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("any");
        }
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// One open pair's entry: the name it was first opened with and its scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Opening {
    /// The name given when the pair was first opened.
    pub name: String,
    /// The sources it lets in.
    pub from: Scope,
}

impl Opening {
    /// An entry for any source.
    pub fn named(name: impl Into<String>) -> Opening {
        Opening {
            name: name.into(),
            from: Scope::ANY,
        }
    }
}

#[derive(Serialize)]
struct Table<'a> {
    name: &'a str,
    from: &'a [Prefix],
}

impl Serialize for Opening {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.from.is_any() {
            s.serialize_str(&self.name)
        } else {
            Table {
                name: &self.name,
                from: self.from.prefixes(),
            }
            .serialize(s)
        }
    }
}

struct OpeningVisitor;

impl<'de> Visitor<'de> for OpeningVisitor {
    type Value = Opening;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a name (\"ssh\") or a table { name = \"ssh\", from = [\"fd00::/8\"] }")
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<Opening, E> {
        super::names::check_name(v).map_err(E::custom)?;
        Ok(Opening::named(v))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Opening, A::Error> {
        let mut name: Option<String> = None;
        let mut from: Option<Vec<Prefix>> = None;
        while let Some(key) = access.next_key::<String>()? {
            match key.as_str() {
                "name" if name.is_none() => name = Some(access.next_value()?),
                "from" if from.is_none() => from = Some(access.next_value()?),
                "name" | "from" => return Err(A::Error::duplicate_field("name or from")),
                other => return Err(A::Error::unknown_field(other, &["name", "from"])),
            }
        }
        let name = name.unwrap_or_default();
        super::names::check_name(&name).map_err(A::Error::custom)?;
        Ok(Opening {
            name,
            from: Scope::new(from.unwrap_or_default()),
        })
    }
}

impl<'de> Deserialize<'de> for Opening {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(OpeningVisitor)
    }
}

/// A pair with a scope, as a command line writes it: `22/tcp` (any
/// source) or `22/tcp@fd00::/8+2001:db8::/32` (the prefixes after `@`,
/// joined with `+`, so that `,` can still separate pairs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedPair {
    /// The pair.
    pub pair: super::PortPair,
    /// The sources it lets in.
    pub from: Scope,
}

impl FromStr for ScopedPair {
    type Err = super::PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (pair, from) = match s.split_once('@') {
            Some((pair, prefixes)) => {
                let texts: Vec<&str> = prefixes.split('+').collect();
                (pair, Scope::parse(&texts)?)
            }
            None => (s, Scope::ANY),
        };
        Ok(ScopedPair {
            pair: pair.parse()?,
            from,
        })
    }
}

impl fmt::Display for ScopedPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.pair)?;
        for (i, p) in self.from.prefixes().iter().enumerate() {
            f.write_str(if i == 0 { "@" } else { "+" })?;
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_read_mask_and_match() {
        let p: Prefix = "fd00::/8".parse().unwrap();
        assert_eq!(p.to_string(), "fd00::/8");
        // Bits past the length: an error naming the network, not a widening.
        let e = "fd00::1/8".parse::<Prefix>().unwrap_err();
        assert_eq!(
            e,
            PrefixError::HostBits {
                text: "fd00::1/8".into(),
                network: p
            }
        );
        assert!(e.to_string().contains("the network is fd00::/8"), "{e}");
        let host = "fd00::1".parse::<Ipv6Addr>().unwrap().octets();
        assert_eq!(Prefix::new(host, 8), Some(p), "new() clears the bits");
        assert!(p.contains(&"fdff::9".parse::<Ipv6Addr>().unwrap().octets()));
        assert!(!p.contains(&"fe00::1".parse::<Ipv6Addr>().unwrap().octets()));
        let all: Prefix = "::/0".parse().unwrap();
        assert!(all.contains(&[0xff; 16]));
        let host: Prefix = "2001:db8::7".parse().unwrap();
        assert_eq!(host.length(), 128);
        for bad in ["fd00::/129", "10.0.0.0/8", "fd00::/x", "", "fd00::/8/9"] {
            let e = bad.parse::<Prefix>().unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("{bad:?} is not an IPv6 prefix")),
                "{e}"
            );
        }
    }

    #[test]
    fn scopes_sort_dedup_and_hold() {
        let s = Scope::parse(&["2001:db8::/32", "fd00::/8", "fd00::/8"]).unwrap();
        assert_eq!(s.to_string(), "2001:db8::/32,fd00::/8");
        assert_eq!(s, Scope::parse(&["fd00::/8", "2001:db8::/32"]).unwrap());
        assert!(s.holds(&"fd00::2".parse::<Ipv6Addr>().unwrap().octets()));
        assert!(!s.holds(&"2001:db9::2".parse::<Ipv6Addr>().unwrap().octets()));
        assert!(Scope::ANY.holds(&[0; 16]));
        assert_eq!(Scope::ANY.to_string(), "any");
    }

    #[test]
    fn scoped_pairs_read_and_print() {
        let s: ScopedPair = "22/tcp@fd00::/8+2001:db8::/32".parse().unwrap();
        assert_eq!(s.pair.to_string(), "22/tcp");
        assert_eq!(s.from.prefixes().len(), 2);
        assert_eq!(s.to_string(), "22/tcp@2001:db8::/32+fd00::/8");
        let plain: ScopedPair = "53/udp".parse().unwrap();
        assert!(plain.from.is_any());
        assert_eq!(plain.to_string(), "53/udp");
        let e = "22/tcp@fd00::/999".parse::<ScopedPair>().unwrap_err();
        assert!(
            e.to_string()
                .starts_with("\"fd00::/999\" is not an IPv6 prefix"),
            "{e}"
        );
        assert!("22/tcp@".parse::<ScopedPair>().is_err(), "an empty prefix");
    }
}
