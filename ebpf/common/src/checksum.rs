//! Incremental Internet checksum updates (RFC 1624) for the address and
//! port rewrites of service VIPs and the routing mesh, and the full
//! checksum of the IPv4 headers the tunnels build.

/// Folds a one's-complement sum to 16 bits.
const fn fold(mut sum: u64) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    #[expect(clippy::cast_possible_truncation, reason = "folded to 16 bits")]
    let folded = sum as u16;
    folded
}

/// An Internet checksum after a 32-bit field of the data it covers changed
/// from `old` to `new` (RFC 1624, eqn. 3: `HC' = ~(~HC + ~m + m')`).
/// Byte-order agnostic: pass the checksum and both values as loaded from
/// the packet, and store the result the same way.
#[must_use]
pub const fn csum_replace4(check: u16, old: u32, new: u32) -> u16 {
    let not_old = !old;
    !fold(
        (!check) as u64
            + (not_old >> 16) as u64
            + (not_old & 0xffff) as u64
            + (new >> 16) as u64
            + (new & 0xffff) as u64,
    )
}

/// The checksum of an IPv4 header without options, computed over all its
/// words as they are (the checksum field included: a header whose field
/// holds its checksum gives `0`).
#[must_use]
pub fn ipv4_header_checksum(header: &[u8; 20]) -> u16 {
    let mut sum = 0u64;
    let mut i = 0;
    while i < header.len() {
        sum += u64::from(u16::from_be_bytes([header[i], header[i + 1]]));
        i += 2;
    }
    !fold(sum)
}

/// [`csum_replace4`] for a 16-bit field.
#[must_use]
pub const fn csum_replace2(check: u16, old: u16, new: u16) -> u16 {
    !fold((!check) as u64 + (!old) as u64 + new as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Internet checksum of `words`, computed from scratch.
    fn checksum(words: &[u16]) -> u16 {
        !fold(words.iter().map(|&w| u64::from(w)).sum())
    }

    #[test]
    fn incremental_checksums_match_a_full_recomputation() {
        let mut words = [
            0x4500, 0x003c, 0x1c46, 0x4000, 0x4006, 0, 0xc612, 0x0002, 0xc612, 0x0003,
        ];
        let check = checksum(&words);
        // The destination address (last two words) and then one word change.
        let old = u32::from(words[8]) | (u32::from(words[9]) << 16);
        let new = 0x0a00_0005_u32;
        words[8] = (new & 0xffff) as u16;
        words[9] = (new >> 16) as u16;
        let updated = csum_replace4(check, old, new);
        assert_eq!(updated, checksum(&words));
        let old_word = words[2];
        words[2] = 0xbeef;
        assert_eq!(csum_replace2(updated, old_word, 0xbeef), checksum(&words));
        // Replacing a value by itself changes nothing.
        assert_eq!(csum_replace4(check, 7, 7), check);
    }
}
