//! What the underlay hooks (`xdp_underlay`, `tc_underlay_egress`) count
//! besides their [`crate::Reason`]s: packets and bytes per [`Direction`]
//! and IP protocol ([`PacketCount`] in `PROTOCOL_COUNTERS`).

use crate::Hook;

/// Where a packet was seen, by which underlay hook ([`Direction::hook`]).
/// Each counts into its own range of `PROTOCOL_COUNTERS` slots.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Received on the underlay interface (XDP).
    UnderlayIngress = 0,
    /// Sent on the underlay interface (tc egress).
    UnderlayEgress = 1,
}

impl Direction {
    /// Every direction, in slot order.
    pub const ALL: [Self; 2] = [Self::UnderlayIngress, Self::UnderlayEgress];

    /// The hook that counts this direction.
    #[must_use]
    pub const fn hook(self) -> Hook {
        match self {
            Self::UnderlayIngress => Hook::XdpUnderlay,
            Self::UnderlayEgress => Hook::TcUnderlayEgress,
        }
    }
}

/// Number of [`Direction`]s.
#[expect(clippy::cast_possible_truncation, reason = "a handful of directions")]
pub const DIRECTIONS: u32 = Direction::ALL.len() as u32;

/// Per-protocol counter, one per (direction, IP protocol number) slot and CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketCount {
    /// Packets seen.
    pub packets: u64,
    /// Bytes seen, counting from the Ethernet header.
    pub bytes: u64,
}

const _: () = assert!(core::mem::size_of::<PacketCount>() == 16);

/// IP protocol numbers are one byte: 256 slots per direction.
pub const PROTOCOLS_PER_DIRECTION: u32 = 256;

/// Size of the `PROTOCOL_COUNTERS` array.
pub const PROTOCOL_COUNTER_SLOTS: u32 = DIRECTIONS * PROTOCOLS_PER_DIRECTION;

/// Index into `PROTOCOL_COUNTERS` for an IPv4 protocol or IPv6 next header.
#[must_use]
pub const fn protocol_slot(direction: Direction, protocol: u8) -> u32 {
    direction as u32 * PROTOCOLS_PER_DIRECTION + protocol as u32
}

#[cfg(feature = "user")]
// SAFETY: `PacketCount` is `#[repr(C)]`, `Copy`, has no padding (two u64s),
// and every bit pattern is valid.
unsafe impl aya::Pod for PacketCount {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_do_not_overlap_between_directions() {
        assert_eq!(protocol_slot(Direction::UnderlayIngress, 255), 255);
        assert_eq!(protocol_slot(Direction::UnderlayEgress, 0), 256);
        assert_eq!(
            protocol_slot(Direction::UnderlayEgress, 255),
            PROTOCOL_COUNTER_SLOTS - 1
        );
        assert_eq!(Direction::UnderlayIngress.hook(), Hook::XdpUnderlay);
        assert_eq!(Direction::UnderlayEgress.hook(), Hook::TcUnderlayEgress);
    }

    #[test]
    fn layouts_are_fixed() {
        assert_eq!(core::mem::size_of::<PacketCount>(), 16);
        assert_eq!(core::mem::align_of::<PacketCount>(), 8);
        assert_eq!(core::mem::size_of::<Direction>(), 4);
    }

    #[test]
    fn direction_order_matches_discriminants() {
        for (i, d) in Direction::ALL.iter().enumerate() {
            assert_eq!(*d as usize, i);
        }
    }
}
