//! The server over loopback: one answer per connection, bodies refused
//! unread, heads capped, the oldest idle connection given up when full,
//! deadlines, a stop that does not wait for clients, IPV6_V6ONLY.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::AtomicUsize;
use std::sync::mpsc;

use super::*;

/// A server on [::1] whose handler answers 200 with the path, counting calls.
fn start(limits: Limits) -> (Server, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let handler: Handler = Box::new(move |r: Request<'_>| {
        counted.fetch_add(1, Ordering::SeqCst);
        Response::text(Status::Ok, format!("path {}", r.path))
    });
    let server = Server::start(
        "[::1]:0".parse().unwrap(),
        limits,
        "test-http",
        handler,
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap();
    (server, calls)
}

fn connect(server: &Server) -> TcpStream {
    let s = TcpStream::connect(server.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Sends `bytes` and reads until the server closes (10 s at most).
fn exchange(server: &Server, bytes: &[u8]) -> String {
    let mut s = connect(server);
    s.write_all(bytes).unwrap();
    read_all(&mut s)
}

fn read_all(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            // A reset after the answer (unread bytes at the close) ends it too.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("no close within 10 s: {e}; read so far: {out:?}"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn one_answer_per_connection_then_close() {
    let (server, calls) = start(Limits::default());
    let got = exchange(&server, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
    assert!(got.contains("\r\nConnection: close\r\n"), "{got}");
    assert!(got.contains("\r\nContent-Length: 13\r\n"), "{got}");
    assert!(got.ends_with("\r\n\r\npath /metrics"), "{got}");
    let got = exchange(&server, b"HEAD /x HTTP/1.0\r\n\r\n");
    assert!(got.contains("\r\nContent-Length: 7\r\n"), "{got}");
    assert!(got.ends_with("\r\n\r\n"), "no body for HEAD: {got}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    server.stop();
}

#[test]
fn pipelined_requests_get_one_answer() {
    let (server, calls) = start(Limits::default());
    let many = b"GET /a HTTP/1.1\r\n\r\n".repeat(3000);
    let got = exchange(&server, &many);
    assert_eq!(got.matches("HTTP/1.1 200").count(), 1, "{got}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn bodies_and_long_heads_are_refused_unread() {
    let (server, calls) = start(Limits::default());
    let got = exchange(
        &server,
        b"GET /metrics HTTP/1.1\r\nContent-Length: 1000000000000\r\n\r\n",
    );
    assert!(got.starts_with("HTTP/1.1 413 "), "{got}");
    assert!(got.contains("request bodies are not accepted"), "{got}");
    let got = exchange(
        &server,
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    );
    assert!(got.starts_with("HTTP/1.1 400 "), "{got}");
    // A 64 KiB header line without its end: 431 after 4 KiB.
    let mut long = b"GET / HTTP/1.1\r\nX: ".to_vec();
    long.resize(64 << 10, b'a');
    let got = exchange(&server, &long);
    assert!(got.starts_with("HTTP/1.1 431 "), "{got}");
    let got = exchange(&server, b"PUT / HTTP/1.1\r\n\r\n");
    assert!(got.starts_with("HTTP/1.1 405 "), "{got}");
    assert!(got.contains("\r\nAllow: GET, HEAD\r\n"), "{got}");
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the handler saw none");
}

#[test]
fn when_full_the_oldest_idle_connection_makes_room() {
    let (server, _) = start(Limits {
        max_connections: 2,
        ..Limits::default()
    });
    let mut oldest = connect(&server);
    let _second = connect(&server);
    // A third one is served all the same...
    let got = exchange(&server, b"GET /third HTTP/1.1\r\n\r\n");
    assert!(got.ends_with("path /third"), "{got}");
    // ...and the oldest idle one was closed for it.
    assert_eq!(read_all(&mut oldest), "");
}

#[test]
fn a_silent_client_is_closed_at_the_deadline() {
    let (server, calls) = start(Limits {
        read_timeout: Duration::from_millis(300),
        ..Limits::default()
    });
    let mut s = connect(&server);
    s.write_all(b"GET /slow HTTP/1.1\r\n").unwrap();
    assert_eq!(read_all(&mut s), "", "closed without an answer");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn stop_does_not_wait_for_clients() {
    let (server, _) = start(Limits::default());
    let mut held = Vec::new();
    for _ in 0..10 {
        let mut s = connect(&server);
        s.write_all(b"GET / HTTP/1.1\r\nX: unfinished").unwrap();
        held.push(s);
    }
    let (done, stopped) = mpsc::channel();
    std::thread::spawn(move || {
        server.stop();
        let _ = done.send(());
    });
    stopped
        .recv_timeout(Duration::from_secs(10))
        .expect("stop returned while clients still held their connections");
    for mut s in held {
        assert_eq!(read_all(&mut s), "", "closed at the stop");
    }
}

#[test]
fn ipv6_is_bound_v6only() {
    let listener = serve::bind("[::1]:0".parse().unwrap()).unwrap();
    assert!(socket2::SockRef::from(&listener).only_v6().unwrap());
    let v4 = serve::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    assert!(v4.local_addr().unwrap().is_ipv4());
}
