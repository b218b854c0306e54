//! Ethernet, IP, TCP/UDP and ARP header constants (every program reads its
//! offsets from here), and the classification of a frame's start that the
//! underlay hooks count by ([`classify`]).

use crate::Reason;

/// Result of classifying the start of an Ethernet frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Classified {
    /// An IP packet carrying this protocol / next header.
    Ip {
        /// IPv4 protocol or IPv6 next-header number.
        protocol: u8,
    },
    /// Anything else: the reason says what to do with it.
    Other(Reason),
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
        return Classified::Other(Reason::DropShortFrame);
    }
    let l3_len = frame_len - ETH_HDR_LEN;
    match ethertype {
        ETH_P_IP => {
            if l3_len < IPV4_MIN_HDR_LEN || ip_first_byte >> 4 != 4 || ip_first_byte & 0x0f < 5 {
                Classified::Other(Reason::DropBadIpHeader)
            } else {
                Classified::Ip { protocol: ip_next }
            }
        }
        ETH_P_IPV6 => {
            if l3_len < IPV6_HDR_LEN || ip_first_byte >> 4 != 6 {
                Classified::Other(Reason::DropBadIpHeader)
            } else {
                Classified::Ip { protocol: ip_next }
            }
        }
        _ => Classified::Other(Reason::PassNotIp),
    }
}

/// Offset of the protocol / next-header byte from the start of the IP header.
#[must_use]
pub const fn ip_next_offset(ethertype: u16) -> usize {
    if ethertype == ETH_P_IPV6 { 6 } else { 9 }
}

/// IP protocol numbers of TCP and UDP.
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
/// Offsets in an Ethernet frame (no VLAN tag) of the IPv4 header's
/// checksum, source and destination.
pub const IPV4_CSUM_OFFSET: usize = ETH_HDR_LEN + 10;
pub const IPV4_SRC_OFFSET: usize = ETH_HDR_LEN + 12;
pub const IPV4_DST_OFFSET: usize = ETH_HDR_LEN + 16;
/// Offsets of the checksum in a TCP and in a UDP header.
pub const TCP_CSUM_OFFSET: usize = 16;
pub const UDP_CSUM_OFFSET: usize = 6;
/// TCP flags byte offset in the TCP header, and its SYN and ACK bits.
pub const TCP_FLAGS_OFFSET: usize = 13;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_ACK: u8 = 0x10;

/// EtherType of ARP, host byte order.
pub const ETH_P_ARP: u16 = 0x0806;
/// Length of an Ethernet/IPv4 ARP packet (RFC 826).
pub const ARP_ETH_IPV4_LEN: usize = 28;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_rules() {
        // Runt frame.
        assert_eq!(
            classify(13, 0, 0, 0),
            Classified::Other(Reason::DropShortFrame)
        );
        // ARP passes unparsed.
        assert_eq!(
            classify(42, 0x0806, 0, 0),
            Classified::Other(Reason::PassNotIp)
        );
        // IPv4 UDP.
        assert_eq!(
            classify(60, ETH_P_IP, 0x45, 17),
            Classified::Ip { protocol: 17 }
        );
        // IPv4 truncated header, bad IHL, wrong version.
        assert_eq!(
            classify(30, ETH_P_IP, 0x45, 17),
            Classified::Other(Reason::DropBadIpHeader)
        );
        assert_eq!(
            classify(60, ETH_P_IP, 0x44, 17),
            Classified::Other(Reason::DropBadIpHeader)
        );
        assert_eq!(
            classify(60, ETH_P_IP, 0x65, 17),
            Classified::Other(Reason::DropBadIpHeader)
        );
        // IPv6 TCP and a truncated IPv6 header.
        assert_eq!(
            classify(74, ETH_P_IPV6, 0x60, 6),
            Classified::Ip { protocol: 6 }
        );
        assert_eq!(
            classify(50, ETH_P_IPV6, 0x60, 6),
            Classified::Other(Reason::DropBadIpHeader)
        );
        assert_eq!(ip_next_offset(ETH_P_IPV6), 6);
        assert_eq!(ip_next_offset(ETH_P_IP), 9);
    }
}
