//! The server's thread: the listener and at most `max_connections`
//! nonblocking connections on one mio poll, each connection a small state
//! machine (read the head, write the answer, drain, close) with a deadline.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use super::POLL;
use super::{parse_head, Handler, Head, Limits, Request, Response, DRAIN_BYTES, MAX_HEAD_BYTES};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
/// Connection `i` is `Token(FIRST + i)`.
const FIRST: usize = 2;

/// Most connections accepted in one turn of the loop, so a flood of
/// connections cannot keep the held ones from being served.
const ACCEPTS_PER_TURN: usize = 64;

/// How long a connection may drain after its answer.
const LINGER: Duration = Duration::from_secs(1);

/// After an accept failed for want of descriptors, how soon to try again.
const RETRY_ACCEPT: Duration = Duration::from_millis(50);

/// Binds `addr` nonblocking: `IPV6_V6ONLY` for an IPv6 address that is not
/// IPv4-mapped, `SO_REUSEADDR` where it does not let others take the port
/// (not on Windows), as std's `TcpListener::bind` does.
pub(super) fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if let SocketAddr::V6(a) = addr {
        if a.ip().to_ipv4_mapped().is_none() {
            socket.set_only_v6(true)?;
        }
    }
    #[cfg(not(windows))]
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(128)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// The thread's state.
pub(super) struct EventLoop {
    poll: Poll,
    listener: TcpListener,
    limits: Limits,
    handler: Handler,
    conns: Vec<Option<Conn>>,
    /// Either set: stop.
    stops: [Arc<AtomicBool>; 2],
    /// When an accept failed for want of descriptors (and so when to say
    /// so again: once a minute).
    starved_since: Option<Instant>,
}

/// One connection.
struct Conn {
    stream: TcpStream,
    accepted: Instant,
    deadline: Instant,
    state: State,
}

enum State {
    /// Reading the head into a buffer of [`MAX_HEAD_BYTES`].
    Reading { buf: Vec<u8> },
    /// Writing the answer.
    Writing { out: Vec<u8>, sent: usize },
    /// Answered and shut for writing: reading what the client still sends
    /// (at most `left` bytes more) until it closes.
    Draining { left: usize },
}

/// Whether a connection stays.
#[derive(PartialEq, Eq)]
enum Next {
    Keep,
    Close,
}

impl EventLoop {
    pub(super) fn new(
        mut listener: TcpListener,
        limits: Limits,
        handler: Handler,
        stops: [Arc<AtomicBool>; 2],
    ) -> std::io::Result<(EventLoop, Arc<Waker>)> {
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let max = limits.max_connections.max(1);
        let event_loop = EventLoop {
            poll,
            listener,
            limits: Limits {
                max_connections: max,
                ..limits
            },
            handler,
            conns: (0..max).map(|_| None).collect(),
            stops,
            starved_since: None,
        };
        Ok((event_loop, waker))
    }

    /// Serves until a stop flag is set; then every connection is closed.
    pub(super) fn run(mut self) {
        let mut events = Events::with_capacity(128);
        let mut retry_accept = false;
        while !self.stops.iter().any(|s| s.load(Ordering::SeqCst)) {
            let now = Instant::now();
            let mut wait = POLL;
            if let Some(d) = self.conns.iter().flatten().map(|c| c.deadline).min() {
                wait = wait.min(d.saturating_duration_since(now));
            }
            if retry_accept {
                wait = wait.min(RETRY_ACCEPT);
            }
            if let Err(e) = self.poll.poll(&mut events, Some(wait)) {
                if e.kind() != ErrorKind::Interrupted {
                    tracing::error!("the metrics endpoint stopped: cannot poll its sockets: {e}");
                    return;
                }
            }
            let mut accept = retry_accept;
            for event in events.iter() {
                match event.token() {
                    LISTENER => accept = true,
                    WAKER => {}
                    Token(t) => self.advance(t.wrapping_sub(FIRST)),
                }
            }
            if accept {
                retry_accept = self.accept();
            }
            self.expire(Instant::now());
        }
    }

    /// Moves connection `i` on as far as its socket allows.
    fn advance(&mut self, i: usize) {
        let Some(slot) = self.conns.get_mut(i) else {
            return;
        };
        let Some(conn) = slot.as_mut() else {
            return;
        };
        if conn.advance(&mut self.handler, &self.limits) == Next::Close {
            self.close(i);
        }
    }

    /// Accepts what is waiting (up to [`ACCEPTS_PER_TURN`]); whether to
    /// try again soon (more waiting, or no descriptor was free).
    fn accept(&mut self) -> bool {
        for _ in 0..ACCEPTS_PER_TURN {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    self.starved_since = None;
                    self.admit(stream);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::Interrupted
                            | ErrorKind::ConnectionAborted
                            | ErrorKind::ConnectionReset
                    ) => {}
                Err(e) => {
                    // Out of descriptors (EMFILE, ENFILE) or memory: give
                    // up a held connection so the next try can succeed.
                    if let Some(i) = self.victim() {
                        self.close(i);
                    }
                    let now = Instant::now();
                    if self
                        .starved_since
                        .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60))
                    {
                        tracing::warn!(
                            "the metrics endpoint cannot accept a connection: {e} \
                             (raise the descriptor limit, LimitNOFILE= under systemd)"
                        );
                        self.starved_since = Some(now);
                    }
                    return true;
                }
            }
        }
        true
    }

    /// Holds `stream` in a free place, or in the place of the connection
    /// [`EventLoop::victim`] names.
    fn admit(&mut self, mut stream: TcpStream) {
        let i = match self.conns.iter().position(Option::is_none) {
            Some(i) => i,
            None => match self.victim() {
                Some(i) => {
                    self.close(i);
                    i
                }
                None => return,
            },
        };
        let token = Token(FIRST + i);
        let registered = self.poll.registry().register(
            &mut stream,
            token,
            Interest::READABLE | Interest::WRITABLE,
        );
        if registered.is_err() {
            return;
        }
        let now = Instant::now();
        if let Some(slot) = self.conns.get_mut(i) {
            *slot = Some(Conn {
                stream,
                accepted: now,
                deadline: now + self.limits.read_timeout,
                state: State::Reading {
                    buf: Vec::with_capacity(MAX_HEAD_BYTES),
                },
            });
        }
        // Bytes may be there already: edge-triggered polls report only
        // what arrives from now on on some systems.
        self.advance(i);
    }

    /// The connection to give up for a new one: the oldest that has sent
    /// nothing, else the oldest still reading its head, else the oldest
    /// draining, else the oldest writing.
    fn victim(&self) -> Option<usize> {
        self.conns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().map(|c| ((c.rank(), c.accepted), i)))
            .min()
            .map(|(_, i)| i)
    }

    /// Closes the connections past their deadline.
    fn expire(&mut self, now: Instant) {
        for i in 0..self.conns.len() {
            let late = self
                .conns
                .get(i)
                .and_then(Option::as_ref)
                .is_some_and(|c| c.deadline <= now);
            if late {
                self.close(i);
            }
        }
    }

    fn close(&mut self, i: usize) {
        if let Some(mut conn) = self.conns.get_mut(i).and_then(Option::take) {
            let _ = self.poll.registry().deregister(&mut conn.stream);
        }
    }
}

impl Conn {
    /// The order [`EventLoop::victim`] gives up connections in.
    fn rank(&self) -> u8 {
        match &self.state {
            State::Reading { buf } if buf.is_empty() => 0,
            State::Reading { .. } => 1,
            State::Draining { .. } => 2,
            State::Writing { .. } => 3,
        }
    }

    fn advance(&mut self, handler: &mut Handler, limits: &Limits) -> Next {
        loop {
            let step = match &mut self.state {
                State::Reading { buf } => read_head(&mut self.stream, buf, handler),
                State::Writing { out, sent } => write_answer(&mut self.stream, out, sent),
                State::Draining { left } => return drain(&mut self.stream, left),
            };
            match step {
                Step::Wait => return Next::Keep,
                Step::Close => return Next::Close,
                Step::Answer(out) => {
                    self.state = State::Writing { out, sent: 0 };
                    self.deadline = Instant::now() + limits.write_timeout;
                }
                Step::Written => {
                    let _ = self.stream.shutdown(Shutdown::Write);
                    self.state = State::Draining { left: DRAIN_BYTES };
                    self.deadline = self.deadline.min(Instant::now() + LINGER);
                }
            }
        }
    }
}

/// What a state's I/O came to.
enum Step {
    /// Nothing more can be done until the socket is ready again.
    Wait,
    Close,
    /// The head is read: send these bytes.
    Answer(Vec<u8>),
    /// The answer is sent.
    Written,
}

fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>, handler: &mut Handler) -> Step {
    let mut chunk = [0u8; 1024];
    loop {
        // Never more than the head may still take: the buffer is never grown.
        let room = MAX_HEAD_BYTES.saturating_sub(buf.len()).min(chunk.len());
        let Some(into) = chunk.get_mut(..room) else {
            return Step::Close;
        };
        match stream.read(into) {
            Ok(0) => return Step::Close,
            Ok(n) => buf.extend_from_slice(into.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Step::Wait,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return Step::Close,
        }
        let response = match parse_head(buf) {
            Head::Partial => continue,
            Head::Request { method, path } => {
                let response = handler(Request { method, path });
                return Step::Answer(response.to_bytes(method == super::Method::Head));
            }
            Head::Refused { status, why } => Response::text(status, format!("{why}\n")),
        };
        return Step::Answer(response.to_bytes(false));
    }
}

fn write_answer(stream: &mut TcpStream, out: &[u8], sent: &mut usize) -> Step {
    loop {
        let Some(rest) = out.get(*sent..).filter(|r| !r.is_empty()) else {
            return Step::Written;
        };
        match stream.write(rest) {
            Ok(0) => return Step::Close,
            Ok(n) => *sent += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Step::Wait,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Step::Close,
        }
    }
}

fn drain(stream: &mut TcpStream, left: &mut usize) -> Next {
    let mut scratch = [0u8; 4096];
    loop {
        match stream.read(&mut scratch) {
            Ok(0) => return Next::Close,
            Ok(n) => {
                *left = left.saturating_sub(n);
                if *left == 0 {
                    return Next::Close;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Next::Keep,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Next::Close,
        }
    }
}
