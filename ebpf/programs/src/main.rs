//! shoal's eBPF programs, one module per attach point (as cilium's `bpf_xdp.c`
//! / `bpf_lxc.c`). Shared parsing and counting helpers live in their own
//! modules. Built by `cargo xtask build-ebpf` for `bpfel-unknown-none`.
#![no_std]
#![no_main]

mod counters;
mod mesh;
mod overlay;
mod parse;
mod service;
mod sock_lb;
mod tc_endpoint;
mod tc_underlay;
mod tc_vxlan;
mod xdp_underlay;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any reachable panic path, so this is never called.
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
