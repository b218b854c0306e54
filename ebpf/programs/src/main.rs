//! shoal's eBPF programs, one module per attach point (as cilium's `bpf_xdp.c`
//! / `bpf_lxc.c`). Shared parsing and counting helpers live in their own
//! modules. Built by `cargo xtask build-ebpf` for `bpfel-unknown-none`.
//!
//! The object carries BTF (bpf-linker `--btf`) for the types of its maps
//! and of every function LLVM leaves out of line. A Rust enum with data in
//! such a function's signature must keep its tag at offset 0
//! (`#[repr(u32)]`, as `mesh::Classified`): LLVM describes it as a union
//! holding the tag at its own offset, the kernel refuses a union member
//! anywhere else than 0 and with it the whole BTF, and aya then loads
//! every program without BTF. The netns test
//! `xdp_fixtures::the_kernel_accepts_the_objects_btf` checks it.
#![no_std]
#![no_main]

mod counters;
mod flow;
mod mesh;
mod overlay;
mod parse;
mod service;
mod sock_lb;
mod tc_endpoint;
mod tc_underlay;
mod tc_vxlan;
mod vxlan;
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
