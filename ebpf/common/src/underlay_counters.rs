//! What the underlay hooks (`xdp_underlay`, `tc_underlay_egress`) count:
//! packets and bytes per [`Direction`] and IP protocol ([`PacketCount`] in
//! `PROTOCOL_COUNTERS`) and one [`Verdict`] per packet (`VERDICT_COUNTERS`).

/// Where a packet was seen. Each hook counts into its own range of slots.
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

    /// Stable lower-case name used in status output.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::UnderlayIngress => "underlay_ingress",
            Self::UnderlayEgress => "underlay_egress",
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

/// Why a hook let a packet through or dropped it. Counted per direction, so
/// that every packet a hook sees lands in exactly one verdict slot.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// An IPv4 or IPv6 packet, counted by protocol and passed on.
    PassIp = 0,
    /// Not IP (ARP, LLDP, VLAN-tagged …): passed on untouched, not parsed.
    PassNotIp = 1,
    /// Frame shorter than an Ethernet header: dropped.
    DropShortFrame = 2,
    /// EtherType says IPv4/IPv6 but the header is truncated or invalid
    /// (wrong version, IHL below 5): dropped, the kernel would drop it too.
    DropBadIpHeader = 3,
}

impl Verdict {
    /// Every verdict, in slot order.
    pub const ALL: [Self; 4] = [
        Self::PassIp,
        Self::PassNotIp,
        Self::DropShortFrame,
        Self::DropBadIpHeader,
    ];

    /// Stable snake-case name used in status output.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PassIp => "pass_ip",
            Self::PassNotIp => "pass_not_ip",
            Self::DropShortFrame => "drop_short_frame",
            Self::DropBadIpHeader => "drop_bad_ip_header",
        }
    }

    /// Whether the hook drops the packet.
    #[must_use]
    pub const fn is_drop(self) -> bool {
        matches!(self, Self::DropShortFrame | Self::DropBadIpHeader)
    }
}

/// Number of [`Verdict`]s per direction.
#[expect(clippy::cast_possible_truncation, reason = "a handful of verdicts")]
pub const VERDICTS_PER_DIRECTION: u32 = Verdict::ALL.len() as u32;

/// Size of the `VERDICT_COUNTERS` array.
pub const VERDICT_COUNTER_SLOTS: u32 = DIRECTIONS * VERDICTS_PER_DIRECTION;

/// Index into `VERDICT_COUNTERS`.
#[must_use]
pub const fn verdict_slot(direction: Direction, verdict: Verdict) -> u32 {
    direction as u32 * VERDICTS_PER_DIRECTION + verdict as u32
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
        assert_eq!(
            verdict_slot(Direction::UnderlayEgress, Verdict::DropBadIpHeader),
            VERDICT_COUNTER_SLOTS - 1
        );
        assert_eq!(
            verdict_slot(Direction::UnderlayEgress, Verdict::PassIp),
            VERDICTS_PER_DIRECTION
        );
    }

    #[test]
    fn layouts_are_fixed() {
        assert_eq!(core::mem::size_of::<PacketCount>(), 16);
        assert_eq!(core::mem::align_of::<PacketCount>(), 8);
        assert_eq!(core::mem::size_of::<Direction>(), 4);
        assert_eq!(core::mem::size_of::<Verdict>(), 4);
    }

    #[test]
    fn verdict_order_matches_discriminants() {
        for (i, v) in Verdict::ALL.iter().enumerate() {
            assert_eq!(*v as usize, i);
        }
        for (i, d) in Direction::ALL.iter().enumerate() {
            assert_eq!(*d as usize, i);
        }
    }
}
