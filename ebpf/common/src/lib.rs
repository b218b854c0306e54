//! Map keys and values shared by shoal's eBPF programs (`ebpf/programs`) and
//! the agent's data-plane module.
//!
//! Every type is `#[repr(C)]`, `Copy`, has its padding spelled out, and has a
//! `const` size assertion, so the kernel and user-space views cannot drift.
//! Fields in network byte order carry a `_be` suffix. With the `user` feature
//! the value types implement `aya::Pod`.
#![no_std]

/// Names of the maps the programs declare with `pinning = by-name`; the agent
/// pins each under `/sys/fs/bpf/shoal/<node-id>/<name>` and reuses the pin on
/// restart, so counters survive an agent restart.
pub mod map_names {
    /// `PerCpuArray<PacketCount>`, indexed by [`super::protocol_slot`].
    pub const PROTOCOL_COUNTERS: &str = "PROTOCOL_COUNTERS";
    /// `PerCpuArray<u64>`, indexed by [`super::verdict_slot`].
    pub const VERDICT_COUNTERS: &str = "VERDICT_COUNTERS";
    /// Every pinned map, for pinning, reuse and removal.
    pub const PINNED: [&str; 2] = [PROTOCOL_COUNTERS, VERDICT_COUNTERS];
}

/// Names of the program functions in the eBPF object.
pub mod program_names {
    /// XDP on the node's underlay interface (ingress).
    pub const XDP_UNDERLAY: &str = "xdp_underlay";
    /// tc (clsact/TCX) egress on the node's underlay interface.
    pub const TC_UNDERLAY_EGRESS: &str = "tc_underlay_egress";
}

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

/// Result of classifying the start of an Ethernet frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Classified {
    /// An IP packet carrying this protocol / next header.
    Ip {
        /// IPv4 protocol or IPv6 next-header number.
        protocol: u8,
    },
    /// Anything else: the verdict says what to do.
    Other(Verdict),
}

/// EtherType of IPv4, host byte order.
pub const ETH_P_IP: u16 = 0x0800;
/// EtherType of IPv6, host byte order.
pub const ETH_P_IPV6: u16 = 0x86DD;
/// Length of an Ethernet header without VLAN tags.
pub const ETH_HDR_LEN: usize = 14;
/// Length of an IPv4 header without options.
pub const IPV4_MIN_HDR_LEN: usize = 20;
/// Length of the fixed IPv6 header.
pub const IPV6_HDR_LEN: usize = 40;

/// Classifies a frame from the bytes a hook could read.
///
/// `frame_len` is the whole frame's length; `ethertype` is host byte order;
/// `ip_first_byte` and `ip_next` are the IP header's first byte (version and
/// IHL) and its protocol/next-header byte, when the frame is long enough to
/// hold them. Pure and shared so that the XDP and tc hooks and the unit tests
/// agree on the rules.
#[must_use]
pub const fn classify(
    frame_len: usize,
    ethertype: u16,
    ip_first_byte: u8,
    ip_next: u8,
) -> Classified {
    if frame_len < ETH_HDR_LEN {
        return Classified::Other(Verdict::DropShortFrame);
    }
    let l3_len = frame_len - ETH_HDR_LEN;
    match ethertype {
        ETH_P_IP => {
            if l3_len < IPV4_MIN_HDR_LEN || ip_first_byte >> 4 != 4 || ip_first_byte & 0x0f < 5 {
                Classified::Other(Verdict::DropBadIpHeader)
            } else {
                Classified::Ip { protocol: ip_next }
            }
        }
        ETH_P_IPV6 => {
            if l3_len < IPV6_HDR_LEN || ip_first_byte >> 4 != 6 {
                Classified::Other(Verdict::DropBadIpHeader)
            } else {
                Classified::Ip { protocol: ip_next }
            }
        }
        _ => Classified::Other(Verdict::PassNotIp),
    }
}

/// Offset of the protocol / next-header byte from the start of the IP header.
#[must_use]
pub const fn ip_next_offset(ethertype: u16) -> usize {
    if ethertype == ETH_P_IPV6 { 6 } else { 9 }
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

    #[test]
    fn classify_rules() {
        // Runt frame.
        assert_eq!(
            classify(13, 0, 0, 0),
            Classified::Other(Verdict::DropShortFrame)
        );
        // ARP passes unparsed.
        assert_eq!(
            classify(42, 0x0806, 0, 0),
            Classified::Other(Verdict::PassNotIp)
        );
        // IPv4 UDP.
        assert_eq!(
            classify(60, ETH_P_IP, 0x45, 17),
            Classified::Ip { protocol: 17 }
        );
        // IPv4 truncated header, bad IHL, wrong version.
        assert_eq!(
            classify(30, ETH_P_IP, 0x45, 17),
            Classified::Other(Verdict::DropBadIpHeader)
        );
        assert_eq!(
            classify(60, ETH_P_IP, 0x44, 17),
            Classified::Other(Verdict::DropBadIpHeader)
        );
        assert_eq!(
            classify(60, ETH_P_IP, 0x65, 17),
            Classified::Other(Verdict::DropBadIpHeader)
        );
        // IPv6 TCP and a truncated IPv6 header.
        assert_eq!(
            classify(74, ETH_P_IPV6, 0x60, 6),
            Classified::Ip { protocol: 6 }
        );
        assert_eq!(
            classify(50, ETH_P_IPV6, 0x60, 6),
            Classified::Other(Verdict::DropBadIpHeader)
        );
        assert_eq!(ip_next_offset(ETH_P_IPV6), 6);
        assert_eq!(ip_next_offset(ETH_P_IP), 9);
    }
}
