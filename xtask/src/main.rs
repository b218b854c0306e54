//! Project automation, run as `cargo xtask <command>`:
//!
//! - `setup`: installs what a fresh machine needs (idempotent, quick when done);
//! - `build-ebpf`: builds the eBPF object with Debian's rustc (TOOLCHAIN.md);
//! - `demo-image`: builds the demo and test image's rootfs tarball;
//! - `test`: unit tests and the netns end-to-end suites;
//! - `demo`: a 3-node world to look at and explore until Ctrl-C;
//! - `bench [mesh|vip|overlay] [--runs N] [--profile VARIANT]`: measurements
//!   (control plane, services, service VIP, overlay, routing mesh), or one
//!   part of them.

mod bench;
mod bench_mesh;
mod bench_overlay;
mod bench_services;
mod bench_shared;
mod bench_vip;
mod build_ebpf;
mod demo;
mod demo_image;
mod interrupt;
mod setup;

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};

/// shoal's project automation.
#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Install system dependencies (Debian packages, bpf-linker); a quick
    /// no-op when everything is present.
    Setup {
        /// Only report what is missing; install nothing.
        #[arg(long)]
        check: bool,
    },
    /// Build the eBPF programs for bpfel-unknown-none.
    BuildEbpf,
    /// Build the demo image's rootfs tarball (busybox, a static whoami):
    /// target/shoal/demo-image.tar.
    DemoImage,
    /// Run every test: unit tests and the netns end-to-end suites (root).
    Test {
        /// Extra arguments for `cargo test` (e.g. a test name filter).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        cargo_args: Vec<String>,
    },
    /// Run the benchmarks and print their figures.
    Bench {
        /// Only this part (every part when omitted).
        part: Option<BenchPart>,
        /// Measured runs per variant and mode of the data-plane benches
        /// (mesh, vip, overlay); their tables give the medians.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
        runs: u16,
        /// Run this variant's first mode once more under `perf record -a
        /// -g` and print the top symbols (a key of the part's table, e.g.
        /// `xdp` for the mesh).
        #[arg(long, value_name = "VARIANT")]
        profile: Option<String>,
    },
    /// Bring up a 3-node world in network namespaces, show each node's data
    /// plane, keep it up until Ctrl-C, then remove everything.
    Demo {
        /// Tear down right after showing the status instead of waiting.
        #[arg(long)]
        once: bool,
    },
}

/// A part of `cargo xtask bench` that runs alone.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum BenchPart {
    /// The routing mesh (XDP, tc) against direct, iptables, nftables and
    /// haproxy, by wrk.
    Mesh,
    /// New connections per second from a task to a service VIP, against a
    /// backend directly and iptables DNAT.
    Vip,
    /// The overlay across nodes (one TCP stream, keep-alive requests)
    /// against a bare flow-based VXLAN device pair.
    Overlay,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Setup { check } => setup::run(check),
        Cmd::BuildEbpf => build_ebpf::run(),
        Cmd::DemoImage => demo_image::run().map(|path| println!("{}", path.display())),
        Cmd::Test { cargo_args } => test(&cargo_args),
        Cmd::Bench {
            part,
            runs,
            profile,
        } => {
            let plan = bench_shared::Plan {
                runs: usize::from(runs),
                profile,
            };
            prepare()?;
            match part {
                None => bench::run(&plan),
                Some(BenchPart::Mesh) => bench_mesh::run(&plan),
                Some(BenchPart::Vip) => bench_vip::run(&plan),
                Some(BenchPart::Overlay) => bench_overlay::run(&plan),
            }
        }
        Cmd::Demo { once } => {
            prepare()?;
            demo::run(once)
        }
    }
}

/// The workspace root (xtask lives one level below it).
///
/// # Panics
/// Never: xtask's manifest directory always has a parent.
#[must_use]
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is in the workspace")
        .to_path_buf()
}

/// Runs `command`, failing with its description when it fails.
pub fn run_command(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("starting {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}

/// Everything the tests and the demo need: system dependencies, the eBPF
/// object, the binaries (built with the eBPF object embedded) and the demo
/// image's tarball.
fn prepare() -> Result<()> {
    setup::run(false)?;
    build_ebpf::run()?;
    println!("==> building the workspace");
    run_command(cargo().args(["build", "--workspace", "--bins"]))?;
    demo_image::run().map(drop)
}

/// `cargo` as invoked for this xtask (the rustup stable toolchain).
fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(workspace_root());
    command
}

fn test(cargo_args: &[String]) -> Result<()> {
    prepare()?;
    if !nix::unistd::Uid::effective().is_root() {
        println!("==> not root: the netns and eBPF tests will print why they skip");
    }
    println!("==> running the tests");
    // Every suite runs even after one fails, so a run shows all failures.
    let mut child = cargo()
        .args(["test", "--workspace", "--no-fail-fast"])
        .args(cargo_args)
        .stdout(Stdio::piped())
        .spawn()
        .context("starting cargo test")?;
    let mut totals = TestTotals::default();
    for line in BufReader::new(child.stdout.take().context("cargo test's stdout")?).lines() {
        let line = line.context("reading cargo test's output")?;
        println!("{line}");
        totals.add(&line);
    }
    let status = child.wait().context("waiting for cargo test")?;
    println!(
        "\ntests: {} passed, {} failed",
        totals.passed, totals.failed
    );
    if !status.success() {
        bail!("cargo test failed with {status}");
    }
    Ok(())
}

/// Sums the `test result:` lines of every test binary.
#[derive(Debug, Default)]
struct TestTotals {
    passed: u64,
    failed: u64,
}

impl TestTotals {
    /// Adds a line like `test result: ok. 3 passed; 0 failed; 0 ignored; …`.
    fn add(&mut self, line: &str) {
        let Some(rest) = line.strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split(['.', ';']) {
            let mut words = part.split_whitespace();
            if let (Some(count), Some(kind)) = (words.next(), words.next()) {
                let Ok(count) = count.parse::<u64>() else {
                    continue;
                };
                match kind {
                    "passed" => self.passed += count,
                    "failed" => self.failed += count,
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TestTotals;

    #[test]
    fn sums_test_result_lines() {
        let mut totals = TestTotals::default();
        totals.add("test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 1.25s");
        totals
            .add("test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out");
        totals.add("running 3 tests");
        assert_eq!((totals.passed, totals.failed), (5, 1));
    }
}
