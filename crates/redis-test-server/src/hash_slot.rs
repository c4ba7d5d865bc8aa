//! The Redis Cluster hash slot of a key, computed locally.
//!
//! Tests pick keys by slot (a conversation whose slot lives on a given primary, two keys in the
//! same slot) far more often than they could afford a round trip per key, so the slot is computed
//! here exactly as the cluster specification defines it: CRC16 (XMODEM) of the key, or of its hash
//! tag, modulo 16384. A test checks this against the server's `CLUSTER KEYSLOT`.

/// Number of hash slots in a Redis Cluster.
pub const SLOT_COUNT: u16 = 16384;

/// The hash slot of `key`: CRC16 of the hash tag (the part between the first `{` and the next `}`,
/// when that part is not empty) or of the whole key, modulo 16384.
pub fn key_slot(key: &[u8]) -> u16 {
    crc16_xmodem(hash_tag(key).unwrap_or(key)) % SLOT_COUNT
}

/// The part of `key` that decides its slot, if the key has a non-empty hash tag.
fn hash_tag(key: &[u8]) -> Option<&[u8]> {
    let open = key.iter().position(|&b| b == b'{')?;
    let close = key[open + 1..].iter().position(|&b| b == b'}')?;
    (close > 0).then(|| &key[open + 1..open + 1 + close])
}

/// CRC16-CCITT as the cluster spec uses it: polynomial 0x1021, initial value 0, no reflection.
fn crc16_xmodem(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |crc, &byte| {
        (0..8).fold(crc ^ (u16::from(byte) << 8), |crc, _| {
            if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_matches_the_cluster_spec_reference_value() {
        // The cluster specification gives CRC16("123456789") = 0x31C3.
        assert_eq!(crc16_xmodem(b"123456789"), 0x31C3);
    }

    #[test]
    fn hash_tags_follow_the_spec_rules() {
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(
            key_slot(b"foo{}{bar}"),
            crc16_xmodem(b"foo{}{bar}") % SLOT_COUNT
        );
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
        assert_eq!(key_slot(b"no-tag{"), crc16_xmodem(b"no-tag{") % SLOT_COUNT);
    }
}
