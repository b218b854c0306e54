//! `cargo xtask build-ebpf`: builds `ebpf/programs` for `bpfel-unknown-none`
//! with Debian's rustc 1.96 and its library sources, exactly as
//! shared/TOOLCHAIN.md describes (the rustup toolchains lack `rust-src`).

use std::{path::Path, process::Command};

use anyhow::{Result, bail};

use crate::{run_command, workspace_root};

/// Debian's compiler, which matches `rust-web-src`.
const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
const DEBIAN_CARGO: &str = "/usr/bin/cargo";
/// Where `rust-web-src` puts the sources `-Z build-std` compiles.
const CORE_SOURCES: &str = "/usr/lib/rustlib/src/rust/library/core";

/// Checks the prerequisites, naming the fix for each missing one.
fn check_prerequisites() -> Result<()> {
    let mut missing = Vec::new();
    if !Path::new(DEBIAN_RUSTC).exists() || !Path::new(DEBIAN_CARGO).exists() {
        missing.push(format!(
            "Debian's rustc/cargo ({DEBIAN_RUSTC}): apt-get install -y --no-install-recommends rustc-web cargo-web"
        ));
    }
    if !Path::new(CORE_SOURCES).exists() {
        missing.push(format!(
            "the core library sources ({CORE_SOURCES}): apt-get install -y --no-install-recommends rust-web-src"
        ));
    }
    if Command::new("bpf-linker")
        .arg("--version")
        .output()
        .is_err()
    {
        missing.push(
            "bpf-linker on PATH: LLVM_PREFIX=/usr/lib/llvm-22 cargo install --locked bpf-linker@0.13.0 \
             --no-default-features --features llvm-22 (after apt-get install llvm-22-dev)"
                .into(),
        );
    }
    if missing.is_empty() {
        return Ok(());
    }
    bail!(
        "cannot build the eBPF programs; missing:\n  - {}\n`cargo xtask setup` installs all of them.",
        missing.join("\n  - ")
    )
}

/// Builds the object into `ebpf/programs/target/bpfel-unknown-none/release/shoal-ebpf`.
pub fn run() -> Result<()> {
    check_prerequisites()?;
    println!("==> building the eBPF programs (Debian rustc, -Z build-std=core)");
    let mut command = Command::new(DEBIAN_CARGO);
    command
        .current_dir(workspace_root().join("ebpf/programs"))
        // The rustup proxy variables would send /usr/bin/cargo to the
        // stable toolchain, which has no library sources.
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("RUSTDOC")
        .env_remove("CARGO_TARGET_DIR")
        .env("RUSTC", DEBIAN_RUSTC)
        .env("RUSTC_BOOTSTRAP", "1")
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "bpfel-unknown-none",
            "-Z",
            "build-std=core",
        ]);
    run_command(&mut command)
}
