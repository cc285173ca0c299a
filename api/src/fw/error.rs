//! [`FwError`]: one error type for the whole API, each variant an HRESULT of
//! Netfwv6.h.
//!
//! A variant carries a message for a person (what happened and what to do);
//! [`FwError::hresult`] gives the numeric code a script or a COM-minded caller
//! checks. `Display` prints the message followed by the code's name and value,
//! e.g. `port 0 is not valid: ports are 1-65535 (E_INVALIDARG 0x80070057)`.

use std::fmt;
use std::path::Path;

use v6fw_engine::PolicyError;

/// `E_INVALIDARG`: one of the arguments is not valid.
pub const E_INVALIDARG: u32 = 0x8007_0057;
/// `E_ACCESSDENIED`: the caller may not do this.
pub const E_ACCESSDENIED: u32 = 0x8007_0005;
/// `E_OUTOFMEMORY`: out of memory or another resource.
pub const E_OUTOFMEMORY: u32 = 0x8007_000E;
/// `E_FAIL`: the operation failed.
pub const E_FAIL: u32 = 0x8000_4005;
/// `E_ABORT`: the operation was aborted.
pub const E_ABORT: u32 = 0x8000_4004;
/// `E_NOTIMPL`: not implemented (on this platform).
pub const E_NOTIMPL: u32 = 0x8000_4001;
/// `E_POINTER`: a required value was missing.
pub const E_POINTER: u32 = 0x8000_4003;
/// `E_NOINTERFACE`: the peer does not speak this interface or protocol.
pub const E_NOINTERFACE: u32 = 0x8000_4002;
/// `E_UNEXPECTED`: something that should not happen happened.
pub const E_UNEXPECTED: u32 = 0x8000_FFFF;

/// Why an API call failed. Each variant is one HRESULT; its `String` says what
/// happened and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FwError {
    /// `E_INVALIDARG` (0x80070057): an argument is not valid.
    InvalidArg(String),
    /// `E_ACCESSDENIED` (0x80070005): changing the policy needs root.
    AccessDenied(String),
    /// `E_OUTOFMEMORY` (0x8007000E): out of memory or of another resource.
    OutOfMemory(String),
    /// `E_FAIL` (0x80004005): the operation failed (I/O, a corrupt file, ...).
    Fail(String),
    /// `E_ABORT` (0x80004004): the operation was aborted (timeout, shutdown).
    Abort(String),
    /// `E_NOTIMPL` (0x80004001): not implemented on this platform.
    NotImpl(String),
    /// `E_POINTER` (0x80004003): a required value is missing.
    Pointer(String),
    /// `E_NOINTERFACE` (0x80004002): the peer does not speak this protocol.
    NoInterface(String),
    /// `E_UNEXPECTED` (0x8000FFFF): an internal error.
    Unexpected(String),
}

impl FwError {
    /// The HRESULT, e.g. `0x80070057` for [`FwError::InvalidArg`].
    pub const fn hresult(&self) -> u32 {
        match self {
            Self::InvalidArg(_) => E_INVALIDARG,
            Self::AccessDenied(_) => E_ACCESSDENIED,
            Self::OutOfMemory(_) => E_OUTOFMEMORY,
            Self::Fail(_) => E_FAIL,
            Self::Abort(_) => E_ABORT,
            Self::NotImpl(_) => E_NOTIMPL,
            Self::Pointer(_) => E_POINTER,
            Self::NoInterface(_) => E_NOINTERFACE,
            Self::Unexpected(_) => E_UNEXPECTED,
        }
    }

    /// The HRESULT's symbolic name, e.g. `E_INVALIDARG`.
    pub const fn code_name(&self) -> &'static str {
        match self {
            Self::InvalidArg(_) => "E_INVALIDARG",
            Self::AccessDenied(_) => "E_ACCESSDENIED",
            Self::OutOfMemory(_) => "E_OUTOFMEMORY",
            Self::Fail(_) => "E_FAIL",
            Self::Abort(_) => "E_ABORT",
            Self::NotImpl(_) => "E_NOTIMPL",
            Self::Pointer(_) => "E_POINTER",
            Self::NoInterface(_) => "E_NOINTERFACE",
            Self::Unexpected(_) => "E_UNEXPECTED",
        }
    }

    /// The message without the code.
    pub fn message(&self) -> &str {
        match self {
            Self::InvalidArg(m)
            | Self::AccessDenied(m)
            | Self::OutOfMemory(m)
            | Self::Fail(m)
            | Self::Abort(m)
            | Self::NotImpl(m)
            | Self::Pointer(m)
            | Self::NoInterface(m)
            | Self::Unexpected(m) => m,
        }
    }

    /// Rebuilds an error from an HRESULT and a message (as a control-socket
    /// reply carries them). An HRESULT outside the list is `E_FAIL`.
    pub fn from_hresult(hresult: u32, message: impl Into<String>) -> Self {
        let m = message.into();
        match hresult {
            E_INVALIDARG => Self::InvalidArg(m),
            E_ACCESSDENIED => Self::AccessDenied(m),
            E_OUTOFMEMORY => Self::OutOfMemory(m),
            E_ABORT => Self::Abort(m),
            E_NOTIMPL => Self::NotImpl(m),
            E_POINTER => Self::Pointer(m),
            E_NOINTERFACE => Self::NoInterface(m),
            E_UNEXPECTED => Self::Unexpected(m),
            _ => Self::Fail(m),
        }
    }

    /// The standard refusal of a change by someone who is not root.
    pub fn needs_root() -> Self {
        Self::AccessDenied("changing the policy needs root: run with sudo".to_string())
    }

    /// An I/O error on `path` while doing `what`, mapped to an HRESULT:
    /// permission problems are `E_ACCESSDENIED`, a full disk `E_OUTOFMEMORY`,
    /// the rest `E_FAIL`.
    pub fn io(what: &str, path: &Path, err: &std::io::Error) -> Self {
        let place = path.display();
        match err.kind() {
            std::io::ErrorKind::PermissionDenied => Self::AccessDenied(format!(
                "cannot {what} {place}: {err}; changing the policy needs root: run with sudo"
            )),
            std::io::ErrorKind::OutOfMemory | std::io::ErrorKind::StorageFull => Self::OutOfMemory(
                format!("cannot {what} {place}: {err}; free some space and try again"),
            ),
            _ => Self::Fail(format!(
                "cannot {what} {place}: {err}; check the path and its permissions"
            )),
        }
    }
}

impl fmt::Display for FwError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} 0x{:08X})",
            self.message(),
            self.code_name(),
            self.hresult()
        )
    }
}

impl std::error::Error for FwError {}

impl From<PolicyError> for FwError {
    /// Every policy error is an invalid argument; the engine's message
    /// already says what to do.
    fn from(e: PolicyError) -> Self {
        Self::InvalidArg(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_code() {
        let e = FwError::from(PolicyError::InvalidPort(0));
        assert_eq!(
            e.to_string(),
            "port 0 is not valid: ports are 1-65535 (E_INVALIDARG 0x80070057)"
        );
        assert_eq!(
            FwError::needs_root().to_string(),
            "changing the policy needs root: run with sudo (E_ACCESSDENIED 0x80070005)"
        );
    }

    #[test]
    fn round_trips_through_hresult() {
        for e in [
            FwError::InvalidArg("a".into()),
            FwError::AccessDenied("a".into()),
            FwError::OutOfMemory("a".into()),
            FwError::Fail("a".into()),
            FwError::Abort("a".into()),
            FwError::NotImpl("a".into()),
            FwError::Pointer("a".into()),
            FwError::NoInterface("a".into()),
            FwError::Unexpected("a".into()),
        ] {
            assert_eq!(FwError::from_hresult(e.hresult(), e.message()), e);
        }
    }
}
