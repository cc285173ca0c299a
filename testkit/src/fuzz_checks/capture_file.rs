//! Fuzz check `capture_file`: arbitrary bytes as a pcap/pcapng file through
//! the replay reader and the decision. It never panics; an error names the
//! file; frames are numbered 1, 2, 3… without gaps; every frame is decided
//! and counted once; the reader never claims to be past the end.

use std::io::Cursor;
use std::ops::ControlFlow;

use v6fw_capture::file::CaptureFile;
use v6fw_capture::replay::{replay, ReplayOptions};
use v6fw_engine::{Direction, Engine, Policy, StateConfig, Verdict};

use super::Violation;

const NAME: &str = "fuzz-input.pcap";

/// Runs the check on one input.
pub fn capture_file(data: &[u8]) -> Result<(), Violation> {
    let size = data.len() as u64;
    let mut file = match CaptureFile::from_reader(NAME, Box::new(Cursor::new(data.to_vec())), size)
    {
        Ok(f) => f,
        Err(e) => return named(&e.to_string()),
    };
    // Small state tables: the reader is under test, and a fresh engine per
    // input should not cost more than the input.
    let state = StateConfig {
        flow_capacity: 64,
        frag_capacity: 64,
        ..StateConfig::default()
    };
    let engine = Engine::with_state(Policy::default(), state);
    let opts = ReplayOptions {
        local: vec!["fd00::/8".parse().map_err(|e| format!("prefix: {e}"))?],
        if_index: 0,
    };
    let mut expected = 1u64;
    let mut broken: Option<Violation> = None;
    let result = replay(&mut file, &engine, &opts, |r| {
        let problem = if r.frame != expected {
            Some(format!("frame {} after frame {}", r.frame, expected - 1))
        } else if r.position > size {
            Some(format!("position {} past the end ({size})", r.position))
        } else if r.packet.len() > data.len() {
            Some(format!(
                "a {}-byte packet from {size} bytes",
                r.packet.len()
            ))
        } else if r.meta.direction == Direction::Outbound && r.decision.verdict() != Verdict::Accept
        {
            Some(format!(
                "outbound frame {} dropped: {}",
                r.frame, r.decision.reason
            ))
        } else {
            None
        };
        expected += 1;
        match problem {
            Some(p) => {
                broken = Some(p);
                ControlFlow::Break(())
            }
            None => ControlFlow::Continue(()),
        }
    });
    if let Some(p) = broken {
        return Err(p);
    }
    match result {
        Ok(totals) if totals.packets() != expected - 1 => Err(format!(
            "{} frames decided but {} counted",
            expected - 1,
            totals.packets()
        )),
        Ok(_) => Ok(()),
        Err(e) => named(&e.to_string()),
    }
}

/// An error must say which file it is about.
fn named(message: &str) -> Result<(), Violation> {
    if message.contains(NAME) {
        Ok(())
    } else {
        Err(format!("error does not name the file: {message}"))
    }
}
