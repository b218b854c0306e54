//! Service VIPs translated at the socket (`ebpf/programs/src/sock_lb.rs`):
//! the key of `SOCK_REVERSE` ([`SockReverseKey`]) and the hash that picks a
//! connection's backend ([`socket_hash`]). The hooks count their calls in
//! `REASON_COUNTERS` like every other hook ([`crate::Hook`]).

use crate::flow_hash;

/// Maximum number of `SOCK_REVERSE` entries (one per socket translated
/// to a backend); the least recently used are evicted first.
pub const SOCK_MAX_REVERSE: u32 = 262_144;

/// Key of `SOCK_REVERSE`: a socket that was translated to a backend, and
/// that backend. The value is the VIP (network byte order) to show in its
/// place; the port is kept, as a VIP balances every port.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SockReverseKey {
    /// The socket's cookie (`bpf_get_socket_cookie`), unique on the host
    /// for the socket's lifetime.
    pub cookie: u64,
    /// The backend's IPv4 address, network byte order.
    pub backend_be: u32,
    /// The port, network byte order.
    pub port_be: u16,
    /// Zero.
    #[expect(
        clippy::pub_underscore_fields,
        reason = "explicit padding, named as the project's conventions ask"
    )]
    pub _pad: [u8; 2],
}

const _: () = assert!(core::mem::size_of::<SockReverseKey>() == 16);

#[cfg(feature = "user")]
// SAFETY: `#[repr(C)]`, `Copy`, padding spelled out as `_pad`; any bits are valid.
unsafe impl aya::Pod for SockReverseKey {}

/// The hash that picks a socket's slot in its VIP's Maglev table: the
/// tc path's [`flow_hash`], with the socket's cookie in place of the
/// source address (its low 32 bits) and source port (the next 16), which
/// the kernel has not chosen yet when `connect()` runs. One socket always
/// gets the same backend; consecutive sockets spread over the table.
#[must_use]
#[expect(
    clippy::cast_possible_truncation,
    reason = "the cookie is cut into the address and port fields on purpose"
)]
pub const fn socket_hash(cookie: u64, vip_be: u32, dport_be: u16, protocol: u8) -> u32 {
    flow_hash(
        cookie as u32,
        vip_be,
        (cookie >> 32) as u16,
        dport_be,
        protocol,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reverse_key_has_its_layout() {
        assert_eq!(core::mem::offset_of!(SockReverseKey, port_be), 12);
    }

    #[test]
    fn socket_hash_spreads_consecutive_cookies_and_is_stable_per_socket() {
        let vip = u32::from_ne_bytes([10, 0, 1, 2]);
        let port = 80_u16.to_be();
        assert_eq!(socket_hash(7, vip, port, 6), socket_hash(7, vip, port, 6));
        assert_ne!(socket_hash(7, vip, port, 6), socket_hash(7, vip, port, 17));
        assert_ne!(
            socket_hash(7, vip, port, 6),
            socket_hash(1 << 40, vip, port, 6)
        );
        // 3000 consecutive cookies over a table of 1021 slots reach most
        // of it, as consecutive source ports do on the tc path.
        let size = crate::OVERLAY_MAGLEV_SIZE;
        let mut seen = [false; crate::OVERLAY_MAGLEV_SIZE as usize];
        for cookie in 4096..7096_u64 {
            seen[(socket_hash(cookie, vip, port, 6) % size) as usize] = true;
        }
        assert!(seen.iter().filter(|&&s| s).count() > 900);
    }
}
