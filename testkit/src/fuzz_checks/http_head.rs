//! Fuzz check `http_head`: arbitrary bytes as what a client sent the
//! `--metrics` endpoint, through [`v6fw_api::http::parse_head`].
//!
//! Invariants: nothing panics; a decision made on a prefix (a request, or a
//! refusal) is the decision on the whole (the server parses what has come so
//! far after each read, so more bytes must never change it); 4 KiB or more is
//! never `Partial` (the head buffer is never grown); an accepted request is
//! `GET` or `HEAD`, its path is part of the input and has no `?`, and its head
//! has no `Transfer-Encoding` and no `Content-Length` above 0, as read by a
//! plain line scan of our own.

use v6fw_api::http::{parse_head, Head, Method, MAX_HEAD_BYTES};

use super::Violation;

/// Runs the check on one input.
pub fn http_head(data: &[u8]) -> Result<(), Violation> {
    let data = data.get(..MAX_HEAD_BYTES + 64).unwrap_or(data);
    let whole = parse_head(data);
    if data.len() >= MAX_HEAD_BYTES && whole == Head::Partial {
        return Err(format!("{} bytes and still Partial", data.len()));
    }
    // Prefixes: every length up to 64, then every 61st, then the last 8.
    let ends = (0..=data.len().min(64))
        .chain((64..data.len()).step_by(61))
        .chain(data.len().saturating_sub(8)..data.len());
    for end in ends {
        let prefix = parse_head(data.get(..end).unwrap_or(data));
        if prefix != Head::Partial && prefix != whole {
            return Err(format!(
                "after {end} bytes: {prefix:?}, after all {}: {whole:?}",
                data.len()
            ));
        }
    }
    if let Head::Request { method, path } = whole {
        // Empty lines before the request line are skipped (RFC 9112 §2.2).
        let start = data.iter().position(|b| !matches!(b, b'\r' | b'\n'));
        let data = data.get(start.unwrap_or(0)..).unwrap_or_default();
        let line_start: &[u8] = match method {
            Method::Get => b"GET ",
            Method::Head => b"HEAD ",
        };
        if !data.starts_with(line_start) {
            return Err(format!("{method:?} accepted from another request line"));
        }
        if path.contains('?') || !contains(data, path.as_bytes()) {
            return Err(format!(
                "path {path:?} is not the input's, without the query"
            ));
        }
        if let Some(body) = announced_body(data) {
            return Err(format!("a request with {body} was accepted"));
        }
    }
    Ok(())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// The header announcing a body in the head at the start of `data`, if
/// any: the lines after the request line up to the first empty one.
fn announced_body(data: &[u8]) -> Option<String> {
    for line in data.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        if name == "transfer-encoding" {
            return Some("Transfer-Encoding".into());
        }
        if name == "content-length" && value.iter().any(|b| (b'1'..=b'9').contains(b)) {
            return Some("a Content-Length above 0".into());
        }
    }
    None
}
