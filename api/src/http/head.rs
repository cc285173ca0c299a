//! One HTTP/1.x request head, read with our limits: [`parse_head`] takes
//! the bytes received so far (at most [`MAX_HEAD_BYTES`]) and says whether
//! more are needed, which request it is, or why it is refused. The syntax is
//! httparse's (hyper's parser); what is accepted is ours: `GET` or `HEAD`,
//! no body (any `Content-Length` above 0, any `Transfer-Encoding`), at most
//! [`MAX_HEADERS`] headers. Nothing here allocates: the request borrows the
//! buffer.

/// The largest request head read: a head not complete within this many
/// bytes is refused with 431. A scraper's head is a few hundred bytes.
pub const MAX_HEAD_BYTES: usize = 4096;

/// The most header lines a head may have (more: 431).
pub const MAX_HEADERS: usize = 32;

/// The methods served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`: the status, the headers and the body.
    Get,
    /// `HEAD`: the status and the headers only.
    Head,
}

/// The statuses the server answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 200.
    Ok,
    /// 400: not an HTTP/1.x request head, or a body announced by
    /// `Transfer-Encoding`.
    BadRequest,
    /// 404.
    NotFound,
    /// 405: a method other than `GET` or `HEAD`.
    MethodNotAllowed,
    /// 413: a `Content-Length` above 0.
    PayloadTooLarge,
    /// 431: a head over [`MAX_HEAD_BYTES`] or [`MAX_HEADERS`].
    HeadersTooLarge,
    /// 500.
    InternalError,
}

impl Status {
    /// The status code.
    pub fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::BadRequest => 400,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::PayloadTooLarge => 413,
            Status::HeadersTooLarge => 431,
            Status::InternalError => 500,
        }
    }

    /// The reason phrase.
    pub fn reason(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::BadRequest => "Bad Request",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::PayloadTooLarge => "Content Too Large",
            Status::HeadersTooLarge => "Request Header Fields Too Large",
            Status::InternalError => "Internal Server Error",
        }
    }
}

/// What the bytes received so far are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head<'a> {
    /// Not a whole head yet, and more bytes would still fit.
    Partial,
    /// A request to answer: its method and its path (the request target
    /// without `?query`).
    Request {
        /// `GET` or `HEAD`.
        method: Method,
        /// The path, e.g. `/metrics`.
        path: &'a str,
    },
    /// Refused: answer `status` with `why` (one line) and close.
    Refused {
        /// The status to answer with.
        status: Status,
        /// Why, for the body of the answer.
        why: &'static str,
    },
}

/// Reads the head at the start of `buf`: the bytes received on a
/// connection so far. Bytes after the head (a body, more requests) are
/// ignored: one request is answered per connection. `buf` longer than
/// [`MAX_HEAD_BYTES`] is looked at only up to that length.
pub fn parse_head(buf: &[u8]) -> Head<'_> {
    let buf = buf.get(..MAX_HEAD_BYTES).unwrap_or(buf);
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(buf) {
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_BYTES => Head::Refused {
            status: Status::HeadersTooLarge,
            why: "the request head is over 4096 bytes",
        },
        Ok(httparse::Status::Partial) => Head::Partial,
        Err(httparse::Error::TooManyHeaders) => Head::Refused {
            status: Status::HeadersTooLarge,
            why: "the request has more than 32 headers",
        },
        Err(_) => Head::Refused {
            status: Status::BadRequest,
            why: "not an HTTP/1.x request head",
        },
        Ok(httparse::Status::Complete(_)) => {
            if let Some(refused) = body_refused(request.headers) {
                return refused;
            }
            let method = match request.method {
                Some("GET") => Method::Get,
                Some("HEAD") => Method::Head,
                _ => {
                    return Head::Refused {
                        status: Status::MethodNotAllowed,
                        why: "only GET and HEAD are served",
                    }
                }
            };
            let target = request.path.unwrap_or_default();
            let path = target.split('?').next().unwrap_or_default();
            Head::Request { method, path }
        }
    }
}

/// Why a head that announces a body is refused (bodies are never read).
fn body_refused(headers: &[httparse::Header<'_>]) -> Option<Head<'static>> {
    for h in headers {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Some(Head::Refused {
                status: Status::BadRequest,
                why: "request bodies are not accepted (Transfer-Encoding)",
            });
        }
        if h.name.eq_ignore_ascii_case("content-length") {
            let value = h.value.trim_ascii();
            if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
                return Some(Head::Refused {
                    status: Status::BadRequest,
                    why: "the Content-Length is not a number",
                });
            }
            if value.iter().any(|&d| d != b'0') {
                return Some(Head::Refused {
                    status: Status::PayloadTooLarge,
                    why: "request bodies are not accepted (Content-Length above 0)",
                });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;

    fn status(head: Head<'_>) -> Option<u16> {
        match head {
            Head::Refused { status, .. } => Some(status.code()),
            _ => None,
        }
    }

    #[test]
    fn a_scrape_is_a_request() {
        let head = b"GET /metrics?x=1 HTTP/1.1\r\nHost: [::1]:9640\r\nAccept: */*\r\n\r\n";
        assert_eq!(
            parse_head(head),
            Head::Request {
                method: Method::Get,
                path: "/metrics"
            }
        );
        let head = b"HEAD / HTTP/1.0\r\n\r\nGET /more HTTP/1.1\r\n\r\n";
        assert_eq!(
            parse_head(head),
            Head::Request {
                method: Method::Head,
                path: "/"
            }
        );
    }

    #[test]
    fn every_prefix_is_partial() {
        let head = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
        for n in 0..head.len() {
            assert_eq!(parse_head(&head[..n]), Head::Partial, "{n}");
        }
    }

    #[test]
    fn bodies_are_refused_without_reading_them() {
        let huge = b"GET /metrics HTTP/1.1\r\nContent-Length: 1000000000000\r\n\r\n";
        assert_eq!(status(parse_head(huge)), Some(413));
        let past_u64 = b"GET / HTTP/1.1\r\ncontent-length: 99999999999999999999999999\r\n\r\n";
        assert_eq!(status(parse_head(past_u64)), Some(413));
        let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        assert_eq!(status(parse_head(chunked)), Some(400));
        let bad = b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n";
        assert_eq!(status(parse_head(bad)), Some(400));
        let zero = b"GET / HTTP/1.1\r\nContent-Length: 00\r\n\r\n";
        assert!(matches!(parse_head(zero), Head::Request { .. }));
    }

    #[test]
    fn heads_are_capped() {
        let mut long = b"GET / HTTP/1.1\r\nX: ".to_vec();
        long.resize(64 << 20, b'a');
        assert_eq!(status(parse_head(&long)), Some(431));
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..40 {
            many.extend_from_slice(format!("H{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(status(parse_head(&many)), Some(431));
    }

    #[test]
    fn other_methods_and_garbage_are_refused() {
        assert_eq!(
            status(parse_head(b"DELETE /metrics HTTP/1.1\r\n\r\n")),
            Some(405)
        );
        assert_eq!(status(parse_head(b"\x16\x03\x01\x02\x00\x01")), Some(400));
        assert_eq!(status(parse_head(b"GET / HTTP/2.0\r\n\r\n")), Some(400));
    }
}
