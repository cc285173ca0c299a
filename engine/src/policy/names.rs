//! The one check of the texts a policy holds that someone may later print to
//! a terminal: pair names, connection ids and connection names.
//!
//! A control character in one (`ESC ]0;...BEL` sets root's terminal title,
//! other sequences do worse) would reach whoever runs `v6fw ports list`. So
//! such a text is refused wherever it enters: the control socket (the api
//! crate's manager calls [`check_name`]), a policy file and `v6fw load` (the
//! policy's deserializers below, so `v6fw check` shows the line and column).

use serde::de::Error;
use serde::{Deserialize, Deserializer};

/// The longest name of a pair, in characters.
pub const MAX_NAME_CHARS: usize = 256;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// More than [`MAX_NAME_CHARS`] characters.
    #[error("the name is too long ({0} characters): use at most {MAX_NAME_CHARS}")]
    TooLong(usize),
    /// A control character (newline, tab, escape, ...): the text escaped.
    #[error(
        "the name {0} contains control characters (newline, tab, escape, ...): use plain text"
    )]
    Control(String),
    /// A connection id with a control character, or an empty one: escaped.
    #[error(
        "connection id {0} is not valid: give a non-empty id without control characters (newline, tab, escape, ...)"
    )]
    Id(String),
}

/// `text` with every control character written as an escape (`\u{1b}`),
/// quoted: what may safely be shown on a terminal.
pub fn escaped(text: &str) -> String {
    format!("{text:?}")
}

/// `text` with each control character written as its escape (`\u{1b}`,
/// `\n`) and everything else as it is: for printing text from elsewhere
/// (an interface name, an error that quotes a file) on a terminal.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !has_control(text) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Whether `text` holds a control character.
pub fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

/// Checks the name of a pair or a connection: at most [`MAX_NAME_CHARS`]
/// characters, no control characters.
pub fn check_name(name: &str) -> Result<(), NameError> {
    let n = name.chars().count();
    if n > MAX_NAME_CHARS {
        return Err(NameError::TooLong(n));
    }
    if has_control(name) {
        return Err(NameError::Control(escaped(name)));
    }
    Ok(())
}

/// Checks a connection id: not empty, no control characters.
pub fn check_id(id: &str) -> Result<(), NameError> {
    if id.is_empty() || has_control(id) {
        return Err(NameError::Id(escaped(id)));
    }
    Ok(())
}

/// Deserializes a name and checks it ([`check_name`]).
pub(crate) fn name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    check_name(&s).map_err(D::Error::custom)?;
    Ok(s)
}

/// Deserializes a connection id and checks it ([`check_id`]).
pub(crate) fn id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    check_id(&s).map_err(D::Error::custom)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_long_names_are_refused() {
        assert_eq!(check_name("ssh"), Ok(()));
        assert_eq!(check_name("Zürich ✓"), Ok(()));
        let e = check_name("x\u{1b}]0;pwned\u{7}").unwrap_err();
        assert_eq!(e, NameError::Control("\"x\\u{1b}]0;pwned\\u{7}\"".into()));
        assert!(!e.to_string().contains('\u{1b}'), "{e}");
        assert_eq!(check_name("a\nb").map_err(|e| e.to_string()), Err("the name \"a\\nb\" contains control characters (newline, tab, escape, ...): use plain text".into()));
        assert_eq!(
            check_name(&"x".repeat(MAX_NAME_CHARS + 1)),
            Err(NameError::TooLong(MAX_NAME_CHARS + 1))
        );
        assert!(check_name(&"x".repeat(MAX_NAME_CHARS)).is_ok());
        assert!(check_id("eth0").is_ok());
        assert!(check_id("").is_err());
        assert!(check_id("e\u{9b}1").is_err(), "C1 controls too");
        assert_eq!(escape_controls("a\u{1b}]0;x\u{7}ü"), "a\\u{1b}]0;x\\u{7}ü");
        assert!(matches!(
            escape_controls("plain"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
