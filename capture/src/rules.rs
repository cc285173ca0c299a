//! The ip6tables rules that send IPv6 traffic to v6fw's NFQUEUEs.
//!
//! `v6fw run` installs two chains of its own in the `filter` table and jumps
//! to them first thing from INPUT and OUTPUT:
//!
//! ```text
//! ip6tables -w -N V6FW-IN
//! ip6tables -w -A V6FW-IN -m mark --mark 0x200000/0x200000 -j RETURN   # decided: accepted
//! ip6tables -w -A V6FW-IN -i lo -j RETURN
//! ip6tables -w -A V6FW-IN -j NFQUEUE --queue-num 0            # or --queue-balance 0:1
//! ip6tables -w -I INPUT 1 -j V6FW-IN
//! ip6tables -w -N V6FW-OUT
//! ip6tables -w -A V6FW-OUT -m mark --mark 0x200000/0x200000 -j RETURN
//! ip6tables -w -A V6FW-OUT -o lo -j RETURN
//! ip6tables -w -A V6FW-OUT -j NFQUEUE --queue-num 0
//! ip6tables -w -I OUTPUT 1 -j V6FW-OUT
//! ```
//!
//! (`--queue-bypass` is added to both NFQUEUE rules with `--fail-open`.)
//! With [`Rules::offload`] (`v6fw run --offload established`) each chain
//! gets one more rule just before its NFQUEUE rule:
//!
//! ```text
//! ip6tables -w -A V6FW-IN -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment v6fw-offload -j RETURN
//! ```
//!
//! so the kernel lets the packets of flows conntrack already tracks go on
//! through the rest of INPUT/OUTPUT (RETURN, like the accept mark: the
//! admin's rules after the jump still apply) and only each flow's first
//! packets reach v6fw. The comment names the rule for [`crate::offload`],
//! which reads its packet counters.
//! The mark rule comes with an accept mark ([`Rules::accept_mark`]): v6fw
//! answers an accepted packet `NF_REPEAT` with that bit set, the hook runs
//! again, v6fw's chain returns on the bit, and the packet goes on through
//! the rest of INPUT/OUTPUT, so the admin's own rules after the jump (a
//! DROP, fail2ban) still see it.
//! Loopback is not queued: it never leaves the host, and a host firewall
//! that filtered it would break local services for no gain. Inbound and
//! outbound use the same queues: the kernel's `--queue-balance` hash is
//! symmetric, so both directions of a flow meet in one worker, which is what
//! lets replies in as `established`; the worker tells the directions apart
//! by the hook that queued each packet.
//!
//! [`Rules::install`] first removes any leftovers of a previous run that
//! died without cleaning up, and undoes a half-done install; the returned
//! [`Installed`] removes the rules when dropped (or on [`Installed::remove`]).

use std::fmt;
use std::io;
use std::process::Command;
use std::str::FromStr;

/// The chain INPUT jumps to.
pub const CHAIN_IN: &str = "V6FW-IN";
/// The chain OUTPUT jumps to.
pub const CHAIN_OUT: &str = "V6FW-OUT";
/// The comment that marks the offload rules (`-m comment`).
pub const OFFLOAD_COMMENT: &str = "v6fw-offload";

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
    /// The mark bit(s) v6fw sets on the packets it accepts; the chains
    /// return on them first. Zero: no mark rule (an accept then ends the
    /// table's traversal).
    pub accept_mark: u32,
    /// Let the kernel accept packets of flows conntrack tracks as
    /// ESTABLISHED or RELATED before they are queued (`--offload
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
    /// ip6tables ran and refused.
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
        let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        let mut cmds = Vec::new();
        for (chain, parent, iface) in [(CHAIN_IN, "INPUT", "-i"), (CHAIN_OUT, "OUTPUT", "-o")] {
            cmds.push(s(&["-N", chain]));
            if self.accept_mark != 0 {
                let m = format!("{:#x}/{:#x}", self.accept_mark, self.accept_mark);
                cmds.push(s(&[
                    "-A", chain, "-m", "mark", "--mark", &m, "-j", "RETURN",
                ]));
            }
            cmds.push(s(&["-A", chain, iface, "lo", "-j", "RETURN"]));
            if self.offload {
                cmds.push(s(&[
                    "-A",
                    chain,
                    "-m",
                    "conntrack",
                    "--ctstate",
                    "RELATED,ESTABLISHED",
                    "-m",
                    "comment",
                    "--comment",
                    OFFLOAD_COMMENT,
                    "-j",
                    "RETURN",
                ]));
            }
            let mut q = s(&["-A", chain]);
            q.extend(self.target());
            cmds.push(q);
            cmds.push(s(&["-I", parent, "1", "-j", chain]));
        }
        cmds
    }

    /// Removes leftovers, then installs the rules. On failure, whatever was
    /// installed is removed again.
    pub fn install(&self) -> Result<Installed, RuleError> {
        remove_all();
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
            for e in remove_all() {
                tracing::error!("{e}");
            }
        }
    }
}

/// Removes v6fw's jumps and chains, wherever they came from. Missing pieces
/// are not errors; what exists but cannot be removed is returned.
pub fn remove_all() -> Vec<RuleError> {
    let mut errors = Vec::new();
    for (chain, parent) in [(CHAIN_IN, "INPUT"), (CHAIN_OUT, "OUTPUT")] {
        if ip6tables(&["-n".into(), "-L".into(), chain.into()]).is_err() {
            continue; // no such chain: nothing of ours here
        }
        // Every jump to the chain (bounded: a few stale copies at most).
        for _ in 0..16 {
            if ip6tables(&["-D".into(), parent.into(), "-j".into(), chain.into()]).is_err() {
                break;
            }
        }
        for op in ["-F", "-X"] {
            if let Err(e) = ip6tables(&[op.into(), chain.into()]) {
                errors.push(e);
            }
        }
    }
    errors
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

    #[test]
    fn the_exact_rules() {
        let lines: Vec<String> = Rules {
            queues: "0-1".parse().unwrap(),
            bypass: true,
            accept_mark: 0x20_0000,
            offload: false,
        }
        .commands()
        .iter()
        .map(|c| c.join(" "))
        .collect();
        assert_eq!(
            lines,
            [
                "-N V6FW-IN",
                "-A V6FW-IN -m mark --mark 0x200000/0x200000 -j RETURN",
                "-A V6FW-IN -i lo -j RETURN",
                "-A V6FW-IN -j NFQUEUE --queue-balance 0:1 --queue-bypass",
                "-I INPUT 1 -j V6FW-IN",
                "-N V6FW-OUT",
                "-A V6FW-OUT -m mark --mark 0x200000/0x200000 -j RETURN",
                "-A V6FW-OUT -o lo -j RETURN",
                "-A V6FW-OUT -j NFQUEUE --queue-balance 0:1 --queue-bypass",
                "-I OUTPUT 1 -j V6FW-OUT",
            ]
        );
        let single = Rules {
            queues: QueueRange::default(),
            bypass: false,
            accept_mark: 0,
            offload: false,
        }
        .commands();
        assert_eq!(single[1].join(" "), "-A V6FW-IN -i lo -j RETURN");
        assert_eq!(single[2].join(" "), "-A V6FW-IN -j NFQUEUE --queue-num 0");
    }

    #[test]
    fn the_offload_rules_come_after_the_mark_and_before_the_queue() {
        let lines: Vec<String> = Rules {
            queues: QueueRange::default(),
            bypass: false,
            accept_mark: 0x20_0000,
            offload: true,
        }
        .commands()
        .iter()
        .map(|c| c.join(" "))
        .collect();
        assert_eq!(
            lines,
            [
                "-N V6FW-IN",
                "-A V6FW-IN -m mark --mark 0x200000/0x200000 -j RETURN",
                "-A V6FW-IN -i lo -j RETURN",
                "-A V6FW-IN -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment \
                 v6fw-offload -j RETURN",
                "-A V6FW-IN -j NFQUEUE --queue-num 0",
                "-I INPUT 1 -j V6FW-IN",
                "-N V6FW-OUT",
                "-A V6FW-OUT -m mark --mark 0x200000/0x200000 -j RETURN",
                "-A V6FW-OUT -o lo -j RETURN",
                "-A V6FW-OUT -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment \
                 v6fw-offload -j RETURN",
                "-A V6FW-OUT -j NFQUEUE --queue-num 0",
                "-I OUTPUT 1 -j V6FW-OUT",
            ]
        );
    }
}
