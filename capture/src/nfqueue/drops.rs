//! What the kernel dropped before v6fw saw it: the per-queue counters of
//! `/proc/net/netfilter/nfnetlink_queue`, which belong to the network
//! namespace of the reading process.
//!
//! One line per bound queue, nine numbers: `queue_number peer_portid
//! queue_total copy_mode copy_range queue_dropped user_dropped id_sequence 1`.
//! `queue_dropped` counts packets refused because the queue held
//! `--queue-len` packets already (queue full); `user_dropped` those the
//! kernel could not put into v6fw's netlink socket (socket buffer full).
//! With `--fail-open` the kernel accepts those packets instead and counts
//! neither.

use std::io;

/// Where the kernel shows its queues (of the reader's network namespace).
pub const PROC_PATH: &str = "/proc/net/netfilter/nfnetlink_queue";

/// One queue's line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueDrops {
    /// The queue number.
    pub queue: u16,
    /// The netlink port id of the process bound to it.
    pub peer_portid: u32,
    /// Packets waiting in the queue now.
    pub queue_total: u64,
    /// Dropped because the queue was full (`--queue-len`).
    pub queue_dropped: u64,
    /// Dropped because the netlink socket's buffer was full.
    pub user_dropped: u64,
}

impl QueueDrops {
    /// Both kinds of drop.
    pub fn dropped(&self) -> u64 {
        self.queue_dropped.saturating_add(self.user_dropped)
    }
}

/// Parses the file's text; lines that do not have the nine numbers are
/// skipped (a kernel that adds columns keeps the first ones).
pub fn parse(text: &str) -> Vec<QueueDrops> {
    text.lines()
        .filter_map(|line| {
            let n: Vec<u64> = line
                .split_whitespace()
                .map_while(|w| w.parse().ok())
                .collect();
            let [queue, portid, total, _mode, _range, qd, ud, ..] = n[..] else {
                return None;
            };
            Some(QueueDrops {
                queue: u16::try_from(queue).ok()?,
                peer_portid: u32::try_from(portid).ok()?,
                queue_total: total,
                queue_dropped: qd,
                user_dropped: ud,
            })
        })
        .collect()
}

/// The queues bound in this process's network namespace now. A kernel
/// without the file (no nfnetlink_queue loaded) has no queues: empty.
pub fn read() -> io::Result<Vec<QueueDrops>> {
    match std::fs::read_to_string(PROC_PATH) {
        Ok(text) => Ok(parse(&text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Sums the drops of the queues in `first..=last`.
pub fn total_in(queues: &[QueueDrops], first: u16, last: u16) -> (u64, u64) {
    queues
        .iter()
        .filter(|q| (first..=last).contains(&q.queue))
        .fold((0, 0), |(a, b), q| {
            (
                a.saturating_add(q.queue_dropped),
                b.saturating_add(q.user_dropped),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kernel_format() {
        let text = "    0  12345     3 2   256  76251     7  99001  1\n\
                    \x20   5   4001     0 2   256\n\
                    garbage\n";
        let q = parse(text);
        // Only lines with the counters count.
        assert_eq!(q.len(), 1);
        assert_eq!(
            q.first().copied(),
            Some(QueueDrops {
                queue: 0,
                peer_portid: 12345,
                queue_total: 3,
                queue_dropped: 76251,
                user_dropped: 7,
            })
        );
        assert_eq!(q.first().map(QueueDrops::dropped), Some(76258));
        assert_eq!(total_in(&q, 0, 0), (76251, 7));
        assert_eq!(total_in(&q, 1, 3), (0, 0));
    }
}
