//! The control pipe's caps, through a real pipe server (api/src/control/pipe.rs
//! with control::admission): every place taken is refused with the reason, a
//! place given back (a client that left) is free again.
//!
//! Under Wine every process runs as the same elevated user, so every client
//! here is an administrator: what is shown is the cap in all and the places
//! given back. The per-user cap, the places kept for administrators and the
//! eviction of the oldest non-administrator are unit tests of
//! control::admission with made-up SIDs.
#![cfg(windows)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use v6fw_api::control::server::MAX_CLIENTS;
use v6fw_api::fw::FirewallManager;

/// A client end of the pipe (a file opened on its name), retried while
/// every instance is busy.
fn connect(pipe: &PathBuf) -> File {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(pipe)
        {
            Ok(f) => return f,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("cannot connect to {}: {e}", pipe.display()),
        }
    }
}

/// The first line the server sends on `f` without being asked (a refusal),
/// or `None` if nothing came within 30 s.
fn unasked_line(mut f: File) -> Option<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while f.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
            buf.push(byte[0]);
        }
        let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
    });
    rx.recv_timeout(Duration::from_secs(30)).ok()
}

/// Sends `ping` on `f` and reads the reply line (a refused client may find
/// the pipe closed before it wrote: then the refusal, or nothing).
fn ping(f: &mut File) -> String {
    let _ = f.write_all(b"{\"op\":\"ping\"}\n");
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while f.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
        buf.push(byte[0]);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[test]
fn every_place_taken_is_refused_and_a_place_given_back_is_free_again() {
    let pipe = PathBuf::from(format!(r"\\.\pipe\v6fw-caps-{}", std::process::id()));
    let shutdown = Arc::new(AtomicBool::new(false));
    let manager = FirewallManager::in_memory(v6fw_engine::Policy::default());
    let server = v6fw_api::control::serve(manager, &pipe, Arc::clone(&shutdown)).unwrap();
    let mut held: Vec<File> = (0..MAX_CLIENTS).map(|_| connect(&pipe)).collect();
    // Each holder is being served: it gets its reply.
    let first = held.first_mut().unwrap();
    assert!(
        ping(first).contains("\"ok\":true"),
        "a held place is served"
    );
    let refused = unasked_line(connect(&pipe)).expect("a refusal, not a place");
    assert!(
        refused.contains(&format!(
            "serving {MAX_CLIENTS} administrators' clients already"
        )),
        "{refused}"
    );
    // One leaves: its thread ends and gives its place back.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut f = connect(&pipe);
        let reply = ping(&mut f);
        if reply.contains("\"ok\":true") {
            break;
        }
        assert!(
            reply.is_empty() || reply.contains("clients already"),
            "{reply}"
        );
        assert!(
            Instant::now() < deadline,
            "the place was never given back: {reply}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    shutdown.store(true, Ordering::SeqCst);
    drop(held);
    server.join().unwrap();
}
