//! The eBPF object embedded at build time (see `agent/build.rs`).

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

/// The compiled `shoal-ebpf` object; empty when the binary was built before
/// `cargo xtask build-ebpf`.
pub static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/shoal-ebpf.o"));

/// SHA-256 of [`EBPF_OBJECT`], hex: tells whether pinned programs came from
/// this build.
#[must_use]
pub fn object_digest() -> String {
    Sha256::digest(EBPF_OBJECT)
        .iter()
        .fold(String::with_capacity(64), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
}
