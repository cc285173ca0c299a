//! The bulk TCP cases: one stream PEER → FW port 5201 with no rule (the
//! ceiling), through `v6fw run` (its queues hand GSO/GRO super-packets over
//! unsegmented: `NFQA_CFG_F_GSO`), and through `v6fw run --offload
//! established`.

use std::path::Path;
use std::time::Duration;

use crate::common::{touch, Result, FW_ADDR, TCP_PORT};
use crate::lab::Lab;
use crate::rounds::{cpu_of, field, json_of, start_v6fw, stop_v6fw, Setup};

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Bulk {
    /// No rule.
    Ceiling,
    /// `v6fw run`.
    V6fw,
    /// `v6fw run --offload established`.
    Offload,
}

impl Bulk {
    pub(crate) const ALL: [Bulk; 3] = [Bulk::Ceiling, Bulk::V6fw, Bulk::Offload];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Bulk::Ceiling => "TCP no rule",
            Bulk::V6fw => "TCP v6fw",
            Bulk::Offload => "TCP offload",
        }
    }
}

/// What one bulk case measured.
#[derive(Debug, Clone)]
pub(crate) struct BulkMeasured {
    pub(crate) case: Bulk,
    pub(crate) bytes: u64,
    pub(crate) seconds: f64,
    /// Sender, receiver and (if any) v6fw, CPU seconds.
    pub(crate) cpu: f64,
    /// v6fw's own CPU seconds.
    pub(crate) consumer_cpu: Option<f64>,
    /// Packets v6fw decided (GSO super-packets count once).
    pub(crate) decided: Option<u64>,
    pub(crate) kernel_accepted: Option<u64>,
}

impl BulkMeasured {
    /// Gbit/s received.
    pub(crate) fn gbps(&self) -> f64 {
        self.bytes as f64 * 8.0 / 1e9 / self.seconds.max(1e-9)
    }
    /// CPU seconds per GB received.
    pub(crate) fn cpu_per_gb(&self) -> f64 {
        self.cpu / (self.bytes as f64 / 1e9).max(1e-12)
    }
}

/// One bulk case: consumer up, receiver up, stream, stop, collect.
pub(crate) fn run_bulk(lab: &mut Lab, s: &Setup, case: Bulk, round: u32) -> Result<BulkMeasured> {
    let tag = format!("t{}{round}", case as u8);
    let (fw, peer, dir) = (
        lab.net.fw.clone(),
        lab.net.peer.clone(),
        lab.net.dir.clone(),
    );
    let (ready, stop) = (
        dir.join(format!("{tag}-ready")),
        dir.join(format!("{tag}-stop")),
    );
    let p = |x: &Path| x.to_string_lossy().into_owned();
    let consumer_name = format!("{tag}-consumer");
    let consumer = match case {
        Bulk::Ceiling => None,
        Bulk::V6fw => Some(start_v6fw(lab, s, &consumer_name, &[])?),
        Bulk::Offload => Some(start_v6fw(
            lab,
            s,
            &consumer_name,
            &["--offload", "established"],
        )?),
    };
    let recv_name = format!("{tag}-recv");
    let args: Vec<String> = vec![
        "internal-tcp-recv".into(),
        "--port".into(),
        TCP_PORT.to_string(),
        "--ready".into(),
        p(&ready),
        "--stop".into(),
        p(&stop),
        "--max-seconds".into(),
        (s.seconds + 30.0).to_string(),
    ];
    let receiver = lab.spawn(&fw, s.consumer_cpu, &recv_name, &s.me, &args)?;
    lab.wait_until(
        receiver,
        "the TCP receiver",
        Duration::from_secs(10),
        |_| ready.exists(),
    )?;
    let cpu_before = consumer.and_then(|c| lab.cpu_seconds(c));
    let send_name = format!("{tag}-send");
    let args: Vec<String> = vec![
        "internal-tcp-send".into(),
        "--addr".into(),
        FW_ADDR.to_string(),
        "--port".into(),
        TCP_PORT.to_string(),
        "--seconds".into(),
        s.seconds.to_string(),
    ];
    let sender = lab.spawn(&peer, s.sender_cpu, &send_name, &s.me, &args)?;
    let status = lab.wait(
        sender,
        &send_name,
        Duration::from_secs_f64(s.seconds + 15.0),
    )?;
    if !status.success() {
        return Err(format!(
            "the TCP sender failed ({status}): {}",
            lab.read(&format!("{send_name}.err")).trim()
        ));
    }
    let sent = json_of(&lab.read(&format!("{send_name}.out")), "the TCP sender")?;
    let seconds = sent
        .get("seconds")
        .and_then(serde_json::Value::as_f64)
        .ok_or_else(|| format!("no `seconds` in {sent}"))?;
    touch(&stop)?;
    let status = lab.wait(receiver, &recv_name, Duration::from_secs(15))?;
    if !status.success() {
        return Err(format!(
            "the TCP receiver failed ({status}): {}",
            lab.read(&format!("{recv_name}.err")).trim()
        ));
    }
    let recv = json_of(&lab.read(&format!("{recv_name}.out")), "the TCP receiver")?;
    let consumer_cpu = consumer
        .and_then(|c| lab.cpu_seconds(c))
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let (decided, kernel_accepted) = match consumer {
        Some(i) => {
            let v = stop_v6fw(lab, i, &consumer_name)?;
            let k = v
                .get("offload")
                .and_then(|o| o.get("kernel_accepted_packets"))
                .and_then(serde_json::Value::as_u64);
            (Some(field(&v, "packets")?), k)
        }
        None => (None, None),
    };
    Ok(BulkMeasured {
        case,
        bytes: field(&recv, "received")?,
        seconds,
        cpu: cpu_of(&sent) + cpu_of(&recv) + consumer_cpu.unwrap_or(0.0),
        consumer_cpu,
        decided,
        kernel_accepted,
    })
}
