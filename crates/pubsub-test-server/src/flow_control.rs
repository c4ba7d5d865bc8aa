//! Per-stream flow control, as the service applies it to a StreamingPull stream.
//!
//! The client states `max_outstanding_messages` and `max_outstanding_bytes` in the stream's
//! first request; the service stops sending on that stream while that many messages (or bytes)
//! are delivered and neither acknowledged, nacked nor expired, and resumes as they are. A limit
//! of zero or less means no limit. The library does no flow control of its own (it forwards
//! these numbers), so the fake enforces them exactly: a test can rely on never seeing more than
//! the limit outstanding. One message is always admitted on an empty stream, even if larger than
//! the byte limit, or it could never be delivered.

/// Outstanding messages and bytes on one stream, against the stream's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FlowControl {
    max_messages: i64,
    max_bytes: i64,
    messages: usize,
    bytes: usize,
}

impl FlowControl {
    pub(crate) fn new(max_messages: i64, max_bytes: i64) -> Self {
        Self {
            max_messages,
            max_bytes,
            messages: 0,
            bytes: 0,
        }
    }

    /// Whether one more message of `size` bytes may be sent now.
    pub(crate) fn admits(&self, size: usize) -> bool {
        let messages_fit = self.max_messages <= 0 || (self.messages as i64) < self.max_messages;
        let bytes_fit = self.max_bytes <= 0
            || self.messages == 0
            || (self.bytes.saturating_add(size) as i64) <= self.max_bytes;
        messages_fit && bytes_fit
    }

    pub(crate) fn take(&mut self, size: usize) {
        self.messages += 1;
        self.bytes += size;
    }

    pub(crate) fn release(&mut self, size: usize) {
        self.messages = self.messages.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_limit_holds_back_until_a_release() {
        let mut flow = FlowControl::new(2, 0);
        flow.take(10);
        assert!(flow.admits(10));
        flow.take(10);
        assert!(!flow.admits(1));
        flow.release(10);
        assert!(flow.admits(10));
    }

    #[test]
    fn byte_limit_counts_sizes_but_admits_one_message_on_an_empty_stream() {
        let mut flow = FlowControl::new(0, 100);
        assert!(
            flow.admits(500),
            "an oversized message must still get through alone"
        );
        flow.take(60);
        assert!(flow.admits(40));
        assert!(!flow.admits(41));
        flow.release(60);
        assert!(flow.admits(100));
    }

    #[test]
    fn zero_or_negative_limits_mean_unlimited() {
        let mut flow = FlowControl::new(0, -1);
        for _ in 0..10_000 {
            flow.take(1 << 20);
        }
        assert!(flow.admits(1 << 20));
    }
}
