//! Windows WinDivert: the driver diverts every non-loopback IPv6 packet, in
//! both directions, to this process; accepted packets are re-injected,
//! dropped ones simply are not.
//!
//! One `WinDivert` handle per worker. A batch is one `WinDivertRecvEx`
//! (up to [`crate::backend::MAX_BATCH`] packets, concatenated in one buffer
//! with one `WINDIVERT_ADDRESS` each) and one `WinDivertSendEx` of the
//! accepted packets, compacted in place. The address gives the direction
//! (`Outbound` bit) and the interface index (`Network.IfIdx`), which selects
//! the connection. Stopping: `Stopper::stop` calls `WinDivertShutdown`,
//! which makes the blocked receive return so the loop sees its flag.
//!
//! This speaks to `windivert-sys` (the C API) directly rather than the
//! `windivert` crate: that crate's `recv_ex` allocates two vectors per batch
//! and panics (`expect`/`unwrap`) on a packet etherparse cannot slice — the
//! very packets a firewall must be able to drop.
//!
//! Packets in a batch buffer are split by their IPv6 payload length
//! ([`split_batch`]), as `WinDivertHelperParsePacket` does.

use std::ops::Range;

use v6fw_engine::wire::Ipv6Packet;

/// The fixed IPv6 header's length.
const FIXED_LEN: usize = Ipv6Packet::<&[u8]>::HEADER_LEN;

/// Splits a WinDivert batch buffer holding `count` concatenated IPv6
/// packets into their byte ranges, writing them to `out` and returning how
/// many were found. A packet's length is 40 + its payload length, cut at the
/// end of the buffer; a length the header cannot give (payload length 0, too
/// short) takes the rest of the buffer when it is the last packet, or just
/// its fixed header otherwise (it will be `malformed`).
pub fn split_batch(buf: &[u8], count: usize, out: &mut [Range<usize>]) -> usize {
    let mut at = 0usize;
    let mut n = 0usize;
    for (i, slot) in out.iter_mut().enumerate().take(count) {
        let rest = buf.len().saturating_sub(at);
        if rest == 0 {
            break;
        }
        // Under a fixed header's length, every case below takes the rest.
        let declared = buf
            .get(at..)
            .and_then(|b| Ipv6Packet::new_checked(b).ok())
            .map(|ip| ip.payload_len())
            .filter(|&pl| pl > 0)
            .map(|pl| FIXED_LEN + usize::from(pl));
        let last = i + 1 == count;
        let len = match declared {
            Some(l) => l.min(rest),
            None if last => rest,
            None => rest.min(FIXED_LEN),
        };
        *slot = at..at + len;
        at += len;
        n += 1;
    }
    n
}

#[cfg(windows)]
pub use os::{Stopper, WinDivert, WinDivertConfig};

#[cfg(windows)]
mod dll;

#[cfg(windows)]
mod os {
    use std::ops::Range;
    use std::sync::Arc;
    use std::time::Duration;

    use v6fw_engine::{Direction, Verdict};
    use windivert_sys::address::WINDIVERT_ADDRESS;
    use windivert_sys::{WinDivertFlags, WinDivertLayer, WinDivertParam, WinDivertShutdownMode};
    use windows::Win32::Foundation::HANDLE;

    use super::dll::{api, Api};
    use super::split_batch;
    use crate::backend::{Backend, CaptureError, Packet, MAX_BATCH};

    /// `ERROR_NO_DATA`: the handle was shut down.
    const ERROR_NO_DATA: i32 = 232;
    /// `ERROR_INSUFFICIENT_BUFFER`: a packet larger than the buffer was lost.
    const ERROR_INSUFFICIENT_BUFFER: i32 = 122;
    /// `WINDIVERT_MTU_MAX`.
    const MTU_MAX: usize = 65_575;

    /// The filter: IPv6 both ways, loopback excepted (as on Linux).
    pub const FILTER: &std::ffi::CStr = c"ipv6 and not loopback";

    /// How a WinDivert handle is set up.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct WinDivertConfig {
        /// Packets per batch, 1..=255.
        pub batch: usize,
        /// The driver's queue length in packets (32..=16384).
        pub queue_len: u32,
        /// WinDivert priority (0: default).
        pub priority: i16,
    }

    /// Owns a WinDivert handle: closed when the last owner is dropped, so a
    /// [`Stopper`] never calls into a closed (possibly reused) handle.
    struct Owned(HANDLE, &'static Api);

    // SAFETY: a WinDivert HANDLE may be used from any thread.
    unsafe impl Send for Owned {}
    // SAFETY: the WinDivert calls made through `&Owned` are thread-safe.
    unsafe impl Sync for Owned {}

    impl Drop for Owned {
        fn drop(&mut self) {
            // SAFETY: the handle is open and closed exactly once, here.
            unsafe { (self.1.close)(self.0) };
        }
    }

    /// One open WinDivert handle and its batch buffers.
    pub struct WinDivert {
        owned: Arc<Owned>,
        handle: HANDLE,
        api: &'static Api,
        name: String,
        buf: Vec<u8>,
        addrs: Vec<WINDIVERT_ADDRESS>,
        ranges: Vec<Range<usize>>,
        count: usize,
    }

    // SAFETY: a WinDivert HANDLE may be used from any thread (the copy in
    // `handle` is kept open by `owned`); the buffers are owned by this value.
    unsafe impl Send for WinDivert {}

    /// Makes a blocked receive on a handle return, from another thread.
    #[derive(Clone)]
    pub struct Stopper(Arc<Owned>);

    impl Stopper {
        /// Stops receiving and sending on the handle.
        pub fn stop(&self) {
            // SAFETY: `Owned` keeps the handle open for as long as this
            // stopper exists; WinDivertShutdown is thread-safe.
            unsafe { (self.0 .1.shutdown)(self.0 .0, WinDivertShutdownMode::Both) };
        }
    }

    impl WinDivert {
        /// Opens a network-layer handle diverting IPv6 in both directions.
        pub fn open(config: &WinDivertConfig, index: usize) -> Result<Self, CaptureError> {
            let api = api()?;
            // SAFETY: FILTER is a NUL-terminated string that outlives the call.
            let handle = unsafe {
                (api.open)(
                    FILTER.as_ptr(),
                    WinDivertLayer::Network,
                    config.priority,
                    WinDivertFlags::new(),
                )
            };
            if handle.is_invalid() {
                return Err(CaptureError::last_os(
                    "cannot open WinDivert: run as Administrator, with WinDivert.dll and \
                     WinDivert64.sys next to v6fw.exe",
                ));
            }
            let queue_len = u64::from(config.queue_len.clamp(32, 16_384));
            // SAFETY: `handle` is open; the value is within the documented range.
            unsafe { (api.set_param)(handle, WinDivertParam::QueueLength, queue_len) };
            let batch = config.batch.clamp(1, MAX_BATCH);
            Ok(WinDivert {
                owned: Arc::new(Owned(handle, api)),
                handle,
                api,
                name: format!("windivert {index}"),
                buf: vec![0u8; batch * 2048 + MTU_MAX],
                addrs: vec![WINDIVERT_ADDRESS::default(); batch],
                ranges: vec![0..0; batch],
                count: 0,
            })
        }

        /// A way to stop this handle from another thread.
        pub fn stopper(&self) -> Stopper {
            Stopper(Arc::clone(&self.owned))
        }
    }

    impl Backend for WinDivert {
        fn recv_batch(&mut self, _timeout: Duration) -> Result<usize, CaptureError> {
            self.count = 0;
            let mut recv_len = 0u32;
            let addr_size = size_of::<WINDIVERT_ADDRESS>();
            let mut addr_len = u32::try_from(self.addrs.len() * addr_size).unwrap_or(0);
            // SAFETY: `buf` and `addrs` are valid for the byte lengths passed;
            // no OVERLAPPED: the call blocks until packets or a shutdown.
            let ok = unsafe {
                (self.api.recv_ex)(
                    self.handle,
                    self.buf.as_mut_ptr().cast(),
                    u32::try_from(self.buf.len()).unwrap_or(u32::MAX),
                    &mut recv_len,
                    0,
                    self.addrs.as_mut_ptr(),
                    &mut addr_len,
                    std::ptr::null_mut(),
                )
            };
            if !ok.as_bool() {
                let e = std::io::Error::last_os_error();
                return match e.raw_os_error() {
                    Some(ERROR_NO_DATA) => Ok(0),
                    Some(ERROR_INSUFFICIENT_BUFFER) => {
                        tracing::warn!("a packet larger than the receive buffer was lost");
                        Ok(0)
                    }
                    _ => Err(CaptureError::os("WinDivertRecvEx failed", e)),
                };
            }
            let count = (addr_len as usize / addr_size).min(self.addrs.len());
            let len = (recv_len as usize).min(self.buf.len());
            let buf = self.buf.get(..len).unwrap_or(&[]);
            self.count = split_batch(buf, count, &mut self.ranges);
            Ok(self.count)
        }

        fn packet(&self, i: usize) -> Option<Packet<'_>> {
            if i >= self.count {
                return None;
            }
            let addr = self.addrs.get(i)?;
            let bytes = self.buf.get(self.ranges.get(i)?.clone())?;
            // SAFETY: on the network layer the union holds `Network`.
            let if_index = unsafe { addr.union_field.Network.interface_id };
            Some(Packet {
                bytes,
                direction: if addr.outbound() {
                    Direction::Outbound
                } else {
                    Direction::Inbound
                },
                if_index,
                truncated: false,
            })
        }

        fn send_verdicts(&mut self, verdicts: &[Verdict]) -> Result<(), CaptureError> {
            // Compact the accepted packets (and their addresses) to the front,
            // in order; packets only move towards the start, so in place is safe.
            let mut end = 0usize;
            let mut kept = 0usize;
            for (i, v) in verdicts.iter().enumerate().take(self.count) {
                let (Some(r), Verdict::Accept) = (self.ranges.get(i).cloned(), v) else {
                    continue;
                };
                let len = r.len();
                self.buf.copy_within(r, end);
                end += len;
                if let Some(a) = self.addrs.get(i).copied() {
                    if let Some(slot) = self.addrs.get_mut(kept) {
                        *slot = a;
                    }
                }
                kept += 1;
            }
            self.count = 0;
            if kept == 0 {
                return Ok(());
            }
            let addr_bytes = kept * size_of::<WINDIVERT_ADDRESS>();
            // SAFETY: the first `end` bytes of `buf` hold `kept` packets and
            // the first `kept` entries of `addrs` their addresses.
            let ok = unsafe {
                (self.api.send_ex)(
                    self.handle,
                    self.buf.as_ptr().cast(),
                    u32::try_from(end).unwrap_or(u32::MAX),
                    std::ptr::null_mut(),
                    0,
                    self.addrs.as_ptr(),
                    u32::try_from(addr_bytes).unwrap_or(u32::MAX),
                    std::ptr::null_mut(),
                )
            };
            if ok.as_bool() {
                return Ok(());
            }
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(ERROR_NO_DATA) {
                return Ok(()); // shut down meanwhile
            }
            Err(CaptureError::os("WinDivertSendEx failed", e))
        }

        fn name(&self) -> &str {
            &self.name
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]

    use super::*;

    /// An IPv6 packet of `payload` zero bytes (next header 59).
    fn pkt(payload: u16) -> Vec<u8> {
        let mut p = Vec::new();
        etherparse::Ipv6Header {
            payload_length: payload,
            next_header: etherparse::IpNumber(59),
            hop_limit: 64,
            ..Default::default()
        }
        .write(&mut p)
        .unwrap();
        p.resize(p.len() + usize::from(payload), 0);
        p
    }

    #[test]
    fn splits_concatenated_packets() {
        let mut buf = pkt(20);
        buf.extend(pkt(8));
        buf.extend(pkt(0));
        let mut out = vec![0..0; 4];
        assert_eq!(split_batch(&buf, 3, &mut out), 3);
        assert_eq!(out[..3], [0..60, 60..108, 108..148]);
    }

    #[test]
    fn never_reads_past_the_buffer() {
        let mut buf = pkt(100);
        buf.truncate(70);
        let mut out = vec![0..0; 3];
        assert_eq!(split_batch(&buf, 3, &mut out), 1);
        assert_eq!(out[0], 0..70);
        assert_eq!(split_batch(&[], 3, &mut out), 0);
        assert_eq!(split_batch(&[0x60, 0, 0], 2, &mut out), 1);
        assert_eq!(out[0], 0..3);
    }
}
