//! One case of one round (A: `v6fw run`, B: the naive loop) and what it
//! measured.

use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::common::{touch, Result, DRAIN, FW_ADDR, PORT, QUEUE};
use crate::lab::Lab;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Case {
    V6fw,
    Naive,
}

impl Case {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Case::V6fw => "A v6fw run",
            Case::Naive => "B naive nfq",
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
    pub(crate) queued: Option<u64>,
    /// Dropped by the kernel: the queue was full / the consumer's
    /// netlink socket was full.
    pub(crate) queue_dropped: Option<u64>,
    pub(crate) user_dropped: Option<u64>,
    /// CPU seconds the consumer used from just before the flood to the
    /// end of the drain (`window` seconds of wall time).
    pub(crate) consumer_cpu: Option<f64>,
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
    /// The consumer's CPU use over the window, % of one CPU.
    pub(crate) fn cpu_percent(&self) -> Option<f64> {
        self.consumer_cpu.map(|c| 100.0 * c / self.window.max(1e-9))
    }
}

fn json_of(text: &str, what: &str) -> Result<serde_json::Value> {
    serde_json::from_str(text.trim()).map_err(|e| format!("{what} printed no JSON ({e}): {text}"))
}

fn field(v: &serde_json::Value, name: &str) -> Result<u64> {
    v.get(name)
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| format!("no `{name}` in {v}"))
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

/// One case: consumer up, receiver up, flood, drain, stop, collect.
pub(crate) fn run_case(lab: &mut Lab, s: &Setup, case: Case, round: u32) -> Result<Measured> {
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
