//! One case of one round (C: no rule, D: the kernel alone, A: `v6fw run`,
//! B: the naive loop, E: `v6fw run --offload established`) and what it
//! measured.

use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::common::{touch, Result, DRAIN, FW_ADDR, PORT, QUEUE};
use crate::lab::Lab;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Case {
    /// No rule at all: the ceiling of sender and receiver.
    Ceiling,
    /// The same policy by ip6tables and conntrack alone.
    Kernel,
    /// `v6fw run`.
    V6fw,
    /// The naive one-packet nfq loop.
    Naive,
    /// `v6fw run --offload established`.
    Offload,
    /// `v6fw run --queues 0` with several flows.
    OneQueue,
    /// `v6fw run --queues 0-1` with the same flows.
    TwoQueues,
}

impl Case {
    /// Every case, in the order of a round.
    pub(crate) const ALL: [Case; 5] = [
        Case::Ceiling,
        Case::Kernel,
        Case::V6fw,
        Case::Naive,
        Case::Offload,
    ];

    /// The multi-queue cases.
    pub(crate) const MULTI: [Case; 2] = [Case::OneQueue, Case::TwoQueues];

    /// Flows of the multi-queue cases (one source address each).
    pub(crate) const MULTI_FLOWS: usize = 4;

    /// Flows (sender sockets) in this case.
    fn flows(self) -> usize {
        match self {
            Case::OneQueue | Case::TwoQueues => Self::MULTI_FLOWS,
            _ => 1,
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Case::Ceiling => "C no rule",
            Case::Kernel => "D kernel",
            Case::V6fw => "A v6fw run",
            Case::Naive => "B naive nfq",
            Case::Offload => "E offload",
            Case::OneQueue => "F 1 queue",
            Case::TwoQueues => "G 2 queues",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Case::Ceiling => "c",
            Case::Kernel => "d",
            Case::V6fw => "a",
            Case::Naive => "b",
            Case::Offload => "e",
            Case::OneQueue => "f",
            Case::TwoQueues => "g",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Measured {
    pub(crate) case: Case,
    pub(crate) seconds: f64,
    pub(crate) sent: u64,
    pub(crate) decided: u64,
    pub(crate) accepted: u64,
    pub(crate) delivered: u64,
    /// Dropped by the kernel: the queue was full / the consumer's
    /// netlink socket was full.
    pub(crate) queue_dropped: Option<u64>,
    pub(crate) user_dropped: Option<u64>,
    /// CPU seconds the consumer used from just before the flood to the
    /// end of the drain (`window` seconds of wall time); none without one.
    pub(crate) consumer_cpu: Option<f64>,
    /// CPU seconds of the sender and the receiver (their whole lives, as
    /// getrusage says: the kernel's work done in their context included).
    pub(crate) sender_receiver_cpu: f64,
    /// Packets the kernel accepted for v6fw (case E: the offload rules).
    pub(crate) kernel_accepted: Option<u64>,
    pub(crate) window: f64,
}

impl Measured {
    pub(crate) fn rate(&self, n: u64) -> f64 {
        n as f64 / self.seconds.max(1e-9)
    }
    /// Packets decided per CPU second of the consumer.
    pub(crate) fn per_cpu(&self) -> Option<f64> {
        self.consumer_cpu
            .filter(|c| *c > 0.0)
            .map(|c| self.decided as f64 / c)
    }
    /// Packets delivered per CPU second of sender, receiver and consumer:
    /// comparable across every case, the kernel-only ones included.
    pub(crate) fn per_flood_cpu(&self) -> f64 {
        let cpu = self.sender_receiver_cpu + self.consumer_cpu.unwrap_or(0.0);
        self.delivered as f64 / cpu.max(1e-9)
    }
    /// The consumer's CPU use over the window, % of one CPU.
    pub(crate) fn cpu_percent(&self) -> Option<f64> {
        self.consumer_cpu.map(|c| 100.0 * c / self.window.max(1e-9))
    }
}

pub(crate) fn json_of(text: &str, what: &str) -> Result<serde_json::Value> {
    serde_json::from_str(text.trim()).map_err(|e| format!("{what} printed no JSON ({e}): {text}"))
}

pub(crate) fn field(v: &serde_json::Value, name: &str) -> Result<u64> {
    v.get(name)
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| format!("no `{name}` in {v}"))
}

/// The `cpu` a helper printed (0 when missing).
pub(crate) fn cpu_of(v: &serde_json::Value) -> f64 {
    v.get("cpu")
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(0.0)
}

pub(crate) struct Setup {
    pub(crate) me: PathBuf,
    pub(crate) v6fw: PathBuf,
    pub(crate) seconds: f64,
    pub(crate) payload: usize,
    /// `--pin`: the CPU of the consumer and receiver, and the sender's.
    pub(crate) consumer_cpu: Option<usize>,
    pub(crate) sender_cpu: Option<usize>,
}

/// Starts `v6fw run --open 9000/udp,5201/tcp` (with `extra` arguments) in
/// FW as `name`; waits until it filters.
pub(crate) fn start_v6fw(lab: &mut Lab, s: &Setup, name: &str, extra: &[&str]) -> Result<usize> {
    let dir = lab.net.dir.clone();
    let p = |x: &Path| x.to_string_lossy().into_owned();
    let (state, socket) = (
        dir.join(format!("{name}-state")),
        dir.join(format!("{name}.sock")),
    );
    let mut args: Vec<String> = [
        "run",
        "--open",
        &format!("{PORT}/udp,{}/tcp", crate::common::TCP_PORT),
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
    if !extra.contains(&"--queues") {
        args.extend(["--queues".to_string(), QUEUE.to_string()]);
    }
    args.extend(extra.iter().map(|x| x.to_string()));
    let fw = lab.net.fw.clone();
    let i = lab.spawn(&fw, s.consumer_cpu, name, &s.v6fw, &args)?;
    let err = format!("{name}.err");
    lab.wait_until(i, "v6fw run", Duration::from_secs(15), |l| {
        l.read(&err).contains("filtering IPv6")
    })?;
    Ok(i)
}

/// Stops `v6fw run` (SIGTERM: rules first) and reads its JSON totals.
pub(crate) fn stop_v6fw(lab: &mut Lab, i: usize, name: &str) -> Result<serde_json::Value> {
    lab.terminate(i)?;
    let status = lab.wait(i, name, Duration::from_secs(15))?;
    if !status.success() {
        return Err(format!(
            "v6fw run exited with {status}: {}",
            lab.read(&format!("{name}.err")).trim()
        ));
    }
    json_of(&lab.read(&format!("{name}.out")), "v6fw run --json")
}

/// One case: consumer (or rules) up, receiver up, flood, drain, stop,
/// collect.
pub(crate) fn run_case(lab: &mut Lab, s: &Setup, case: Case, round: u32) -> Result<Measured> {
    let tag = format!("{}{round}", case.tag());
    let (fw, peer, dir) = (
        lab.net.fw.clone(),
        lab.net.peer.clone(),
        lab.net.dir.clone(),
    );
    let path = |n: &str| dir.join(format!("{tag}-{n}"));
    let (c_ready, c_stop) = (path("consumer.ready"), path("consumer.stop"));
    let (r_ready, r_stop) = (path("recv.ready"), path("recv.stop"));
    let limit = s.seconds + 30.0;
    let p = |x: &Path| x.to_string_lossy().into_owned();

    // The consumer, or the kernel's rules.
    let consumer_name = format!("{tag}-consumer");
    let consumer = match case {
        Case::Ceiling => None,
        Case::Kernel => {
            lab.install_kernel_rules()?;
            None
        }
        Case::V6fw => Some(start_v6fw(lab, s, &consumer_name, &[])?),
        Case::Offload => Some(start_v6fw(
            lab,
            s,
            &consumer_name,
            &["--offload", "established"],
        )?),
        Case::OneQueue => Some(start_v6fw(lab, s, &consumer_name, &["--queues", "0"])?),
        Case::TwoQueues => Some(start_v6fw(lab, s, &consumer_name, &["--queues", "0-1"])?),
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
            Some(i)
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
        "--flows".into(),
        case.flows().to_string(),
    ];
    let cpu_before = consumer.and_then(|c| lab.cpu_seconds(c));
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
    // The flood and its hello.
    let sent = field(&sent_json, "sent")? + 1;
    let seconds = sent_json
        .get("seconds")
        .and_then(serde_json::Value::as_f64)
        .ok_or_else(|| format!("no `seconds` in {sent_json}"))?;
    sleep(DRAIN);
    let counters = consumer.and_then(|_| lab.queue_counters());
    let consumer_cpu = consumer
        .and_then(|c| lab.cpu_seconds(c))
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let window = window.elapsed().as_secs_f64();

    // Stop the consumer (rules first, as v6fw does), then the receiver.
    let mut kernel_accepted = None;
    let decided = match (case, consumer) {
        (Case::V6fw | Case::Offload | Case::OneQueue | Case::TwoQueues, Some(i)) => {
            let v = stop_v6fw(lab, i, &consumer_name)?;
            kernel_accepted = v
                .get("offload")
                .and_then(|o| o.get("kernel_accepted_packets"))
                .and_then(serde_json::Value::as_u64);
            Some((field(&v, "packets")?, field(&v, "accepted")?))
        }
        (Case::Naive, Some(i)) => {
            let errors = lab.remove_naive_rules();
            touch(&c_stop)?;
            let status = lab.wait(i, &consumer_name, Duration::from_secs(15))?;
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
            Some((field(&v, "decided")?, field(&v, "accepted")?))
        }
        (Case::Kernel, _) => {
            let errors = lab.remove_kernel_rules();
            if !errors.is_empty() {
                return Err(errors.join("\n"));
            }
            None
        }
        _ => None,
    };
    touch(&r_stop)?;
    let status = lab.wait(receiver, &recv_name, Duration::from_secs(15))?;
    if !status.success() {
        return Err(format!(
            "the receiver failed ({status}): {}",
            lab.read(&format!("{recv_name}.err")).trim()
        ));
    }
    let recv_json = json_of(&lab.read(&format!("{recv_name}.out")), "the receiver")?;
    let delivered = field(&recv_json, "received")?;
    // Without a consumer the kernel decided what was delivered.
    let (decided, accepted) = decided.unwrap_or((delivered, delivered));
    Ok(Measured {
        case,
        seconds,
        sent,
        decided,
        accepted,
        delivered,
        queue_dropped: counters.map(|c| c.1),
        user_dropped: counters.map(|c| c.2),
        consumer_cpu,
        sender_receiver_cpu: cpu_of(&sent_json) + cpu_of(&recv_json),
        kernel_accepted,
        window,
    })
}
