//! The NFQUEUE harness: packets per second through `v6fw run` against a
//! naive one-packet-at-a-time nfq loop, in the same run, with the same
//! sender, inside two network namespaces.
//!
//! ```text
//! cargo build --release -p v6fw-api --bin v6fw
//! sudo cargo run --release -p v6fw-benches --bin nfqueue_bench -- --seconds 5
//! sudo cargo run --release -p v6fw-benches --bin nfqueue_bench -- --quick   # <= 20 s, what CI runs
//! ```
//!
//! Namespace FW holds fd00::1/64, namespace PEER fd00::2/64, joined by a veth
//! pair; no traffic leaves them and both are deleted on exit (also on an
//! error, a panic or Ctrl-C). Each round re-executes this binary under
//! `ip netns exec` three times: a receiver counting UDP datagrams on
//! fd00::1 port 9000 (FW), a `sendmmsg` flood of 16-byte datagrams to it for
//! T seconds (PEER), and — in case B — the naive consumer (FW). The cases:
//!
//! - **A**: `v6fw run --open 9000/udp --queues 0` (its own rules, batched
//!   `recvmmsg`, one verdict message per batch); decided = its JSON totals.
//! - **B**: the same rule layout installed by the harness and the `nfq`
//!   crate's `Queue`: `recv()` one packet, etherparse
//!   `SlicedPacket::from_ip`, a `std::sync::RwLock<HashSet<(u16, u8)>>`,
//!   `verdict()` one by one. Same copy range (256) and queue length (4096).
//!
//! Rounds alternate A, B, A, B. No figure is asserted: the exit code only
//! says whether the harness ran; docs/benchmarks.md judges the figures.
//! Without root it explains why and exits 0 with `--quick` (1 otherwise);
//! with `V6FW_REQUIRE_LIVE=1` every reason not to run is a failure.
//! Linux only; elsewhere it says so and exits 0.

use std::process::ExitCode;

fn main() -> ExitCode {
    #[cfg(target_os = "linux")]
    {
        linux::main()
    }
    #[cfg(not(target_os = "linux"))]
    {
        eprintln!("nfqueue_bench: NFQUEUE is Linux only; nothing to measure here");
        ExitCode::SUCCESS
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::HashSet;
    use std::fs;
    use std::io;
    use std::net::{Ipv6Addr, SocketAddr, UdpSocket};
    use std::os::fd::AsRawFd;
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::RwLock;
    use std::thread::sleep;
    use std::time::{Duration, Instant};

    use clap::{Parser, Subcommand};
    use etherparse::{SlicedPacket, TransportSlice};
    use v6fw_capture::netns::{self, require_live, sh, VethPair};

    /// The filtered side's address; the flood goes to it.
    const FW_ADDR: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
    /// The open UDP port the flood is sent to.
    const PORT: u16 = 9000;
    /// The NFQUEUE both consumers read.
    const QUEUE: u16 = 0;
    /// v6fw's defaults, given to the naive loop too.
    const COPY_RANGE: u16 = 256;
    const QUEUE_LEN: u32 = 4096;
    /// Datagrams per `sendmmsg`/`recvmmsg`.
    const MMSG: usize = 64;
    /// How long the queue is given to drain once the sender is done.
    const DRAIN: Duration = Duration::from_millis(300);
    /// How often the helpers look for their stop file.
    const STOP_POLL: Duration = Duration::from_millis(50);

    type Result<T> = std::result::Result<T, String>;

    /// NFQUEUE throughput: `v6fw run` against a naive nfq loop, alternating
    /// rounds in two network namespaces with the same UDP flood.
    #[derive(Parser, Debug)]
    #[command(version)]
    struct Args {
        /// Seconds of flood per case and round.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Rounds; each runs case A (v6fw) then case B (naive).
        #[arg(long, default_value_t = 2)]
        rounds: u32,
        /// One short round (<= 20 s in all): proves the harness works.
        #[arg(long)]
        quick: bool,
        /// The v6fw binary (default: `v6fw` next to this one, i.e.
        /// target/release/v6fw).
        #[arg(long, value_name = "PATH")]
        v6fw: Option<PathBuf>,
        /// Payload bytes per datagram.
        #[arg(long, default_value_t = 16)]
        payload: usize,
        /// Pin the consumer and the receiver to CPU 0 and the sender to the
        /// last CPU (`taskset`), instead of letting the scheduler place them.
        #[arg(long)]
        pin: bool,
        #[command(subcommand)]
        internal: Option<Internal>,
    }

    /// The pieces run inside a namespace (`ip netns exec NS nfqueue_bench ...`).
    #[derive(Subcommand, Debug)]
    enum Internal {
        /// Floods UDP to ADDR:PORT for SECONDS; prints `{"sent","seconds","errors"}`.
        #[command(name = "internal-send", hide = true)]
        Send {
            #[arg(long)]
            addr: Ipv6Addr,
            #[arg(long)]
            port: u16,
            #[arg(long)]
            seconds: f64,
            #[arg(long)]
            payload: usize,
        },
        /// Counts datagrams on [::]:PORT until STOP exists; prints `{"received"}`.
        #[command(name = "internal-recv", hide = true)]
        Recv {
            #[arg(long)]
            port: u16,
            #[arg(long)]
            ready: PathBuf,
            #[arg(long)]
            stop: PathBuf,
            #[arg(long)]
            max_seconds: f64,
        },
        /// The naive consumer; prints `{"decided","accepted","dropped","errors"}`.
        #[command(name = "internal-naive", hide = true)]
        Naive {
            #[arg(long)]
            queue: u16,
            #[arg(long)]
            open_udp: u16,
            #[arg(long)]
            ready: PathBuf,
            #[arg(long)]
            stop: PathBuf,
            #[arg(long)]
            max_seconds: f64,
        },
    }

    /// Set by SIGINT/SIGTERM: every wait gives up, the lab is dropped.
    static INTERRUPTED: AtomicBool = AtomicBool::new(false);

    extern "C" fn on_signal(_: libc::c_int) {
        INTERRUPTED.store(true, Ordering::SeqCst);
    }

    fn install_signal_handlers() {
        let handler: extern "C" fn(libc::c_int) = on_signal;
        for sig in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: the handler only stores to an atomic, which is
            // async-signal-safe; the function pointer lives for the program.
            unsafe {
                libc::signal(sig, handler as libc::sighandler_t);
            }
        }
    }

    fn interrupted() -> Result<()> {
        if INTERRUPTED.load(Ordering::SeqCst) {
            return Err("interrupted".into());
        }
        Ok(())
    }

    pub fn main() -> ExitCode {
        let args = Args::parse();
        let outcome = match args.internal {
            Some(Internal::Send {
                addr,
                port,
                seconds,
                payload,
            }) => send(addr, port, seconds, payload),
            Some(Internal::Recv {
                port,
                ready,
                stop,
                max_seconds,
            }) => receive(port, &ready, &stop, max_seconds),
            Some(Internal::Naive {
                queue,
                open_udp,
                ready,
                stop,
                max_seconds,
            }) => naive(queue, open_udp, &ready, &stop, max_seconds),
            None => return harness(&args),
        };
        match outcome {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("nfqueue_bench: {e}");
                ExitCode::FAILURE
            }
        }
    }

    // ---------------------------------------------------------------- helpers

    fn os_err(what: &str) -> String {
        format!("{what}: {}", io::Error::last_os_error())
    }

    fn deadline_after(seconds: f64) -> Result<Instant> {
        let d = Duration::try_from_secs_f64(seconds.max(0.0))
            .map_err(|e| format!("bad duration {seconds}: {e}"))?;
        Ok(Instant::now() + d)
    }

    fn touch(path: &Path) -> Result<()> {
        fs::write(path, b"").map_err(|e| format!("cannot create {}: {e}", path.display()))
    }

    /// A zeroed `mmsghdr` whose message has the one buffer `iov`.
    fn mmsghdr_for(iov: &mut libc::iovec) -> libc::mmsghdr {
        // SAFETY: mmsghdr is a plain C struct (pointers, lengths, flags) for
        // which all-zero bytes are a valid value (null pointers, no name,
        // no control data).
        let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
        m.msg_hdr.msg_iov = iov;
        m.msg_hdr.msg_iovlen = 1;
        m
    }

    // ----------------------------------------------------------------- sender

    /// A `sendmmsg` flood of identical datagrams, bounded in time.
    fn send(addr: Ipv6Addr, port: u16, seconds: f64, payload: usize) -> Result<()> {
        let sock = UdpSocket::bind("[::]:0").map_err(|e| format!("sender bind: {e}"))?;
        sock.connect(SocketAddr::from((addr, port)))
            .map_err(|e| format!("sender connect to [{addr}]:{port}: {e}"))?;
        let data = vec![0x76u8; payload.clamp(1, 1400)];
        let mut iov = libc::iovec {
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        };
        // Every message points at the same (read-only) buffer.
        let mut msgs: Vec<libc::mmsghdr> = (0..MMSG).map(|_| mmsghdr_for(&mut iov)).collect();
        let fd = sock.as_raw_fd();
        let started = Instant::now();
        let deadline = deadline_after(seconds)?;
        // A bound no real rate reaches: 100 M datagrams/s.
        let max_calls = (seconds.max(0.0) * 100e6 / MMSG as f64) as u64 + 1;
        let (mut sent, mut errors) = (0u64, 0u64);
        let mut last_error = None;
        for _ in 0..max_calls {
            if Instant::now() >= deadline || INTERRUPTED.load(Ordering::Relaxed) {
                break;
            }
            // SAFETY: `msgs` holds MMSG initialised headers whose iovecs point
            // at `data`, which outlives the call; `fd` is the open socket.
            let rc = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), MMSG as libc::c_uint, 0) };
            if rc < 0 {
                // ENOBUFS, EAGAIN, ECONNREFUSED: the flood goes on.
                errors += 1;
                last_error = Some(io::Error::last_os_error().to_string());
            } else {
                sent += rc as u64;
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        println!(
            "{}",
            serde_json::json!({"sent": sent, "seconds": elapsed, "errors": errors,
                               "last_error": last_error})
        );
        Ok(())
    }

    // --------------------------------------------------------------- receiver

    /// Counts datagrams on `[::]:port` with `recvmmsg` until `stop` exists and
    /// the socket is empty, or `max_seconds` pass.
    fn receive(port: u16, ready: &Path, stop: &Path, max_seconds: f64) -> Result<()> {
        let sock =
            UdpSocket::bind(("::", port)).map_err(|e| format!("receiver bind {port}: {e}"))?;
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(|e| format!("receiver timeout: {e}"))?;
        let fd = sock.as_raw_fd();
        let size: libc::c_int = 8 << 20;
        // SAFETY: `size` is a c_int that outlives the call, its length is
        // given; a failure (not root) is harmless and ignored.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        let mut bufs = vec![[0u8; 2048]; MMSG];
        let mut iovs: Vec<libc::iovec> = bufs
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: b.len(),
            })
            .collect();
        let mut msgs: Vec<libc::mmsghdr> = iovs.iter_mut().map(mmsghdr_for).collect();
        touch(ready)?;
        let deadline = deadline_after(max_seconds)?;
        let mut received = 0u64;
        let mut next_check = Instant::now();
        let mut stopping = false;
        // Bounded by the deadline; the count bound is one no rate reaches.
        let max_calls = (max_seconds.max(0.0) * 100e6) as u64 + 1;
        for _ in 0..max_calls {
            let now = Instant::now();
            if now >= deadline || INTERRUPTED.load(Ordering::Relaxed) {
                break;
            }
            if now >= next_check {
                stopping = stop.exists();
                next_check = now + STOP_POLL;
            }
            // SAFETY: `msgs` holds MMSG headers whose iovecs point at the
            // 2,048-byte buffers of `bufs`, alive and unaliased for the call.
            let rc = unsafe {
                libc::recvmmsg(
                    fd,
                    msgs.as_mut_ptr(),
                    MMSG as libc::c_uint,
                    libc::MSG_WAITFORONE,
                    std::ptr::null_mut(),
                )
            };
            if rc > 0 {
                received += rc as u64;
                continue;
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EAGAIN | libc::EINTR) => {
                    if stopping {
                        break; // told to stop, and the socket is empty
                    }
                }
                _ => return Err(format!("recvmmsg: {e}")),
            }
        }
        println!("{}", serde_json::json!({ "received": received }));
        Ok(())
    }

    // ------------------------------------------------------------ naive loop

    /// NF_INET_LOCAL_OUT: the hook of outbound packets.
    const HOOK_LOCAL_OUT: u8 = 3;

    /// The obvious decision: outbound passes; inbound is sliced by etherparse
    /// and its `(port, protocol)` looked up under a read lock; ICMPv6 passes.
    fn naive_decide(ports: &RwLock<HashSet<(u16, u8)>>, packet: &[u8], hook: u8) -> bool {
        if hook == HOOK_LOCAL_OUT {
            return true;
        }
        let Ok(sliced) = SlicedPacket::from_ip(packet) else {
            return false;
        };
        let key = match sliced.transport {
            Some(TransportSlice::Udp(u)) => (u.destination_port(), 17u8),
            Some(TransportSlice::Tcp(t)) => (t.destination_port(), 6u8),
            Some(TransportSlice::Icmpv6(_)) => return true,
            _ => return false,
        };
        // A poisoned lock still holds a valid set.
        let set = ports.read().unwrap_or_else(|e| e.into_inner());
        set.contains(&key)
    }

    /// The naive consumer: one `recv`, one decision, one `verdict` per packet.
    fn naive(queue: u16, open_udp: u16, ready: &Path, stop: &Path, max_seconds: f64) -> Result<()> {
        let mut q = nfq::Queue::open().map_err(|e| format!("nfq open: {e}"))?;
        q.bind(queue)
            .map_err(|e| format!("nfq bind {queue}: {e} (is another consumer bound?)"))?;
        q.set_copy_range(queue, COPY_RANGE)
            .map_err(|e| format!("nfq copy range: {e}"))?;
        q.set_queue_max_len(queue, QUEUE_LEN)
            .map_err(|e| format!("nfq queue length: {e}"))?;
        // Non-blocking, so that the loop can end on time with an empty queue.
        q.set_nonblocking(true);
        let ports = RwLock::new(HashSet::from([(open_udp, 17u8)]));
        touch(ready)?;
        let deadline = deadline_after(max_seconds)?;
        let (mut decided, mut accepted, mut errors) = (0u64, 0u64, 0u64);
        let mut next_check = Instant::now();
        let max_iterations = (max_seconds.max(0.0) * 100e6) as u64 + 1;
        for i in 0..max_iterations {
            // The clock is read every 256 packets, not to tax the loop.
            if i % 256 == 0 {
                let now = Instant::now();
                if now >= deadline || INTERRUPTED.load(Ordering::Relaxed) {
                    break;
                }
                if now >= next_check {
                    if stop.exists() {
                        break;
                    }
                    next_check = now + STOP_POLL;
                }
            }
            match q.recv() {
                Ok(mut msg) => {
                    let ok = naive_decide(&ports, msg.get_payload(), msg.get_hook());
                    msg.set_verdict(if ok {
                        nfq::Verdict::Accept
                    } else {
                        nfq::Verdict::Drop
                    });
                    q.verdict(msg).map_err(|e| format!("nfq verdict: {e}"))?;
                    decided += 1;
                    accepted += u64::from(ok);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Empty queue: look at the stop file, then wait a little.
                    if stop.exists() || Instant::now() >= deadline {
                        break;
                    }
                    sleep(Duration::from_micros(100));
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::ENOBUFS)) => {
                    errors += 1;
                }
                Err(e) => return Err(format!("nfq recv: {e}")),
            }
        }
        let _ = q.unbind(queue);
        println!(
            "{}",
            serde_json::json!({"decided": decided, "accepted": accepted,
                               "dropped": decided - accepted, "errors": errors})
        );
        Ok(())
    }

    // --------------------------------------------------------------- the lab

    /// The two namespaces and their veth pair (removed on drop, after the
    /// processes started in them) and whether the naive rules are in.
    struct Lab {
        net: VethPair,
        children: Vec<Child>,
        naive_rules: bool,
    }

    impl Lab {
        fn new() -> Result<Lab> {
            Ok(Lab {
                net: VethPair::new("v6fwb", "v6fw-nfqbench")?,
                children: Vec::new(),
                naive_rules: false,
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
        fn spawn(
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

        fn read(&self, name: &str) -> String {
            fs::read_to_string(self.net.dir.join(name)).unwrap_or_default()
        }

        fn child(&mut self, i: usize) -> Result<&mut Child> {
            self.children
                .get_mut(i)
                .ok_or_else(|| format!("no child {i}"))
        }

        /// CPU seconds (user + system, all threads) child `i` has used.
        fn cpu_seconds(&mut self, i: usize) -> Option<f64> {
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
        fn wait(&mut self, i: usize, name: &str, limit: Duration) -> Result<ExitStatus> {
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
        fn wait_until(
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
        fn terminate(&mut self, i: usize) -> Result<()> {
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
        fn install_naive_rules(&mut self) -> Result<()> {
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

        fn remove_naive_rules(&mut self) -> Vec<String> {
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

        /// The kernel's counters of queue `QUEUE` in the FW namespace:
        /// (queued so far, dropped because full, dropped on netlink send).
        fn queue_counters(&self) -> Option<(u64, u64, u64)> {
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
            text.lines().find_map(|l| {
                let f: Vec<u64> = l
                    .split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect();
                match f.as_slice() {
                    [q, _, _, _, _, qd, ud, seq, ..] if *q == u64::from(QUEUE) => {
                        Some((*seq, *qd, *ud))
                    }
                    _ => None,
                }
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
            // Then `net` removes the namespaces and the directory.
        }
    }

    // ------------------------------------------------------------ the rounds

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Case {
        V6fw,
        Naive,
    }

    impl Case {
        fn label(self) -> &'static str {
            match self {
                Case::V6fw => "A v6fw run",
                Case::Naive => "B naive nfq",
            }
        }
    }

    #[derive(Debug, Clone)]
    struct Measured {
        case: Case,
        seconds: f64,
        sent: u64,
        decided: u64,
        accepted: u64,
        delivered: u64,
        queued: Option<u64>,
        /// Dropped by the kernel: the queue was full / the consumer's
        /// netlink socket was full.
        queue_dropped: Option<u64>,
        user_dropped: Option<u64>,
        /// CPU seconds the consumer used from just before the flood to the
        /// end of the drain (`window` seconds of wall time).
        consumer_cpu: Option<f64>,
        window: f64,
    }

    impl Measured {
        fn rate(&self, n: u64) -> f64 {
            n as f64 / self.seconds.max(1e-9)
        }
        /// Packets decided per CPU second of the consumer.
        fn per_cpu(&self) -> Option<f64> {
            self.consumer_cpu
                .filter(|c| *c > 0.0)
                .map(|c| self.decided as f64 / c)
        }
        /// The consumer's CPU use over the window, % of one CPU.
        fn cpu_percent(&self) -> Option<f64> {
            self.consumer_cpu.map(|c| 100.0 * c / self.window.max(1e-9))
        }
    }

    fn json_of(text: &str, what: &str) -> Result<serde_json::Value> {
        serde_json::from_str(text.trim())
            .map_err(|e| format!("{what} printed no JSON ({e}): {text}"))
    }

    fn field(v: &serde_json::Value, name: &str) -> Result<u64> {
        v.get(name)
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| format!("no `{name}` in {v}"))
    }

    struct Setup {
        me: PathBuf,
        v6fw: PathBuf,
        seconds: f64,
        payload: usize,
        /// `--pin`: the CPU of the consumer and receiver, and the sender's.
        consumer_cpu: Option<usize>,
        sender_cpu: Option<usize>,
    }

    /// One case: consumer up, receiver up, flood, drain, stop, collect.
    fn run_case(lab: &mut Lab, s: &Setup, case: Case, round: u32) -> Result<Measured> {
        let tag = format!("{}{round}", if case == Case::V6fw { "a" } else { "b" });
        let (fw, peer, dir) = (
            lab.net.fw.clone(),
            lab.net.peer.clone(),
            lab.net.dir.clone(),
        );
        let path = |n: &str| dir.join(format!("{tag}-{n}"));
        let (c_ready, c_stop) = (path("consumer.ready"), path("consumer.stop"));
        let (r_ready, r_stop) = (path("recv.ready"), path("recv.stop"));
        let (state, socket) = (path("state"), path("control.sock"));
        let limit = s.seconds + 30.0;
        let p = |x: &Path| x.to_string_lossy().into_owned();

        // The consumer.
        let consumer_name = format!("{tag}-consumer");
        let consumer = match case {
            Case::V6fw => {
                let args: Vec<String> = [
                    "run",
                    "--open",
                    &format!("{PORT}/udp"),
                    "--queues",
                    &QUEUE.to_string(),
                    "--state-dir",
                    &p(&state),
                    "--socket",
                    &p(&socket),
                    "--json",
                    "--stats-interval",
                    "0",
                ]
                .iter()
                .map(|x| x.to_string())
                .collect();
                let i = lab.spawn(&fw, s.consumer_cpu, &consumer_name, &s.v6fw, &args)?;
                let err = format!("{consumer_name}.err");
                lab.wait_until(i, "v6fw run", Duration::from_secs(15), |l| {
                    l.read(&err).contains("filtering IPv6")
                })?;
                i
            }
            Case::Naive => {
                let args: Vec<String> = vec![
                    "internal-naive".into(),
                    "--queue".into(),
                    QUEUE.to_string(),
                    "--open-udp".into(),
                    PORT.to_string(),
                    "--ready".into(),
                    p(&c_ready),
                    "--stop".into(),
                    p(&c_stop),
                    "--max-seconds".into(),
                    limit.to_string(),
                ];
                let i = lab.spawn(&fw, s.consumer_cpu, &consumer_name, &s.me, &args)?;
                lab.wait_until(i, "the naive loop", Duration::from_secs(10), |_| {
                    c_ready.exists()
                })?;
                lab.install_naive_rules()?;
                i
            }
        };

        // The receiver.
        let recv_name = format!("{tag}-recv");
        let args: Vec<String> = vec![
            "internal-recv".into(),
            "--port".into(),
            PORT.to_string(),
            "--ready".into(),
            p(&r_ready),
            "--stop".into(),
            p(&r_stop),
            "--max-seconds".into(),
            limit.to_string(),
        ];
        let receiver = lab.spawn(&fw, s.consumer_cpu, &recv_name, &s.me, &args)?;
        lab.wait_until(receiver, "the receiver", Duration::from_secs(10), |_| {
            r_ready.exists()
        })?;

        // The flood, then a little time for the queue to drain.
        let send_name = format!("{tag}-send");
        let args: Vec<String> = vec![
            "internal-send".into(),
            "--addr".into(),
            FW_ADDR.to_string(),
            "--port".into(),
            PORT.to_string(),
            "--seconds".into(),
            s.seconds.to_string(),
            "--payload".into(),
            s.payload.to_string(),
        ];
        let cpu_before = lab.cpu_seconds(consumer);
        let window = Instant::now();
        let sender = lab.spawn(&peer, s.sender_cpu, &send_name, &s.me, &args)?;
        let status = lab.wait(
            sender,
            &send_name,
            Duration::from_secs_f64(s.seconds + 10.0),
        )?;
        if !status.success() {
            return Err(format!(
                "the sender failed ({status}): {}",
                lab.read(&format!("{send_name}.err")).trim()
            ));
        }
        let sent_json = json_of(&lab.read(&format!("{send_name}.out")), "the sender")?;
        let sent = field(&sent_json, "sent")?;
        let seconds = sent_json
            .get("seconds")
            .and_then(serde_json::Value::as_f64)
            .ok_or_else(|| format!("no `seconds` in {sent_json}"))?;
        sleep(DRAIN);
        let counters = lab.queue_counters();
        let consumer_cpu = lab
            .cpu_seconds(consumer)
            .zip(cpu_before)
            .map(|(after, before)| after - before);
        let window = window.elapsed().as_secs_f64();

        // Stop the consumer (rules first, as v6fw does), then the receiver.
        let (decided, accepted) = match case {
            Case::V6fw => {
                lab.terminate(consumer)?;
                let status = lab.wait(consumer, &consumer_name, Duration::from_secs(15))?;
                let out = lab.read(&format!("{consumer_name}.out"));
                if !status.success() {
                    return Err(format!(
                        "v6fw run exited with {status}: {}",
                        lab.read(&format!("{consumer_name}.err")).trim()
                    ));
                }
                let v = json_of(&out, "v6fw run --json")?;
                (field(&v, "packets")?, field(&v, "accepted")?)
            }
            Case::Naive => {
                let errors = lab.remove_naive_rules();
                touch(&c_stop)?;
                let status = lab.wait(consumer, &consumer_name, Duration::from_secs(15))?;
                if !errors.is_empty() {
                    return Err(errors.join("\n"));
                }
                if !status.success() {
                    return Err(format!(
                        "the naive loop exited with {status}: {}",
                        lab.read(&format!("{consumer_name}.err")).trim()
                    ));
                }
                let v = json_of(&lab.read(&format!("{consumer_name}.out")), "the naive loop")?;
                (field(&v, "decided")?, field(&v, "accepted")?)
            }
        };
        touch(&r_stop)?;
        let status = lab.wait(receiver, &recv_name, Duration::from_secs(15))?;
        if !status.success() {
            return Err(format!(
                "the receiver failed ({status}): {}",
                lab.read(&format!("{recv_name}.err")).trim()
            ));
        }
        let delivered = field(
            &json_of(&lab.read(&format!("{recv_name}.out")), "the receiver")?,
            "received",
        )?;
        Ok(Measured {
            case,
            seconds,
            sent,
            decided,
            accepted,
            delivered,
            queued: counters.map(|c| c.0),
            queue_dropped: counters.map(|c| c.1),
            user_dropped: counters.map(|c| c.2),
            consumer_cpu,
            window,
        })
    }

    // ---------------------------------------------------------- the harness

    /// Explains why the harness cannot run; a success in --quick mode (so a
    /// non-root CI passes) unless V6FW_REQUIRE_LIVE says otherwise.
    fn cannot_run(quick: bool, why: &str) -> ExitCode {
        eprintln!("nfqueue_bench: cannot run: {why}");
        if quick && !require_live() {
            eprintln!("nfqueue_bench: --quick: nothing measured, exiting 0");
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }

    fn first_line_with(path: &str, key: &str) -> Option<String> {
        let text = fs::read_to_string(path).ok()?;
        let line = text.lines().find(|l| l.starts_with(key))?;
        Some(line.split_once(':')?.1.trim().to_string())
    }

    fn loadavg() -> String {
        fs::read_to_string("/proc/loadavg")
            .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "?".into())
    }

    fn print_machine() {
        let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
        let cpu = first_line_with("/proc/cpuinfo", "model name").unwrap_or_else(|| "?".into());
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "?".into());
        println!("machine: nproc {nproc}; CPU {cpu}; kernel {kernel}");
        println!("load average (1/5/15 min) at start: {}", loadavg());
    }

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        match (v.get(n / 2), n.checked_sub(1).and_then(|m| v.get(m / 2))) {
            (Some(a), Some(b)) if n % 2 == 0 => (a + b) / 2.0,
            (Some(a), _) => *a,
            _ => 0.0,
        }
    }

    fn mpps(x: f64) -> String {
        if x >= 1e6 {
            format!("{:.2} M", x / 1e6)
        } else {
            format!("{:.1} k", x / 1e3)
        }
    }

    fn opt(x: Option<u64>) -> String {
        x.map_or_else(|| "?".into(), |v| v.to_string())
    }

    fn per_cpu(results: &[Measured], case: Case) -> Vec<f64> {
        results
            .iter()
            .filter(|m| m.case == case)
            .filter_map(Measured::per_cpu)
            .collect()
    }

    fn harness(args: &Args) -> ExitCode {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return cannot_run(
                args.quick,
                "not root (network namespaces, ip6tables and NFQUEUE need it); \
                 run it with sudo",
            );
        }
        for (cmd, arg) in [("ip", "-V"), ("ip6tables", "-V")] {
            if sh(&[cmd, arg]).is_err() {
                return cannot_run(
                    args.quick,
                    &format!("`{cmd}` is not usable (apt-get install iproute2 iptables)"),
                );
            }
        }
        let me = match std::env::current_exe() {
            Ok(p) => p,
            Err(e) => return cannot_run(args.quick, &format!("cannot find this binary: {e}")),
        };
        let v6fw = args
            .v6fw
            .clone()
            .unwrap_or_else(|| me.with_file_name("v6fw"));
        if !v6fw.is_file() {
            eprintln!(
                "nfqueue_bench: no v6fw binary at {} (build it: cargo build --release -p v6fw-api \
                 --bin v6fw, or pass --v6fw PATH)",
                v6fw.display()
            );
            return ExitCode::FAILURE;
        }
        install_signal_handlers();
        let setup = Setup {
            me,
            v6fw,
            seconds: if args.quick {
                args.seconds.min(2.0)
            } else {
                args.seconds
            }
            .clamp(0.2, 600.0),
            payload: args.payload,
            consumer_cpu: None,
            sender_cpu: None,
        };
        let mut setup = setup;
        let nproc = std::thread::available_parallelism().map_or(1, |n| n.get());
        if args.pin {
            if nproc < 2 || sh(&["taskset", "-V"]).is_err() {
                eprintln!("nfqueue_bench: --pin needs 2 CPUs and taskset (util-linux)");
                return ExitCode::FAILURE;
            }
            setup.consumer_cpu = Some(0);
            setup.sender_cpu = Some(nproc - 1);
        }
        let rounds = if args.quick {
            1
        } else {
            args.rounds.clamp(1, 100)
        };
        let started = Instant::now();
        let mut lab = match Lab::new() {
            Ok(lab) => lab,
            Err(why) => {
                return cannot_run(args.quick, &format!("cannot build the namespaces: {why}"))
            }
        };
        if let Err(why) = lab.net.nfqueue_target_works() {
            drop(lab);
            return cannot_run(
                args.quick,
                &format!("the ip6tables NFQUEUE target does not work: {why}"),
            );
        }
        print_machine();
        println!(
            "namespaces {} (fd00::1, filtered) and {} (fd00::2, sender); UDP flood of {}-byte \
             datagrams to [fd00::1]:{PORT}, {:.1} s per case, {rounds} round(s) of A then B",
            lab.net.fw, lab.net.peer, setup.payload, setup.seconds
        );
        println!("v6fw: {}", setup.v6fw.display());
        println!();
        println!(
            "{:<5} {:<12} {:>7} {:>9} {:>9} {:>11} {:>9} {:>8} {:>10} {:>8} {:>10} {:>10} {:>10}",
            "round",
            "case",
            "seconds",
            "sent/s",
            "decided/s",
            "delivered/s",
            "cons. CPU",
            "/CPU-s",
            "decided",
            "refused",
            "queued",
            "full drops",
            "sock drops"
        );
        let mut results: Vec<Measured> = Vec::new();
        for round in 1..=rounds {
            for case in [Case::V6fw, Case::Naive] {
                match run_case(&mut lab, &setup, case, round) {
                    Ok(m) => {
                        println!(
                            "{:<5} {:<12} {:>7.2} {:>9} {:>9} {:>11} {:>9} {:>8} {:>10} {:>8} {:>10} {:>10} {:>10}",
                            round,
                            case.label(),
                            m.seconds,
                            mpps(m.rate(m.sent)),
                            mpps(m.rate(m.decided)),
                            mpps(m.rate(m.delivered)),
                            m.cpu_percent()
                                .map_or_else(|| "?".into(), |c| format!("{c:.0} %")),
                            m.per_cpu().map_or_else(|| "?".into(), mpps),
                            m.decided,
                            m.decided.saturating_sub(m.accepted),
                            opt(m.queued),
                            opt(m.queue_dropped),
                            opt(m.user_dropped),
                        );
                        results.push(m);
                    }
                    Err(e) => {
                        eprintln!("nfqueue_bench: round {round}, {}: {e}", case.label());
                        return ExitCode::FAILURE;
                    }
                }
            }
        }
        println!();
        let rates = |case: Case, f: fn(&Measured) -> u64| -> Vec<f64> {
            results
                .iter()
                .filter(|m| m.case == case)
                .map(|m| m.rate(f(m)))
                .collect()
        };
        let (a_dec, b_dec) = (
            median(rates(Case::V6fw, |m| m.decided)),
            median(rates(Case::Naive, |m| m.decided)),
        );
        let (a_del, b_del) = (
            median(rates(Case::V6fw, |m| m.delivered)),
            median(rates(Case::Naive, |m| m.delivered)),
        );
        let per_round: Vec<String> = rates(Case::V6fw, |m| m.decided)
            .iter()
            .zip(rates(Case::Naive, |m| m.decided))
            .map(|(a, b)| format!("{:.2}x", a / b.max(1e-9)))
            .collect();
        println!(
            "median decided/s:   A {} , B {} , A/B {:.2}x (per round: {})",
            mpps(a_dec),
            mpps(b_dec),
            a_dec / b_dec.max(1e-9),
            per_round.join(", ")
        );
        println!(
            "median delivered/s: A {} , B {} , A/B {:.2}x",
            mpps(a_del),
            mpps(b_del),
            a_del / b_del.max(1e-9)
        );
        let (a_cpu, b_cpu) = (
            median(per_cpu(&results, Case::V6fw)),
            median(per_cpu(&results, Case::Naive)),
        );
        println!(
            "median decided per consumer CPU-second: A {} , B {} , A/B {:.2}x",
            mpps(a_cpu),
            mpps(b_cpu),
            a_cpu / b_cpu.max(1e-9)
        );
        println!("load average (1/5/15 min) at end: {}", loadavg());
        drop(lab);
        println!(
            "done in {:.1} s (namespaces removed)",
            started.elapsed().as_secs_f64()
        );
        ExitCode::SUCCESS
    }
}
