//! The overlay's maps and the helpers the overlay hooks share (DESIGN §5, data paths 1 and 2): endpoint and
//! interface lookups keyed by VNI, the node's underlay settings, Ethernet
//! rewrites, delivery into a local task with `bpf_redirect_peer`
//! (tunnels are [`crate::vxlan`]'s), and [`finish`], which counts a tc
//! hook's [`Reason`] and returns its action. The agent is the only writer of the
//! maps; every map is pinned by name and survives an agent restart.
//!
//! Frames are read and written with `bpf_skb_load_bytes`/`store_bytes`, which
//! also work on non-linear skbs (a GSO super-packet from a task).

use aya_ebpf::{
    bindings::{TC_ACT_REDIRECT, TC_ACT_SHOT},
    helpers::generated::{bpf_redirect, bpf_redirect_peer},
    macros::map,
    maps::{Array, HashMap},
    programs::TcContext,
};
use shoal_ebpf_common::{
    ETH_HDR_LEN, Hook, IPV4_DST_OFFSET, OVERLAY_MAX_ENDPOINTS, OVERLAY_MAX_INTERFACES,
    OverlayConfig, OverlayEndpoint, OverlayEndpointKey, OverlayInterface, Reason,
};

use crate::counters;

#[map]
static OVERLAY_ENDPOINTS: HashMap<OverlayEndpointKey, OverlayEndpoint> =
    HashMap::pinned(OVERLAY_MAX_ENDPOINTS, 0);

#[map]
static OVERLAY_INTERFACES: HashMap<u32, OverlayInterface> =
    HashMap::pinned(OVERLAY_MAX_INTERFACES, 0);

#[map]
static OVERLAY_CONFIG: Array<OverlayConfig> = Array::pinned(1, 0);

/// What a hook does with a frame it does not drop: the reason to count and
/// the tc action to return.
pub struct Outcome {
    pub reason: Reason,
    pub action: i32,
}

/// Runs a hook's body, counts its reason and returns its tc action; any
/// `Err(reason)` drops the frame (`TC_ACT_SHOT`) and is counted as `reason`.
#[inline(always)]
pub fn finish(hook: Hook, result: Result<Outcome, Reason>) -> i32 {
    let (reason, action) = match result {
        Ok(outcome) => (outcome.reason, outcome.action),
        Err(reason) => (reason, TC_ACT_SHOT as i32),
    };
    counters::count(hook, reason);
    action
}

/// The overlay interface a frame arrived on, if it is one.
#[inline(always)]
pub fn interface(ifindex: u32) -> Option<OverlayInterface> {
    // SAFETY: the pointer comes from the map lookup and the value is copied
    // out at once; a concurrent update may tear it but not fault.
    OVERLAY_INTERFACES.get_ptr(ifindex).map(|p| unsafe { *p })
}

/// The endpoint with IPv4 address `ip_be` in network `vni`.
#[inline(always)]
pub fn endpoint(vni: u32, ip_be: u32) -> Option<OverlayEndpoint> {
    let key = OverlayEndpointKey { vni, ip_be };
    // SAFETY: as in `interface`.
    OVERLAY_ENDPOINTS.get_ptr(&key).map(|p| unsafe { *p })
}

/// The node's underlay and VXLAN settings, once the agent has written them.
#[inline(always)]
pub fn config() -> Option<OverlayConfig> {
    OVERLAY_CONFIG.get(0).copied()
}

/// Reads the IPv4 destination address (network byte order) of an Ethernet
/// frame, after checking that it carries a plausible IPv4 header.
#[inline(always)]
pub fn ipv4_destination(ctx: &TcContext) -> Result<u32, Reason> {
    let version_ihl = ctx
        .load::<u8>(ETH_HDR_LEN)
        .map_err(|_| Reason::DropBadHeader)?;
    if version_ihl >> 4 != 4 || version_ihl & 0x0f < 5 {
        return Err(Reason::DropBadHeader);
    }
    ctx.load::<u32>(IPV4_DST_OFFSET)
        .map_err(|_| Reason::DropBadHeader)
}

/// Writes the Ethernet destination and source addresses.
#[inline(always)]
pub fn set_macs(ctx: &TcContext, dst: [u8; 6], src: [u8; 6]) -> Result<(), Reason> {
    let mut macs = [0u8; 12];
    macs[..6].copy_from_slice(&dst);
    macs[6..].copy_from_slice(&src);
    ctx.store(0, &macs, 0).map_err(|_| Reason::DropHelperFailed)
}

/// Turns a redirect helper's return value into the hook's outcome.
#[inline(always)]
pub fn redirected(ret: i64, reason: Reason) -> Result<Outcome, Reason> {
    if ret == i64::from(TC_ACT_REDIRECT) {
        Ok(Outcome {
            reason,
            action: TC_ACT_REDIRECT as i32,
        })
    } else {
        Err(Reason::DropHelperFailed)
    }
}

/// Redirects the frame to `ifindex`'s egress (`bpf_redirect`).
#[inline(always)]
pub fn redirect(ifindex: u32, reason: Reason) -> Result<Outcome, Reason> {
    // SAFETY: a helper without pointer arguments.
    redirected(unsafe { bpf_redirect(ifindex, 0) }, reason)
}

/// Delivers the frame into the local task behind `endpoint`: the Ethernet
/// destination becomes the task's MAC and the source its host-side veth's
/// MAC (its gateway and peers as the task resolved them by proxy ARP), then
/// `bpf_redirect_peer` hands it to the veth's peer inside the task's netns.
/// The target interface must belong to network `vni`.
#[inline(always)]
pub fn deliver_local(
    ctx: &TcContext,
    vni: u32,
    endpoint: &OverlayEndpoint,
) -> Result<Outcome, Reason> {
    let target = interface(endpoint.ifindex)
        .filter(|target| target.vni == vni)
        .ok_or(Reason::DropNoTargetInterface)?;
    set_macs(ctx, endpoint.mac, target.mac)?;
    // SAFETY: a helper without pointer arguments.
    let ret = unsafe { bpf_redirect_peer(endpoint.ifindex, 0) };
    redirected(ret, Reason::RedirectLocal)
}
