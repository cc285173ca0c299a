//! The simulator's input: one text file per batch, one packet per line.
//!
//! ```text
//! # comment; blank lines are ignored
//! in  3 6000000000140640fd00...   <- inbound on interface 3, the packet in hex
//! out 3 6000000000140640fd00...   <- outbound, leaving by interface 3
//! ```
//!
//! A line is `in` or `out`, the interface index (`Network.IfIdx`, decimal),
//! and the packet's bytes in hex (from its IPv6 header on; any length, any
//! content: malformed packets are the point). Fields are separated by spaces
//! or tabs.

/// One packet the simulated driver will hand out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimPacket {
    /// Leaving the host (`Outbound` set), or arriving.
    pub outbound: bool,
    /// The interface index reported in `Network.IfIdx`.
    pub if_idx: u32,
    /// The packet, from its IPv6 header on.
    pub bytes: Vec<u8>,
}

/// Parses a batch file's text. An error names the 1-based line and says
/// what is wrong with it.
pub fn parse_batch(text: &str) -> Result<Vec<SimPacket>, String> {
    let mut packets = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |msg: String| format!("line {}: {msg}", n + 1);
        let mut fields = line.split_whitespace();
        let outbound = match fields.next() {
            Some("in") => false,
            Some("out") => true,
            other => {
                return Err(at(format!(
                    "{:?} is not a direction: write `in` or `out`",
                    other.unwrap_or_default()
                )))
            }
        };
        let if_idx = fields
            .next()
            .ok_or_else(|| at("no interface index after the direction".into()))?
            .parse::<u32>()
            .map_err(|e| {
                at(format!(
                    "the interface index is not a number 0-4294967295: {e}"
                ))
            })?;
        let hex = fields
            .next()
            .ok_or_else(|| at("no packet bytes (hex) after the interface index".into()))?;
        if let Some(extra) = fields.next() {
            return Err(at(format!(
                "unexpected {extra:?} after the packet: one packet per line"
            )));
        }
        let bytes = decode_hex(hex).map_err(at)?;
        packets.push(SimPacket {
            outbound,
            if_idx,
            bytes,
        });
    }
    Ok(packets)
}

/// Decodes an even-length string of hex digits.
fn decode_hex(hex: &str) -> Result<Vec<u8>, String> {
    if hex.len() % 2 != 0 {
        return Err(format!(
            "the packet has an odd number of hex digits ({})",
            hex.len()
        ));
    }
    hex.as_bytes()
        .chunks_exact(2)
        .map(|pair| {
            let digit = |c: u8| {
                char::from(c)
                    .to_digit(16)
                    .ok_or_else(|| format!("{:?} is not a hex digit", char::from(c)))
            };
            match pair {
                [hi, lo] => Ok(u8::try_from(digit(*hi)? * 16 + digit(*lo)?).unwrap_or(0)),
                _ => Err("odd hex digit".to_string()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_directions_interfaces_and_bytes() {
        let text = "# a batch\n\nin 3 60000000\n  out\t7\tFFee01  \n";
        let got = parse_batch(text).unwrap();
        assert_eq!(
            got,
            vec![
                SimPacket {
                    outbound: false,
                    if_idx: 3,
                    bytes: vec![0x60, 0, 0, 0]
                },
                SimPacket {
                    outbound: true,
                    if_idx: 7,
                    bytes: vec![0xff, 0xee, 0x01]
                },
            ]
        );
    }

    #[test]
    fn bad_lines_are_errors_with_their_line() {
        for (text, want) in [
            ("sideways 1 60", "line 1: \"sideways\" is not a direction"),
            ("\nin x 60", "line 2: the interface index is not a number"),
            ("in 1", "line 1: no packet bytes"),
            (
                "in 1 6",
                "line 1: the packet has an odd number of hex digits",
            ),
            ("in 1 6g", "line 1: 'g' is not a hex digit"),
            ("in 1 60 61", "line 1: unexpected \"61\""),
        ] {
            let err = parse_batch(text).unwrap_err();
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
    }
}
