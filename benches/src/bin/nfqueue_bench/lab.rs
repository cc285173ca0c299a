//! The lab: the two namespaces, the processes started in them, the naive
//! loop's ip6tables rules and the kernel's queue counters.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::Ordering;
use std::thread::sleep;
use std::time::{Duration, Instant};

use v6fw_testkit::netns::{self, sh, VethPair};

use crate::common::{interrupted, os_err, Result, INTERRUPTED, PORT, QUEUE, TCP_PORT};

/// Case D's chain.
const KERNEL_CHAIN: &str = "KERNEL-IN";

/// The two namespaces and their veth pair (removed on drop, after the
/// processes started in them) and whether the naive rules are in.
pub(crate) struct Lab {
    pub(crate) net: VethPair,
    children: Vec<Child>,
    naive_rules: bool,
    kernel_rules: bool,
}

impl Lab {
    pub(crate) fn new() -> Result<Lab> {
        Ok(Lab {
            net: VethPair::new("v6fwb", "v6fw-nfqbench")?,
            children: Vec::new(),
            naive_rules: false,
            kernel_rules: false,
        })
    }

    /// `ip netns exec NS [taskset -c CPU] PROGRAM ARGS`: both exec in
    /// place, so the child's pid is the program's.
    fn ns_cmd(ns: &str, cpu: Option<usize>, program: &Path, args: &[String]) -> Command {
        let mut c = netns::exec_in(ns);
        if let Some(cpu) = cpu {
            c.args(["taskset", "-c", &cpu.to_string()]);
        }
        c.arg(program).args(args);
        c
    }

    /// Starts `program args` in `ns` (on `cpu` if given), stdout/stderr
    /// to `dir/name.out|err`; returns its index.
    pub(crate) fn spawn(
        &mut self,
        ns: &str,
        cpu: Option<usize>,
        name: &str,
        program: &Path,
        args: &[String],
    ) -> Result<usize> {
        let out = self.file(&format!("{name}.out"))?;
        let err = self.file(&format!("{name}.err"))?;
        let child = Self::ns_cmd(ns, cpu, program, args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        self.children.push(child);
        Ok(self.children.len() - 1)
    }

    fn file(&self, name: &str) -> Result<fs::File> {
        let p = self.net.dir.join(name);
        fs::File::create(&p).map_err(|e| format!("{}: {e}", p.display()))
    }

    pub(crate) fn read(&self, name: &str) -> String {
        fs::read_to_string(self.net.dir.join(name)).unwrap_or_default()
    }

    fn child(&mut self, i: usize) -> Result<&mut Child> {
        self.children
            .get_mut(i)
            .ok_or_else(|| format!("no child {i}"))
    }

    /// CPU seconds (user + system, all threads) child `i` has used.
    pub(crate) fn cpu_seconds(&mut self, i: usize) -> Option<f64> {
        let pid = self.child(i).ok()?.id();
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // After "pid (comm) ": state is field 3, utime 14, stime 15.
        let rest = stat.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = f.get(11)?.parse().ok()?;
        let stime: u64 = f.get(12)?.parse().ok()?;
        // SAFETY: sysconf has no preconditions.
        let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        (tck > 0).then(|| (utime + stime) as f64 / tck as f64)
    }

    fn exited(&mut self, i: usize) -> Result<Option<ExitStatus>> {
        self.child(i)?.try_wait().map_err(|e| e.to_string())
    }

    /// Waits up to `limit` for child `i`; kills it on timeout.
    pub(crate) fn wait(&mut self, i: usize, name: &str, limit: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.exited(i)? {
                return Ok(status);
            }
            if Instant::now() >= deadline || INTERRUPTED.load(Ordering::SeqCst) {
                let _ = self.child(i)?.kill();
                let _ = self.child(i)?.wait();
                interrupted()?;
                return Err(format!(
                    "{name} did not finish within {limit:?}: {}",
                    self.read(&format!("{name}.err")).trim()
                ));
            }
            sleep(Duration::from_millis(10));
        }
    }

    /// Waits up to `limit` until `cond`, failing if child `i` exits first.
    pub(crate) fn wait_until(
        &mut self,
        i: usize,
        name: &str,
        limit: Duration,
        mut cond: impl FnMut(&Lab) -> bool,
    ) -> Result<()> {
        let deadline = Instant::now() + limit;
        while !cond(self) {
            interrupted()?;
            if let Some(status) = self.exited(i)? {
                return Err(format!(
                    "{name} exited early ({status}): {}",
                    self.read(&format!("{name}.err")).trim()
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "timed out waiting for {name}: {}",
                    self.read(&format!("{name}.err")).trim()
                ));
            }
            sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Sends SIGTERM to child `i` (not yet reaped).
    pub(crate) fn terminate(&mut self, i: usize) -> Result<()> {
        let child = self.child(i)?;
        if child.try_wait().map_err(|e| e.to_string())?.is_some() {
            return Ok(());
        }
        let pid = libc::pid_t::try_from(child.id()).map_err(|e| e.to_string())?;
        // SAFETY: `pid` is a child of this process that has not been
        // reaped (checked just above; only this thread reaps it), so it
        // cannot name another process.
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            return Err(os_err("kill(SIGTERM)"));
        }
        Ok(())
    }

    fn ip6tables(&self, args: &[&str]) -> Result<String> {
        let mut all = vec!["ip", "netns", "exec", &self.net.fw, "ip6tables", "-w"];
        all.extend_from_slice(args);
        sh(&all)
    }

    /// v6fw's layout for `--queues 0`, under chains of the harness.
    pub(crate) fn install_naive_rules(&mut self) -> Result<()> {
        self.naive_rules = true;
        let q = QUEUE.to_string();
        for (chain, hook, dir) in [("NAIVE-IN", "INPUT", "-i"), ("NAIVE-OUT", "OUTPUT", "-o")] {
            self.ip6tables(&["-N", chain])?;
            self.ip6tables(&["-A", chain, dir, "lo", "-j", "RETURN"])?;
            self.ip6tables(&["-A", chain, "-j", "NFQUEUE", "--queue-num", &q])?;
            self.ip6tables(&["-I", hook, "1", "-j", chain])?;
        }
        Ok(())
    }

    pub(crate) fn remove_naive_rules(&mut self) -> Vec<String> {
        let mut errors = Vec::new();
        for (chain, hook) in [("NAIVE-IN", "INPUT"), ("NAIVE-OUT", "OUTPUT")] {
            for args in [
                &["-D", hook, "-j", chain][..],
                &["-F", chain][..],
                &["-X", chain][..],
            ] {
                if let Err(e) = self.ip6tables(args) {
                    errors.push(e);
                }
            }
        }
        self.naive_rules = false;
        errors
    }

    /// Case D: v6fw's policy by the kernel alone, in a chain of the
    /// harness first in INPUT: conntrack's ESTABLISHED/RELATED, loopback,
    /// ICMPv6 and the open ports accepted, the rest dropped (outbound is
    /// not filtered, as with v6fw).
    pub(crate) fn install_kernel_rules(&mut self) -> Result<()> {
        self.kernel_rules = true;
        let (udp, tcp) = (PORT.to_string(), TCP_PORT.to_string());
        let c = KERNEL_CHAIN;
        self.ip6tables(&["-N", c])?;
        for rule in [
            &[
                "-m",
                "conntrack",
                "--ctstate",
                "RELATED,ESTABLISHED",
                "-j",
                "ACCEPT",
            ][..],
            &["-i", "lo", "-j", "ACCEPT"],
            &["-p", "ipv6-icmp", "-j", "ACCEPT"],
            &["-p", "udp", "--dport", &udp, "-j", "ACCEPT"],
            &["-p", "tcp", "--dport", &tcp, "-j", "ACCEPT"],
            &["-j", "DROP"],
        ] {
            let mut args = vec!["-A", c];
            args.extend_from_slice(rule);
            self.ip6tables(&args)?;
        }
        self.ip6tables(&["-I", "INPUT", "1", "-j", c])?;
        Ok(())
    }

    pub(crate) fn remove_kernel_rules(&mut self) -> Vec<String> {
        let c = KERNEL_CHAIN;
        let errors = [
            &["-D", "INPUT", "-j", c][..],
            &["-F", c][..],
            &["-X", c][..],
        ]
        .iter()
        .filter_map(|args| self.ip6tables(args).err())
        .collect();
        self.kernel_rules = false;
        errors
    }

    /// Gives PEER the source addresses of flows 1..`flows` (see
    /// [`crate::sender::flow_source`]), so that `--queue-balance`, which
    /// hashes the addresses only, spreads the flows.
    pub(crate) fn add_peer_addresses(&self, flows: usize) -> Result<()> {
        let id = self
            .net
            .peer
            .rsplit_once("-peer-")
            .map(|(_, id)| id)
            .ok_or("unexpected namespace name")?;
        let dev = format!("v6b{id}");
        for i in 1..flows {
            let a = format!("{}/64", crate::sender::flow_source(i));
            sh(&[
                "ip",
                "-n",
                &self.net.peer,
                "addr",
                "add",
                &a,
                "dev",
                &dev,
                "nodad",
            ])?;
        }
        Ok(())
    }

    /// The kernel's counters of the queues in the FW namespace, summed:
    /// (queued so far, dropped because full, dropped on netlink send).
    pub(crate) fn queue_counters(&self) -> Option<(u64, u64, u64)> {
        let text = sh(&[
            "ip",
            "netns",
            "exec",
            &self.net.fw,
            "cat",
            "/proc/net/netfilter/nfnetlink_queue",
        ])
        .ok()?;
        // queue peer_portid queue_total copy_mode copy_range
        // queue_dropped user_dropped id_sequence 1
        let rows: Vec<(u64, u64, u64)> = text
            .lines()
            .filter_map(|l| {
                let f: Vec<u64> = l
                    .split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect();
                match f.as_slice() {
                    [_, _, _, _, _, qd, ud, seq, ..] => Some((*seq, *qd, *ud)),
                    _ => None,
                }
            })
            .collect();
        (!rows.is_empty()).then(|| {
            rows.iter()
                .fold((0, 0, 0), |a, r| (a.0 + r.0, a.1 + r.1, a.2 + r.2))
        })
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if self.naive_rules {
            let _ = self.remove_naive_rules();
        }
        if self.kernel_rules {
            let _ = self.remove_kernel_rules();
        }
        // Then `net` removes the namespaces and the directory.
    }
}
