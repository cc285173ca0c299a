//! [`FwError`]: one error type for the whole API, each variant an HRESULT of
//! Netfwv6.h.
//!
//! A variant carries a message for a person (what happened and what to do);
//! [`FwError::hresult`] gives the numeric code a script or a COM-minded caller
//! checks. `Display` prints the message followed by the code's name and value,
//! e.g. `port 0 is not valid: ports are 1-65535 (E_INVALIDARG 0x80070057)`.

use std::io;
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

/// The kind of an [`FwError`]: one HRESULT of Netfwv6.h (winerror.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// `E_INVALIDARG`: an argument is not valid.
    InvalidArg,
    /// `E_ACCESSDENIED`: the caller may not do this.
    AccessDenied,
    /// `E_OUTOFMEMORY`: out of memory or of another resource.
    OutOfMemory,
    /// `E_FAIL`: the operation failed.
    Fail,
    /// `E_ABORT`: the operation was aborted.
    Abort,
    /// `E_NOTIMPL`: not implemented on this platform.
    NotImpl,
    /// `E_POINTER`: a required value is missing.
    Pointer,
    /// `E_NOINTERFACE`: the peer does not speak this protocol.
    NoInterface,
    /// `E_UNEXPECTED`: an internal error.
    Unexpected,
}

impl Code {
    /// Every code, in the order of [`Code`].
    pub const ALL: [Code; 9] = [
        Self::InvalidArg,
        Self::AccessDenied,
        Self::OutOfMemory,
        Self::Fail,
        Self::Abort,
        Self::NotImpl,
        Self::Pointer,
        Self::NoInterface,
        Self::Unexpected,
    ];

    /// The HRESULT table: each code's value and symbolic name, the one
    /// place that pairs them (everything else asks this function).
    const fn row(self) -> (u32, &'static str) {
        match self {
            Self::InvalidArg => (E_INVALIDARG, "E_INVALIDARG"),
            Self::AccessDenied => (E_ACCESSDENIED, "E_ACCESSDENIED"),
            Self::OutOfMemory => (E_OUTOFMEMORY, "E_OUTOFMEMORY"),
            Self::Fail => (E_FAIL, "E_FAIL"),
            Self::Abort => (E_ABORT, "E_ABORT"),
            Self::NotImpl => (E_NOTIMPL, "E_NOTIMPL"),
            Self::Pointer => (E_POINTER, "E_POINTER"),
            Self::NoInterface => (E_NOINTERFACE, "E_NOINTERFACE"),
            Self::Unexpected => (E_UNEXPECTED, "E_UNEXPECTED"),
        }
    }

    /// The HRESULT, e.g. `0x80070057` for [`Code::InvalidArg`].
    pub const fn hresult(self) -> u32 {
        self.row().0
    }

    /// The symbolic name, e.g. `E_INVALIDARG`.
    pub const fn name(self) -> &'static str {
        self.row().1
    }

    /// The code of an HRESULT (as a control-socket reply carries it); one
    /// outside the table is [`Code::Fail`].
    pub fn from_hresult(hresult: u32) -> Self {
        Self::ALL
            .into_iter()
            .find(|c| c.hresult() == hresult)
            .unwrap_or(Self::Fail)
    }

    /// The code of an I/O error: permission problems are `E_ACCESSDENIED`,
    /// a full disk `E_OUTOFMEMORY`, the rest `E_FAIL`.
    pub fn of_io(err: &io::Error) -> Self {
        match err.kind() {
            io::ErrorKind::PermissionDenied => Self::AccessDenied,
            io::ErrorKind::OutOfMemory | io::ErrorKind::StorageFull => Self::OutOfMemory,
            _ => Self::Fail,
        }
    }
}

/// Why an API call failed. Each variant is one HRESULT ([`FwError::code`]);
/// its `String` says what happened and what to do.
#[derive(Debug, thiserror::Error)]
#[error("{} ({} 0x{:08X})", self.message(), self.code_name(), self.hresult())]
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
    /// An error of another layer (an I/O error, the engine's refusal of a
    /// policy), kept as the [`source`](std::error::Error::source), with its
    /// code and a message that says what was being done and what to do.
    Caused {
        /// The HRESULT it maps to.
        code: Code,
        /// What happened and what to do (it quotes the source's text).
        message: String,
        /// The error behind it.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl PartialEq for FwError {
    /// Two errors are equal when their code and message are (the source of
    /// [`FwError::Caused`] is not compared: its text is in the message).
    fn eq(&self, other: &Self) -> bool {
        self.code() == other.code() && self.message() == other.message()
    }
}

impl Eq for FwError {}

impl FwError {
    /// The error of `code` with `message`.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        let m = message.into();
        match code {
            Code::InvalidArg => Self::InvalidArg(m),
            Code::AccessDenied => Self::AccessDenied(m),
            Code::OutOfMemory => Self::OutOfMemory(m),
            Code::Fail => Self::Fail(m),
            Code::Abort => Self::Abort(m),
            Code::NotImpl => Self::NotImpl(m),
            Code::Pointer => Self::Pointer(m),
            Code::NoInterface => Self::NoInterface(m),
            Code::Unexpected => Self::Unexpected(m),
        }
    }

    /// `source` as an error of `code`, its text the message.
    pub fn caused(code: Code, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Caused {
            code,
            message: source.to_string(),
            source: Box::new(source),
        }
    }

    /// This error with `source` kept as its cause (its code and message
    /// unchanged: the message should quote the source).
    pub fn because(self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        let code = self.code();
        let message = match self {
            Self::Caused { message, .. } => message,
            other => other.message().to_string(),
        };
        Self::Caused {
            code,
            message,
            source: Box::new(source),
        }
    }

    /// The HRESULT kind.
    pub const fn code(&self) -> Code {
        match self {
            Self::InvalidArg(_) => Code::InvalidArg,
            Self::AccessDenied(_) => Code::AccessDenied,
            Self::OutOfMemory(_) => Code::OutOfMemory,
            Self::Fail(_) => Code::Fail,
            Self::Abort(_) => Code::Abort,
            Self::NotImpl(_) => Code::NotImpl,
            Self::Pointer(_) => Code::Pointer,
            Self::NoInterface(_) => Code::NoInterface,
            Self::Unexpected(_) => Code::Unexpected,
            Self::Caused { code, .. } => *code,
        }
    }

    /// The HRESULT, e.g. `0x80070057` for [`FwError::InvalidArg`].
    pub const fn hresult(&self) -> u32 {
        self.code().hresult()
    }

    /// The HRESULT's symbolic name, e.g. `E_INVALIDARG`.
    pub const fn code_name(&self) -> &'static str {
        self.code().name()
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
            | Self::Unexpected(m)
            | Self::Caused { message: m, .. } => m,
        }
    }

    /// Rebuilds an error from an HRESULT and a message (as a control-socket
    /// reply carries them). An HRESULT outside the list is `E_FAIL`.
    pub fn from_hresult(hresult: u32, message: impl Into<String>) -> Self {
        Self::new(Code::from_hresult(hresult), message)
    }

    /// The standard refusal of a change by someone who is not root.
    pub fn needs_root() -> Self {
        Self::AccessDenied("changing the policy needs root: run with sudo".to_string())
    }

    /// An I/O error on `path` while doing `what`, of the code
    /// [`Code::of_io`] gives; the message says what to do, and `err` stays
    /// the source.
    pub fn io(what: &str, path: &Path, err: io::Error) -> Self {
        let place = path.display();
        let code = Code::of_io(&err);
        let fix = match code {
            Code::AccessDenied => "changing the policy needs root: run with sudo",
            Code::OutOfMemory => "free some space and try again",
            _ => "check the path and its permissions",
        };
        Self::Caused {
            code,
            message: format!("cannot {what} {place}: {err}; {fix}"),
            source: Box::new(err),
        }
    }
}

impl From<PolicyError> for FwError {
    /// Every policy error is an invalid argument. The engine's message says
    /// what to do, except where the fix is a command of this API's front end
    /// (the engine names none): that hint is added here.
    fn from(e: PolicyError) -> Self {
        let hint = match &e {
            PolicyError::UnknownConnection(_) => ": list them with `v6fw connections`",
            _ => "",
        };
        Self::Caused {
            code: Code::InvalidArg,
            message: format!("{e}{hint}"),
            source: Box::new(e),
        }
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

    #[test]
    fn every_code_has_its_own_hresult() {
        for c in Code::ALL {
            assert_eq!(Code::from_hresult(c.hresult()), c, "{}", c.name());
            assert_eq!(FwError::new(c, "m").code(), c);
        }
        assert_eq!(Code::from_hresult(1), Code::Fail);
    }

    #[test]
    fn causes_are_kept() {
        use std::error::Error as _;
        let io = io::Error::new(io::ErrorKind::PermissionDenied, "denied");
        let e = FwError::io("read", Path::new("/x"), io);
        assert_eq!(e.hresult(), E_ACCESSDENIED);
        assert_eq!(
            e.message(),
            "cannot read /x: denied; changing the policy needs root: run with sudo"
        );
        assert_eq!(
            e.source().map(ToString::to_string).as_deref(),
            Some("denied")
        );
        let e = FwError::from(PolicyError::InvalidPort(0));
        let src = e.source().and_then(|s| s.downcast_ref::<PolicyError>());
        assert_eq!(src, Some(&PolicyError::InvalidPort(0)));
        let e = FwError::from(PolicyError::UnknownConnection("x".into()));
        assert_eq!(
            e.message(),
            "no connection \"x\": list them with `v6fw connections`"
        );
    }
}
