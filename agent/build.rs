//! Embeds the eBPF object built by `cargo xtask build-ebpf`.
//!
//! The object is looked up at `$SHOAL_EBPF_OBJECT`, else in the eBPF
//! workspace's release output. When it is missing (a plain `cargo check` on a
//! fresh clone) an empty object is embedded and a warning printed; the data
//! plane then refuses to start with a message naming the fix.

use std::{env, fs, path::PathBuf};

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let object = env::var_os("SHOAL_EBPF_OBJECT").map_or_else(
        || manifest_dir.join("../ebpf/programs/target/bpfel-unknown-none/release/shoal-ebpf"),
        PathBuf::from,
    );
    println!("cargo::rerun-if-env-changed=SHOAL_EBPF_OBJECT");
    println!("cargo::rerun-if-changed={}", object.display());
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("shoal-ebpf.o");
    let bytes = fs::read(&object).unwrap_or_else(|_| {
        println!(
            "cargo::warning=eBPF object {} not found: run `cargo xtask build-ebpf`; \
             shoald will refuse to start its data plane",
            object.display()
        );
        Vec::new()
    });
    fs::write(&out, bytes).expect("write OUT_DIR/shoal-ebpf.o");
}
