//! VXLAN over IPv4 as the programs build and strip it themselves (RFC 7348):
//! the header lengths, the outer source port, and [`vxlan_outer_headers`],
//! the outer IPv4, UDP and VXLAN headers of a tunnelled frame, pure so that
//! the XDP and tc encapsulations and the unit tests build the same bytes.

use crate::{ETH_HDR_LEN, IPV4_MIN_HDR_LEN, ipv4_header_checksum};

/// Length of a UDP header.
pub const UDP_HDR_LEN: usize = 8;
/// Length of a VXLAN header.
pub const VXLAN_HDR_LEN: usize = 8;
/// The outer IPv4 (no options), UDP and VXLAN headers.
pub const VXLAN_OUTER_LEN: usize = IPV4_MIN_HDR_LEN + UDP_HDR_LEN + VXLAN_HDR_LEN;
/// What VXLAN puts in front of an Ethernet frame: an outer Ethernet header
/// and [`VXLAN_OUTER_LEN`] (50 bytes).
pub const VXLAN_ENCAP_LEN: usize = ETH_HDR_LEN + VXLAN_OUTER_LEN;
/// TTL of the outer IPv4 header, as the kernel's VXLAN device uses.
pub const TUNNEL_TTL: u8 = 64;
/// The VXLAN header's flags byte: the I flag (a valid VNI follows).
pub const VXLAN_FLAG_VNI: u8 = 0x08;

/// The outer UDP source port of a flow whose hash is `hash`: one port per
/// flow for ECMP entropy, in 49152–65535 as RFC 7348 recommends.
#[must_use]
pub const fn vxlan_source_port(hash: u32) -> u16 {
    let entropy = (hash & 0x3fff) as u16;
    0xc000 | entropy
}

/// One tunnelled frame's outer headers: from `src_be` to `dst_be` (network
/// byte order), UDP `sport` → `dport` (host order), network `vni`, around
/// an inner Ethernet frame of `inner_len` bytes. The IPv4 header has no
/// options and no DF flag (the stack's VXLAN path may fragment too), TTL
/// [`TUNNEL_TTL`], identification `id` and a valid checksum; the UDP
/// checksum is zero, as RFC 7348 allows over IPv4 (the inner packet keeps
/// its own). `None` when the outer packet would exceed 65535 bytes.
#[must_use]
pub fn vxlan_outer_headers(
    (src_be, dst_be): (u32, u32),
    (sport, dport): (u16, u16),
    vni: u32,
    id: u16,
    inner_len: usize,
) -> Option<[u8; VXLAN_OUTER_LEN]> {
    let Ok(total) = u16::try_from(inner_len + VXLAN_OUTER_LEN) else {
        return None;
    };
    let mut h = [0u8; VXLAN_OUTER_LEN];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h[4..6].copy_from_slice(&id.to_be_bytes());
    h[8] = TUNNEL_TTL;
    h[9] = 17;
    h[12..16].copy_from_slice(&src_be.to_ne_bytes());
    h[16..20].copy_from_slice(&dst_be.to_ne_bytes());
    let mut ip = [0u8; IPV4_MIN_HDR_LEN];
    ip.copy_from_slice(&h[..IPV4_MIN_HDR_LEN]);
    h[10..12].copy_from_slice(&ipv4_header_checksum(&ip).to_be_bytes());
    h[20..22].copy_from_slice(&sport.to_be_bytes());
    h[22..24].copy_from_slice(&dport.to_be_bytes());
    h[24..26].copy_from_slice(&(total - 20).to_be_bytes());
    h[28] = VXLAN_FLAG_VNI;
    h[32..35].copy_from_slice(&vni.to_be_bytes()[1..4]);
    Some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outer_headers_are_a_valid_ipv4_udp_vxlan_stack() {
        let src = u32::from_ne_bytes([198, 18, 0, 1]);
        let dst = u32::from_ne_bytes([198, 18, 0, 2]);
        let h = vxlan_outer_headers((src, dst), (0xc123, 4789), 4097, 7, 114).expect("fits");
        assert_eq!(
            &h[..12],
            &[0x45, 0, 0, 150, 0, 7, 0, 0, 64, 17, h[10], h[11]]
        );
        assert_eq!(&h[12..20], &[198, 18, 0, 1, 198, 18, 0, 2]);
        let mut ip = [0u8; 20];
        ip.copy_from_slice(&h[..20]);
        // A header with its checksum in place sums to zero.
        assert_eq!(ipv4_header_checksum(&ip), 0);
        assert_eq!(&h[20..28], &[0xc1, 0x23, 0x12, 0xb5, 0, 130, 0, 0]);
        assert_eq!(&h[28..36], &[0x08, 0, 0, 0, 0, 0x10, 0x01, 0]);
        assert!(vxlan_outer_headers((src, dst), (1, 2), 1, 0, 65_500).is_none());
    }

    #[test]
    fn source_ports_stay_in_the_dynamic_range() {
        assert_eq!(vxlan_source_port(0), 0xc000);
        assert_eq!(vxlan_source_port(u32::MAX), 0xffff);
        assert_eq!(VXLAN_ENCAP_LEN, 50);
    }
}
