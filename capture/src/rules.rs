//! The ip6tables rules that send IPv6 traffic to v6fw's NFQUEUEs.
//!
//! `v6fw run` installs two chains of its own in the `mangle` table and jumps
//! to them first thing from its INPUT and OUTPUT:
//!
//! ```text
//! ip6tables -w -t mangle -N V6FW-IN
//! ip6tables -w -t mangle -A V6FW-IN -i lo -j RETURN
//! ip6tables -w -t mangle -A V6FW-IN -j NFQUEUE --queue-num 0      # or --queue-balance 0:1
//! ip6tables -w -t mangle -I INPUT 1 -j V6FW-IN
//! ip6tables -w -t mangle -N V6FW-OUT
//! ip6tables -w -t mangle -A V6FW-OUT -o lo -j RETURN
//! ip6tables -w -t mangle -A V6FW-OUT -j NFQUEUE --queue-num 0
//! ip6tables -w -t mangle -I OUTPUT 1 -j V6FW-OUT
//! ```
//!
//! (`--queue-bypass` is added to both NFQUEUE rules with `--fail-open`.)
//! v6fw answers an accepted packet `NF_ACCEPT` (one
//! `NFQNL_MSG_VERDICT_BATCH` per batch): netfilter runs each table's chain
//! as a hook function of its own, and an accept from the `mangle` hook
//! (priority -150) goes on to the next hook, so the `filter` table (priority
//! 0: the admin's own rules, ufw, fail2ban; firewalld's nftables table at
//! priority 10) still sees every packet v6fw accepts, each packet traverses
//! v6fw's chain once, and no mark is needed. Only the rest of `mangle`
//! INPUT/OUTPUT after v6fw's jump is skipped for accepted packets; with an
//! accept mark ([`Rules::accept_mark`], `--mark-bit`) v6fw answers
//! `NF_REPEAT` with that bit set instead, and each chain gets a
//! `-m mark --mark BIT/BIT -j RETURN` rule before its loopback rule, so the
//! `mangle` chain runs again and returns at once (the old layout's second
//! traversal, for whoever needs those rules).
//!
//! With [`Rules::offload`] (`v6fw run --offload established`) each chain
//! starts with two more rules, the first an established flow's packet meets:
//!
//! ```text
//! ip6tables -w -t mangle -A V6FW-IN -p tcp -m conntrack --ctstate ESTABLISHED -m comment --comment v6fw-offload -j RETURN
//! ip6tables -w -t mangle -A V6FW-IN -p udp -m conntrack --ctstate ESTABLISHED -m comment --comment v6fw-offload -j RETURN
//! ```
//!
//! so the kernel lets the later packets of TCP and UDP flows conntrack
//! tracks go on (to `filter`: the admin's rules still apply) and only each
//! flow's first packets reach v6fw. Only TCP and UDP, only ESTABLISHED: the
//! policy lets in replies of TCP and UDP flows and nothing else by state, so
//! an ICMPv6 error about a tracked flow (conntrack's RELATED, any type below
//! 128), an echo reply, an expected helper connection or a reply of another
//! protocol (conntrack's generic tracker: ESP, GRE, ...) is queued and
//! decided by v6fw's policy as without offload. The comment names the rules
//! for [`crate::offload`], which reads their packet counters.
//!
//! Loopback is not queued: it never leaves the host, and a host firewall
//! that filtered it would break local services for no gain. Inbound and
//! outbound use the same queues: the kernel's `--queue-balance` hash is
//! symmetric, so both directions of a flow meet in one worker, which is what
//! lets replies in as `established`; the worker tells the directions apart
//! by the hook that queued each packet.
//!
//! [`Rules::install`] first removes any leftovers of a previous run that
//! died without cleaning up (also the `filter`-table chains of versions that
//! installed there), and undoes a half-done install; the returned
//! [`Installed`] removes the rules when dropped (or on [`Installed::remove`]).
//! Removal skips only what does not exist; any other failure (ip6tables
//! cannot be started, the kernel refuses) is returned, with
//! [`MANUAL_REMOVAL`] to print.

use std::fmt;
use std::io;
use std::process::Command;
use std::str::FromStr;

/// The table v6fw's chains are in.
pub const TABLE: &str = "mangle";
/// Where versions before the move to `mangle` put the chains: leftovers
/// there are removed at start too.
const OLD_TABLE: &str = "filter";
/// The chain INPUT jumps to.
pub const CHAIN_IN: &str = "V6FW-IN";
/// The chain OUTPUT jumps to.
pub const CHAIN_OUT: &str = "V6FW-OUT";
/// The comment that marks the offload rules (`-m comment`).
pub const OFFLOAD_COMMENT: &str = "v6fw-offload";
/// The protocols whose ESTABLISHED packets the offload rules let through.
const OFFLOAD_PROTOCOLS: [&str; 2] = ["tcp", "udp"];

/// The commands that remove v6fw's rules by hand, for when a removal failed.
pub const MANUAL_REMOVAL: &str = "remove the rules by hand: \
     ip6tables -t mangle -D INPUT -j V6FW-IN; ip6tables -t mangle -D OUTPUT -j V6FW-OUT; \
     ip6tables -t mangle -F V6FW-IN; ip6tables -t mangle -X V6FW-IN; \
     ip6tables -t mangle -F V6FW-OUT; ip6tables -t mangle -X V6FW-OUT \
     (and, for rules of an older v6fw, the same with -t filter)";

/// A range of NFQUEUE numbers, `0` or `0-3` (default: queue 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueRange {
    /// The first queue.
    pub first: u16,
    /// The last queue (inclusive).
    pub last: u16,
}

impl QueueRange {
    /// Every queue number in the range.
    pub fn iter(&self) -> impl Iterator<Item = u16> {
        self.first..=self.last
    }

    /// How many queues.
    pub fn len(&self) -> usize {
        usize::from(self.last - self.first) + 1
    }

    /// Never empty; for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl fmt::Display for QueueRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

impl FromStr for QueueRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let num = |t: &str| {
            t.trim().parse::<u16>().map_err(|_| {
                format!("`{s}`: a queue is a number 0..=65535; write `0` or a range `0-3`")
            })
        };
        let (first, last) = match s.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => {
                let q = num(s)?;
                (q, q)
            }
        };
        if first > last {
            return Err(format!("`{s}`: the range must go up, e.g. `0-3`"));
        }
        if last - first >= 64 {
            return Err(format!("`{s}`: at most 64 queues (one thread each)"));
        }
        Ok(QueueRange { first, last })
    }
}

/// What to install.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// The queues the NFQUEUE target spreads packets over.
    pub queues: QueueRange,
    /// Add `--queue-bypass`: accept when no process is bound to the queue.
    pub bypass: bool,
    /// The mark bit(s) v6fw sets on the packets it accepts, answered
    /// `NF_REPEAT`; the chains return on them. Zero (the default): no mark
    /// rule, accepts are `NF_ACCEPT` and go on to the next hook (`filter`).
    pub accept_mark: u32,
    /// Let the kernel accept the packets of TCP and UDP flows conntrack
    /// tracks as ESTABLISHED before they are queued (`--offload
    /// established`).
    pub offload: bool,
}

/// A failed ip6tables call.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// ip6tables could not be run at all.
    #[error(
        "cannot run ip6tables ({0}): install the iptables package (e.g. `apt-get install \
         iptables`), or start with --no-rules and add the NFQUEUE rules yourself"
    )]
    Spawn(#[source] io::Error),
    /// ip6tables ran and refused (see [`RuleError::is_absent`]).
    #[error(
        "`ip6tables {args}` failed: {stderr}\n(if the NFQUEUE target is unknown, the kernel \
         needs CONFIG_NETFILTER_XT_TARGET_NFQUEUE, and with ip6tables-nft CONFIG_NFT_COMPAT)"
    )]
    Failed {
        /// The arguments given.
        args: String,
        /// What it said.
        stderr: String,
    },
}

impl Rules {
    /// The NFQUEUE target's arguments.
    fn target(&self) -> Vec<String> {
        let mut t = vec!["-j".to_string(), "NFQUEUE".to_string()];
        if self.queues.first == self.queues.last {
            t.extend(["--queue-num".to_string(), self.queues.first.to_string()]);
        } else {
            t.extend([
                "--queue-balance".to_string(),
                format!("{}:{}", self.queues.first, self.queues.last),
            ]);
        }
        if self.bypass {
            t.push("--queue-bypass".to_string());
        }
        t
    }

    /// The ip6tables argument lists [`Rules::install`] runs, in order
    /// (without the leading `-w`).
    pub fn commands(&self) -> Vec<Vec<String>> {
        let s = |v: &[&str]| {
            let mut c = vec!["-t".to_string(), TABLE.to_string()];
            c.extend(v.iter().map(|a| a.to_string()));
            c
        };
        let mut cmds = Vec::new();
        for (chain, parent, iface) in [(CHAIN_IN, "INPUT", "-i"), (CHAIN_OUT, "OUTPUT", "-o")] {
            cmds.push(s(&["-N", chain]));
            if self.offload {
                for proto in OFFLOAD_PROTOCOLS {
                    cmds.push(s(&[
                        "-A",
                        chain,
                        "-p",
                        proto,
                        "-m",
                        "conntrack",
                        "--ctstate",
                        "ESTABLISHED",
                        "-m",
                        "comment",
                        "--comment",
                        OFFLOAD_COMMENT,
                        "-j",
                        "RETURN",
                    ]));
                }
            }
            if self.accept_mark != 0 {
                let m = format!("{:#x}/{:#x}", self.accept_mark, self.accept_mark);
                cmds.push(s(&[
                    "-A", chain, "-m", "mark", "--mark", &m, "-j", "RETURN",
                ]));
            }
            cmds.push(s(&["-A", chain, iface, "lo", "-j", "RETURN"]));
            let mut q = s(&["-A", chain]);
            q.extend(self.target());
            cmds.push(q);
            cmds.push(s(&["-I", parent, "1", "-j", chain]));
        }
        cmds
    }

    /// Removes leftovers, then installs the rules. On failure, whatever was
    /// installed is removed again. Leftovers that cannot be removed are an
    /// error: nothing is installed over them.
    pub fn install(&self) -> Result<Installed, RuleError> {
        if let Some(e) = remove_all().into_iter().next() {
            return Err(e);
        }
        let installed = Installed { removed: false };
        for args in self.commands() {
            ip6tables(&args)?;
        }
        Ok(installed)
    }
}

/// Installed rules; removed on drop.
#[derive(Debug)]
pub struct Installed {
    removed: bool,
}

impl Installed {
    /// Removes the rules now; returns what could not be removed.
    pub fn remove(mut self) -> Vec<RuleError> {
        self.removed = true;
        remove_all()
    }

    /// Leaves the rules installed (an exit on an internal fault in
    /// fail-closed mode: the host stays filtered until the next start, which
    /// removes them first).
    pub fn keep(mut self) {
        self.removed = true;
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        if !self.removed {
            let failed = remove_all();
            if let Some(e) = failed.first() {
                tracing::error!(
                    "cannot remove v6fw's ip6tables rules ({} failed step(s), the first: {e})\n\
                     {MANUAL_REMOVAL}",
                    failed.len()
                );
            }
        }
    }
}

/// Removes v6fw's jumps and chains, wherever they came from (`mangle`, and
/// `filter` where older versions put them). What does not exist is skipped;
/// every other failure (ip6tables cannot be run, the kernel refuses) is
/// returned.
pub fn remove_all() -> Vec<RuleError> {
    remove_all_with(&mut |args| ip6tables_output(args))
}

/// [`remove_all`] with the ip6tables runner given (`args` without `-w`).
pub fn remove_all_with(
    run: &mut dyn FnMut(&[String]) -> Result<String, RuleError>,
) -> Vec<RuleError> {
    let mut errors = Vec::new();
    for table in [TABLE, OLD_TABLE] {
        for (chain, parent) in [(CHAIN_IN, "INPUT"), (CHAIN_OUT, "OUTPUT")] {
            let cmd = |v: &[&str]| {
                let mut c = vec!["-t".to_string(), table.to_string()];
                c.extend(v.iter().map(|a| a.to_string()));
                c
            };
            // Every jump to the chain (bounded: a few stale copies at most).
            for _ in 0..16 {
                match run(&cmd(&["-D", parent, "-j", chain])) {
                    Ok(_) => {}
                    Err(e) if e.is_absent() => break,
                    Err(e) => {
                        errors.push(e);
                        break;
                    }
                }
            }
            match run(&cmd(&["-F", chain])) {
                Ok(_) => {}
                Err(e) if e.is_absent() => continue, // no such chain here
                Err(e) => errors.push(e),
            }
            match run(&cmd(&["-X", chain])) {
                Ok(_) => {}
                Err(e) if e.is_absent() => {}
                Err(e) => errors.push(e),
            }
        }
    }
    errors
}

impl RuleError {
    /// Did ip6tables refuse because the chain, the table or the rule does
    /// not exist? (The only failure a removal may skip.)
    pub fn is_absent(&self) -> bool {
        const ABSENT: [&str; 5] = [
            "No chain/target/match by that name", // legacy and nft, -F/-X/-L
            "does not exist",                     // nft: -D with an unknown jump target
            "Couldn't load target",               // legacy: the same
            "does a matching rule exist",         // -D of a rule that is not there
            "Table does not exist",               // a table this kernel lacks
        ];
        match self {
            RuleError::Spawn(_) => false,
            RuleError::Failed { stderr, .. } => ABSENT.iter().any(|a| stderr.contains(a)),
        }
    }
}

/// Runs `ip6tables -w ARGS`.
fn ip6tables(args: &[String]) -> Result<(), RuleError> {
    ip6tables_output(args).map(drop)
}

/// Runs `ip6tables -w ARGS` and returns what it printed.
pub(crate) fn ip6tables_output(args: &[String]) -> Result<String, RuleError> {
    let out = Command::new("ip6tables")
        .arg("-w")
        .args(args)
        .output()
        .map_err(RuleError::Spawn)?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    Err(RuleError::Failed {
        args: args.join(" "),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn parses_queue_ranges() {
        assert_eq!(
            "3".parse::<QueueRange>().unwrap(),
            QueueRange { first: 3, last: 3 }
        );
        let r = "0-1".parse::<QueueRange>().unwrap();
        assert_eq!((r.first, r.last, r.len()), (0, 1, 2));
        assert_eq!(r.to_string(), "0-1");
        assert!("2-1".parse::<QueueRange>().is_err());
        assert!("x".parse::<QueueRange>().is_err());
        assert!("0-100".parse::<QueueRange>().is_err());
    }

    fn lines(rules: Rules) -> Vec<String> {
        rules.commands().iter().map(|c| c.join(" ")).collect()
    }

    #[test]
    fn the_exact_rules() {
        let lines = lines(Rules {
            queues: "0-1".parse().unwrap(),
            bypass: true,
            accept_mark: 0,
            offload: false,
        });
        assert_eq!(
            lines,
            [
                "-t mangle -N V6FW-IN",
                "-t mangle -A V6FW-IN -i lo -j RETURN",
                "-t mangle -A V6FW-IN -j NFQUEUE --queue-balance 0:1 --queue-bypass",
                "-t mangle -I INPUT 1 -j V6FW-IN",
                "-t mangle -N V6FW-OUT",
                "-t mangle -A V6FW-OUT -o lo -j RETURN",
                "-t mangle -A V6FW-OUT -j NFQUEUE --queue-balance 0:1 --queue-bypass",
                "-t mangle -I OUTPUT 1 -j V6FW-OUT",
            ]
        );
        let marked = Rules {
            queues: QueueRange::default(),
            bypass: false,
            accept_mark: 0x20_0000,
            offload: false,
        }
        .commands();
        assert_eq!(
            marked[1].join(" "),
            "-t mangle -A V6FW-IN -m mark --mark 0x200000/0x200000 -j RETURN"
        );
        assert_eq!(
            marked[3].join(" "),
            "-t mangle -A V6FW-IN -j NFQUEUE --queue-num 0"
        );
    }

    #[test]
    fn the_offload_rules_come_first_and_take_only_established_tcp_and_udp() {
        let offload = |chain: &str, proto: &str| {
            format!(
                "-t mangle -A {chain} -p {proto} -m conntrack --ctstate ESTABLISHED -m comment \
                 --comment v6fw-offload -j RETURN"
            )
        };
        let lines = lines(Rules {
            queues: QueueRange::default(),
            bypass: false,
            accept_mark: 0,
            offload: true,
        });
        assert_eq!(
            lines,
            [
                "-t mangle -N V6FW-IN".to_string(),
                offload("V6FW-IN", "tcp"),
                offload("V6FW-IN", "udp"),
                "-t mangle -A V6FW-IN -i lo -j RETURN".to_string(),
                "-t mangle -A V6FW-IN -j NFQUEUE --queue-num 0".to_string(),
                "-t mangle -I INPUT 1 -j V6FW-IN".to_string(),
                "-t mangle -N V6FW-OUT".to_string(),
                offload("V6FW-OUT", "tcp"),
                offload("V6FW-OUT", "udp"),
                "-t mangle -A V6FW-OUT -o lo -j RETURN".to_string(),
                "-t mangle -A V6FW-OUT -j NFQUEUE --queue-num 0".to_string(),
                "-t mangle -I OUTPUT 1 -j V6FW-OUT".to_string(),
            ]
        );
        assert!(lines.iter().all(|l| !l.contains("RELATED")), "{lines:?}");
    }

    fn failed(stderr: &str) -> RuleError {
        RuleError::Failed {
            args: String::new(),
            stderr: stderr.to_string(),
        }
    }

    #[test]
    fn removal_skips_only_what_does_not_exist() {
        // Nothing installed anywhere, as ip6tables-nft 1.8.9 says it.
        let mut calls = Vec::new();
        let errors = remove_all_with(&mut |a| {
            calls.push(a.join(" "));
            Err(match a.get(2).map(String::as_str) {
                Some("-D") => {
                    failed("ip6tables v1.8.9 (nf_tables): Chain 'V6FW-IN' does not exist")
                }
                _ => failed("ip6tables: No chain/target/match by that name."),
            })
        });
        assert!(errors.is_empty(), "{errors:?}");
        assert!(
            calls.contains(&"-t mangle -F V6FW-OUT".to_string()),
            "{calls:?}"
        );
        assert!(
            calls.contains(&"-t filter -D INPUT -j V6FW-IN".to_string()),
            "{calls:?}"
        );
        assert!(
            !calls.iter().any(|c| c.contains("-X")),
            "no chain, no -X: {calls:?}"
        );
        // Installed in mangle: two stale jumps, then the chains go.
        let mut jumps = 2;
        let mut calls = Vec::new();
        let errors = remove_all_with(&mut |a| {
            calls.push(a.join(" "));
            let mangle = a.get(1).is_some_and(|t| t == "mangle");
            match a.get(2).map(String::as_str) {
                Some("-D") if mangle && a.get(3).is_some_and(|p| p == "INPUT") && jumps > 0 => {
                    jumps -= 1;
                    Ok(String::new())
                }
                Some("-D") => Err(failed(
                    "ip6tables: Bad rule (does a matching rule exist in that chain?).",
                )),
                Some(_) if mangle => Ok(String::new()),
                _ => Err(failed("ip6tables: No chain/target/match by that name.")),
            }
        });
        assert!(errors.is_empty(), "{errors:?}");
        let n = |s: &str| calls.iter().filter(|c| *c == s).count();
        assert_eq!(n("-t mangle -D INPUT -j V6FW-IN"), 3);
        assert_eq!(n("-t mangle -X V6FW-IN"), 1);
        assert_eq!(n("-t mangle -X V6FW-OUT"), 1);
    }

    #[test]
    fn removal_reports_every_other_failure() {
        // ip6tables cannot even be started (EMFILE): nothing may be read as
        // "no such chain".
        let emfile = 24; // EMFILE on Linux
        let errors =
            remove_all_with(&mut |_| Err(RuleError::Spawn(io::Error::from_raw_os_error(emfile))));
        // Per table and chain: the jump, the flush, the delete.
        assert_eq!(errors.len(), 12, "{errors:?}");
        assert!(errors.iter().all(|e| matches!(e, RuleError::Spawn(_))));
        // The kernel refuses (a chain still referenced, a lock not taken).
        let errors = remove_all_with(&mut |a| {
            match a.get(2).map(String::as_str) {
            Some("-X") if a.get(1).is_some_and(|t| t == "mangle") => Err(failed(
                "ip6tables v1.8.9 (nf_tables):  CHAIN_DEL failed (Device or resource busy): chain V6FW-IN",
            )),
            Some("-D") => Err(failed("ip6tables: Bad rule (does a matching rule exist in that chain?).")),
            Some("-F") if a.get(1).is_some_and(|t| t == "mangle") => Ok(String::new()),
            _ => Err(failed("ip6tables: No chain/target/match by that name.")),
        }
        });
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors.iter().all(|e| !e.is_absent()));
        assert!(
            errors[0].to_string().contains("CHAIN_DEL failed"),
            "{}",
            errors[0]
        );
    }
}
