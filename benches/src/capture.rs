//! IPv6 packets out of pcap and pcapng files, for fuzz seed corpora, read
//! with v6fw's own capture reader ([`v6fw_capture::file`]).

use std::path::Path;

use v6fw_capture::file::CaptureFile;

/// One IPv6 packet taken from a capture.
#[derive(Debug, Clone)]
pub struct Extracted {
    /// The IP packet's bytes (link header removed).
    pub bytes: Vec<u8>,
    /// The capture cut the frame short (captured length < original length).
    pub truncated: bool,
}

/// Every IPv6 packet in a pcap or pcapng file, in order (frames without one
/// are skipped).
pub fn read_ipv6(path: &Path) -> Result<Vec<Extracted>, String> {
    let mut file = CaptureFile::open(path).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while let Some(frame) = file.next_frame() {
        let frame = frame.map_err(|e| e.to_string())?;
        if let Some(ip) = frame.ipv6() {
            out.push(Extracted {
                bytes: ip.to_vec(),
                truncated: frame.truncated,
            });
        }
    }
    Ok(out)
}
