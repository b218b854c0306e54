//! Service VIPs translated once per connection at the socket (DESIGN §5,
//! data path 4; cilium's `bpf_sock.c`): four `cgroup_sock_addr` programs
//! the agent attaches to every task's cgroup (v2).
//!
//! - `connect4` (TCP and UDP `connect()`) and `sendmsg4` (UDP `sendmsg()`
//!   with a destination): a destination that is a service VIP
//!   (`SOCK_SERVICES`) gets a backend from the VIP's Maglev table in
//!   `OVERLAY_MAGLEV`, the very table the tc path reads, at
//!   [`socket_hash`] (the socket's cookie stands for the source address
//!   and port, not chosen yet); the address becomes the backend's (the port
//!   is kept: a VIP balances every port), and `SOCK_REVERSE` remembers the
//!   VIP under (cookie, backend, port). The kernel then connects to the
//!   backend itself: every packet of the flow carries the backend's
//!   address, so the tc programs forward it like any task-to-task packet,
//!   with no conntrack entry and no rewrite per packet. A VIP whose table
//!   has no backend fails the call with `ECONNREFUSED`, set with
//!   `bpf_set_retval` (the program returns 0, "reject", which alone would
//!   be `EPERM`); cilium fails it likewise (`EHOSTUNREACH` there).
//! - `recvmsg4` (UDP source address) and `getpeername4`: a backend's
//!   address on a socket translated to it shows as the VIP. An entry whose
//!   VIP has left `SOCK_SERVICES` is stale: removed, the address shown as
//!   it is.
//!
//! Which network's VIPs apply: `SOCK_SERVICES` is keyed by the VIP's
//! address alone and holds every VIP the node balances, as
//! `OVERLAY_SERVICES` does per network. The managers never let two
//! networks' subnets overlap, so an address names one network. A task
//! that is not on that network connects to a backend it has no route to
//! over its own networks, and the tc path drops that packet (no endpoint
//! under its interface's VNI), as it dropped the VIP before: isolation
//! stays where it was, in the per-VNI endpoint lookup.
//!
//! What stays with the tc path ([`crate::service`]): ICMP and every other
//! protocol to a VIP (neither hook sees them; the tc path counts them as
//! `drop_vip_protocol`), raw and packet sockets, sockets of processes
//! outside the task's cgroup, tasks whose cgroup has none of these
//! programs (no cgroup v2 hierarchy on the node, or a socket connected
//! before they were attached), and the replies of the flows it balances.

use aya_ebpf::{
    EbpfContext as _,
    bindings::bpf_sock_addr,
    helpers::{bpf_get_socket_cookie, bpf_set_retval},
    macros::{cgroup_sock_addr, map},
    maps::{HashMap, LruHashMap},
    programs::SockAddrContext,
};
use shoal_ebpf_common::{
    Hook, OVERLAY_MAX_SERVICES, Reason, SOCK_MAX_REVERSE, SockReverseKey, socket_hash,
};

use crate::{counters::count, service::maglev_backend};

#[map]
static SOCK_SERVICES: HashMap<u32, u32> = HashMap::pinned(OVERLAY_MAX_SERVICES, 0);

#[map]
static SOCK_REVERSE: LruHashMap<SockReverseKey, u32> = LruHashMap::pinned(SOCK_MAX_REVERSE, 0);

/// A cgroup hook's "let the call proceed".
const SYS_PROCEED: i32 = 1;
/// A cgroup hook's "fail the call" (with the errno set by `bpf_set_retval`).
const SYS_REJECT: i32 = 0;
const IPPROTO_TCP: u32 = 6;
const IPPROTO_UDP: u32 = 17;
const ECONNREFUSED: i32 = 111;
const ENOMEM: i32 = 12;

/// Translates a `connect()` to a VIP.
#[cgroup_sock_addr(connect4)]
pub fn sock_lb_connect4(ctx: SockAddrContext) -> i32 {
    forward(&ctx, Hook::SockConnect4)
}

/// Translates an unconnected UDP datagram to a VIP.
#[cgroup_sock_addr(sendmsg4)]
pub fn sock_lb_sendmsg4(ctx: SockAddrContext) -> i32 {
    forward(&ctx, Hook::SockSendmsg4)
}

/// Shows a translated socket's backend as the VIP in `recvmsg()`.
#[cgroup_sock_addr(recvmsg4)]
pub fn sock_lb_recvmsg4(ctx: SockAddrContext) -> i32 {
    reverse(&ctx, Hook::SockRecvmsg4)
}

/// Shows a translated socket's backend as the VIP in `getpeername()`.
#[cgroup_sock_addr(getpeername4)]
pub fn sock_lb_getpeername4(ctx: SockAddrContext) -> i32 {
    reverse(&ctx, Hook::SockGetpeername4)
}

/// The destination (connect, sendmsg) or peer (recvmsg, getpeername)
/// address and port of the call, network byte order. Read whole and
/// volatile: the context allows 4-byte accesses to these fields, which the
/// compiler could otherwise narrow.
#[inline(always)]
fn address(ctx: &SockAddrContext) -> (u32, u16) {
    let addr: *const bpf_sock_addr = ctx.sock_addr;
    // SAFETY: the kernel's context pointer, valid for the program's run.
    let (ip_be, port) = unsafe {
        (
            core::ptr::read_volatile(&raw const (*addr).user_ip4),
            core::ptr::read_volatile(&raw const (*addr).user_port),
        )
    };
    // The port sits in the field's first two bytes, as in `sin_port`.
    #[expect(clippy::cast_possible_truncation, reason = "a 16-bit port")]
    (ip_be, port as u16)
}

/// Replaces the call's address (the port stays).
#[inline(always)]
fn set_address(ctx: &SockAddrContext, ip_be: u32) {
    // SAFETY: as in `address`; the hooks may write `user_ip4`.
    unsafe { core::ptr::write_volatile(&raw mut (*ctx.sock_addr).user_ip4, ip_be) };
}

/// The socket's cookie.
#[inline(always)]
fn cookie(ctx: &SockAddrContext) -> u64 {
    // SAFETY: the helper only reads the socket behind the context.
    unsafe { bpf_get_socket_cookie(ctx.as_ptr()) }
}

/// Runs [`try_forward`] and counts its verdict; a refusal fails the call
/// with its errno.
#[inline(always)]
fn forward(ctx: &SockAddrContext, hook: Hook) -> i32 {
    match try_forward(ctx) {
        Ok(verdict) => {
            count(hook, verdict);
            SYS_PROCEED
        }
        Err((verdict, errno)) => {
            count(hook, verdict);
            // SAFETY: plain helper call; allowed on connect4 and sendmsg4.
            unsafe { bpf_set_retval(-errno) };
            SYS_REJECT
        }
    }
}

/// A TCP or UDP destination that is a VIP becomes a backend of its
/// Maglev table, remembered in `SOCK_REVERSE`. Errors: the verdict and
/// errno to fail the call with.
#[inline(always)]
fn try_forward(ctx: &SockAddrContext) -> Result<Reason, (Reason, i32)> {
    // SAFETY: as in `address`.
    let protocol = unsafe { core::ptr::read_volatile(&raw const (*ctx.sock_addr).protocol) };
    if protocol != IPPROTO_TCP && protocol != IPPROTO_UDP {
        return Ok(Reason::PassNotService);
    }
    let (vip_be, port_be) = address(ctx);
    let Some(slot) = SOCK_SERVICES.get_ptr(&vip_be) else {
        return Ok(Reason::PassNotService);
    };
    // SAFETY: copied out at once; a concurrent update may replace it but
    // not fault.
    let slot = unsafe { *slot };
    let cookie = cookie(ctx);
    #[expect(clippy::cast_possible_truncation, reason = "6 or 17")]
    let hash = socket_hash(cookie, vip_be, port_be, protocol as u8);
    let backend_be = maglev_backend(slot, hash).ok_or((Reason::DropNoBackend, ECONNREFUSED))?;
    let key = SockReverseKey {
        cookie,
        backend_be,
        port_be,
        _pad: [0; 2],
    };
    SOCK_REVERSE
        .insert(&key, &vip_be, 0)
        .map_err(|_| (Reason::DropHelperFailed, ENOMEM))?;
    set_address(ctx, backend_be);
    Ok(Reason::Translated)
}

/// Puts the VIP back in place of the backend a socket was translated to.
/// Always lets the call proceed (the only value these hooks may return).
#[inline(always)]
fn reverse(ctx: &SockAddrContext, hook: Hook) -> i32 {
    let (backend_be, port_be) = address(ctx);
    let key = SockReverseKey {
        cookie: cookie(ctx),
        backend_be,
        port_be,
        _pad: [0; 2],
    };
    let verdict = match SOCK_REVERSE.get_ptr(&key) {
        None => Reason::PassNotService,
        Some(vip) => {
            // SAFETY: as in `try_forward`.
            let vip_be = unsafe { *vip };
            if SOCK_SERVICES.get_ptr(&vip_be).is_some() {
                set_address(ctx, vip_be);
                Reason::Reversed
            } else {
                let _ = SOCK_REVERSE.remove(&key);
                Reason::StaleReverse
            }
        }
    };
    count(hook, verdict);
    SYS_PROCEED
}
