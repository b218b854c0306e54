//! Service VIPs translated at the socket (`ebpf/programs/src/sock_lb.rs`):
//! the key of `SOCK_REVERSE` ([`SockReverseKey`]), the hash that picks a
//! connection's backend ([`socket_hash`]) and the `SOCK_LB_COUNTERS` slots
//! ([`SockLbHook`] × [`SockLbVerdict`]).

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

/// The four socket hooks, each a slot range of `SOCK_LB_COUNTERS`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockLbHook {
    /// `cgroup/connect4`: TCP and UDP `connect()`.
    Connect4 = 0,
    /// `cgroup/sendmsg4`: UDP `sendmsg()` with a destination.
    Sendmsg4 = 1,
    /// `cgroup/recvmsg4`: UDP `recvmsg()`'s source address.
    Recvmsg4 = 2,
    /// `cgroup/getpeername4`: `getpeername()`.
    Getpeername4 = 3,
}

impl SockLbHook {
    /// Every hook, in slot order.
    pub const ALL: [Self; 4] = [
        Self::Connect4,
        Self::Sendmsg4,
        Self::Recvmsg4,
        Self::Getpeername4,
    ];

    /// Stable snake-case name used in status output.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Connect4 => "sock_connect4",
            Self::Sendmsg4 => "sock_sendmsg4",
            Self::Recvmsg4 => "sock_recvmsg4",
            Self::Getpeername4 => "sock_getpeername4",
        }
    }
}

/// What a socket hook did with one call.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockLbVerdict {
    /// Not a VIP (or neither TCP nor UDP), or no translation to undo:
    /// left as it was.
    PassNotService = 0,
    /// A VIP's address replaced by a backend's (connect, sendmsg).
    Translated = 1,
    /// A backend's address replaced by the VIP it was chosen for
    /// (recvmsg, getpeername).
    Reversed = 2,
    /// A VIP without a backend: the call fails with `ECONNREFUSED`.
    RefusedNoBackend = 3,
    /// The reverse entry could not be written: the call fails with
    /// `ENOMEM` rather than leave replies from an address the socket
    /// never asked for.
    RefusedReverseFailed = 4,
    /// A reverse entry whose VIP is gone: removed, the address left.
    StaleReverse = 5,
}

impl SockLbVerdict {
    /// Every verdict, in slot order.
    pub const ALL: [Self; 6] = [
        Self::PassNotService,
        Self::Translated,
        Self::Reversed,
        Self::RefusedNoBackend,
        Self::RefusedReverseFailed,
        Self::StaleReverse,
    ];

    /// Stable snake-case name used in status output.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PassNotService => "pass_not_service",
            Self::Translated => "translated",
            Self::Reversed => "reversed",
            Self::RefusedNoBackend => "refused_no_backend",
            Self::RefusedReverseFailed => "refused_reverse_failed",
            Self::StaleReverse => "stale_reverse",
        }
    }
}

/// Number of [`SockLbVerdict`]s per hook.
#[expect(clippy::cast_possible_truncation, reason = "a handful of verdicts")]
pub const SOCK_LB_VERDICTS_PER_HOOK: u32 = SockLbVerdict::ALL.len() as u32;

/// Size of the `SOCK_LB_COUNTERS` array.
#[expect(clippy::cast_possible_truncation, reason = "four hooks")]
pub const SOCK_LB_COUNTER_SLOTS: u32 = SockLbHook::ALL.len() as u32 * SOCK_LB_VERDICTS_PER_HOOK;

/// Index into `SOCK_LB_COUNTERS`.
#[must_use]
pub const fn sock_lb_slot(hook: SockLbHook, verdict: SockLbVerdict) -> u32 {
    hook as u32 * SOCK_LB_VERDICTS_PER_HOOK + verdict as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sock_lb_slots_cover_every_hook_and_verdict_once() {
        for (i, v) in SockLbVerdict::ALL.iter().enumerate() {
            assert_eq!(*v as usize, i);
        }
        for (i, h) in SockLbHook::ALL.iter().enumerate() {
            assert_eq!(*h as usize, i);
        }
        assert_eq!(
            sock_lb_slot(SockLbHook::Getpeername4, SockLbVerdict::StaleReverse),
            SOCK_LB_COUNTER_SLOTS - 1
        );
        assert_eq!(
            sock_lb_slot(SockLbHook::Sendmsg4, SockLbVerdict::PassNotService),
            SOCK_LB_VERDICTS_PER_HOOK
        );
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
