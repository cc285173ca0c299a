//! What every command prints the same way: per-reason counts in JSON, errors
//! in JSON (with `--json`), and whether colour may be used.

use std::borrow::Cow;
use std::io::Write;

use v6fw_api::fw::{FwError, E_FAIL, E_INVALIDARG};

/// Per-reason counts as `replay --json`, `run --json` and `stats --json`
/// print them: one object, every reason's name to its count (e.g.
/// `{"established": 2, "malformed": 3, ...}`; as in any JSON object the
/// order of the keys means nothing), so that `jq .reasons.port_closed`
/// reads any of them.
pub fn reason_counts<'a>(
    counts: impl IntoIterator<Item = (&'a str, u64)>,
) -> serde_json::Map<String, serde_json::Value> {
    counts
        .into_iter()
        .map(|(reason, n)| (reason.to_string(), n.into()))
        .collect()
}

/// An error as one JSON object: `{"error": MESSAGE, "code": NAME,
/// "hresult": NUMBER}`. The code is the HRESULT of the API error behind it
/// (`E_INVALIDARG`, `E_ACCESSDENIED`, ...), `E_FAIL` for any other failure.
pub fn error_json(e: &anyhow::Error) -> serde_json::Value {
    let (code, hresult) = e
        .chain()
        .find_map(|c| c.downcast_ref::<FwError>())
        .map_or(("E_FAIL", E_FAIL), |f| (f.code_name(), f.hresult()));
    serde_json::json!({ "error": describe(e), "code": code, "hresult": hresult })
}

/// An error and its causes as one line, `outer: inner: ...`. A cause whose
/// text the error before it already quotes is left out: the libraries' errors
/// keep their [`source`](std::error::Error::source) and also say it in their
/// message (which a control-socket reply or a log line carries alone).
pub fn describe(e: &anyhow::Error) -> String {
    let mut line = String::new();
    let mut last = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !line.is_empty() && last.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
        last = text;
    }
    // An error may quote text from a file or a daemon: never raw controls.
    shown(&line).into_owned()
}

/// A command-line error (unknown option, bad value) as [`error_json`] gives
/// an error: `E_INVALIDARG`, with clap's first paragraph (not its usage
/// and tips).
pub fn usage_error_json(message: &str) -> serde_json::Value {
    let first = message.trim().split("\n\n").next().unwrap_or_default();
    let message = first.trim_start_matches("error: ");
    serde_json::json!({ "error": message, "code": "E_INVALIDARG", "hresult": E_INVALIDARG })
}

/// Writes `v` as one line on stderr; a closed stderr is not an error.
pub fn write_error_json(v: &serde_json::Value) {
    let _ = writeln!(std::io::stderr(), "{v}");
}

/// Whether output to a stream may be coloured: only a terminal, and only
/// when `NO_COLOR` is unset or empty (<https://no-color.org>).
pub fn colour(is_terminal: bool) -> bool {
    is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `text` as it may be printed to a terminal: every control character
/// escaped (`\u{1b}`), the rest as it is. For what comes from elsewhere: an
/// interface name, a name from an older daemon, an error quoting a file
/// (`ESC ]0;...` would otherwise reach the terminal raw).
pub fn shown(text: &str) -> Cow<'_, str> {
    v6fw_engine::policy::escape_controls(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_error_keeps_its_code_under_context() {
        let e = anyhow::Error::new(FwError::InvalidArg("port 0 is not valid".into()))
            .context("cannot open the pair");
        let v = error_json(&e);
        assert_eq!(v["code"], "E_INVALIDARG");
        assert_eq!(v["hresult"], 0x8007_0057u32);
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(
            msg.starts_with("cannot open the pair: port 0 is not valid"),
            "{msg}"
        );
        let v = error_json(&anyhow::anyhow!("the capture is cut"));
        assert_eq!(v["code"], "E_FAIL");
        assert_eq!(v["error"], "the capture is cut");
    }

    #[test]
    fn a_quoted_cause_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e = anyhow::Error::new(FwError::io("read", std::path::Path::new("/p"), io))
            .context("cannot load");
        assert_eq!(
            describe(&e),
            "cannot load: cannot read /p: gone; check the path and its permissions (E_FAIL 0x80004005)"
        );
        let e = anyhow::Error::new(std::io::Error::other("inner")).context("outer");
        assert_eq!(describe(&e), "outer: inner");
    }

    #[test]
    fn usage_errors_are_invalid_arguments() {
        let v = usage_error_json(
            "error: unexpected argument '--x' found\n\nUsage: v6fw replay <CAPTURE>\n",
        );
        assert_eq!(v["error"], "unexpected argument '--x' found");
        assert_eq!(v["code"], "E_INVALIDARG");
    }

    #[test]
    fn reason_counts_are_names_to_counts() {
        let m = reason_counts([("not_ipv6", 1), ("malformed", 3)]);
        assert_eq!(m.len(), 2);
        assert_eq!(m["not_ipv6"], 1);
        assert_eq!(m["malformed"], 3);
    }
}
