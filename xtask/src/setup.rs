//! `cargo xtask setup`: installs every system dependency of the build, the
//! tests and the demo on a fresh machine of this kind (Debian, root), and is
//! a quick no-op when all is present.

use std::{
    os::unix::fs::PermissionsExt as _, path::Path, process::Command, thread, time::Duration,
};

use anyhow::{Context, Result, bail};

use crate::run_command;

/// Debian packages and why each is needed.
const PACKAGES: &[(&str, &str)] = &[
    (
        "llvm-22-dev",
        "bpf-linker links against Debian's LLVM 22 (its llvm-mc assembles the bench's XDP_PASS)",
    ),
    (
        "rustc-web",
        "Debian's rustc 1.96, which builds the eBPF programs",
    ),
    ("cargo-web", "Debian's cargo, driving that build"),
    ("rust-web-src", "library sources for -Z build-std=core"),
    (
        "iproute2",
        "`ip` for the test harness and the demo's namespaces",
    ),
    ("runc", "the OCI runtime that runs task containers"),
    (
        "iptables",
        "the iptables-DNAT side of `cargo xtask bench` (only in namespaces it makes)",
    ),
    (
        "nftables",
        "the nftables-DNAT side of `cargo xtask bench mesh` (only in namespaces it makes)",
    ),
    (
        "wrk",
        "the HTTP load generator of `cargo xtask bench mesh|overlay`",
    ),
    (
        "nginx",
        "the backends of `cargo xtask bench mesh|vip|overlay` (only run in namespaces they make; \
         installed behind a policy-rc.d that keeps the service from starting)",
    ),
    (
        "linux-perf",
        "`perf record -a -g` for `cargo xtask bench … --profile`",
    ),
    (
        "haproxy",
        "the userspace proxy side of `cargo xtask bench mesh` (run in a namespace it makes)",
    ),
    (
        "ethtool",
        "turns the bench and demo clients' tx checksum offload off (veths pass partial checksums)",
    ),
    (
        "busybox-static",
        "the userland of the demo image (`cargo xtask demo-image`)",
    ),
    (
        "docker-registry",
        "the local OCI registry the pull tests run in a node's namespace",
    ),
];

const BPF_LINKER_VERSION: &str = "0.13.0";

fn is_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout).contains("install ok installed")
        })
}

fn bpf_linker_ok() -> bool {
    Command::new("bpf-linker")
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(BPF_LINKER_VERSION))
}

/// Runs an apt-get command, retrying while another process holds the dpkg
/// lock (unattended upgrades on a fresh machine).
fn apt_get(args: &[&str]) -> Result<()> {
    const ATTEMPTS: u32 = 30;
    for attempt in 1..=ATTEMPTS {
        let output = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .context("running apt-get")?;
        if output.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let locked =
            stderr.contains("Could not get lock") || stderr.contains("Unable to acquire the dpkg");
        if !locked || attempt == ATTEMPTS {
            bail!("apt-get {} failed:\n{stderr}", args.join(" "));
        }
        println!("    dpkg is locked by another process; retrying in 2 s ({attempt}/{ATTEMPTS})");
        thread::sleep(Duration::from_secs(2));
    }
    unreachable!("the last attempt returns")
}

/// Debian's hook that tells maintainer scripts whether to start services.
const POLICY_RC_D: &str = "/usr/sbin/policy-rc.d";

/// While it lives, no package installed starts its service (nginx, the
/// registry): a `policy-rc.d` that exits 101 ("action forbidden"), put
/// there only when there is none and removed on drop.
struct NoServiceStarts(bool);

impl NoServiceStarts {
    fn install() -> Result<Self> {
        if Path::new(POLICY_RC_D).exists() {
            return Ok(Self(false));
        }
        std::fs::write(POLICY_RC_D, "#!/bin/sh\nexit 101\n")
            .and_then(|()| {
                std::fs::set_permissions(POLICY_RC_D, std::fs::Permissions::from_mode(0o755))
            })
            .with_context(|| format!("writing {POLICY_RC_D}"))?;
        Ok(Self(true))
    }
}

impl Drop for NoServiceStarts {
    fn drop(&mut self) {
        if self.0 {
            let _ = std::fs::remove_file(POLICY_RC_D);
        }
    }
}

/// Installs what is missing; with `check_only`, reports it and fails.
pub fn run(check_only: bool) -> Result<()> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(p, _)| !is_installed(p))
        .map(|(p, _)| *p)
        .collect();
    let linker_missing = !bpf_linker_ok();
    if missing.is_empty() && !linker_missing {
        return Ok(());
    }
    for (package, why) in PACKAGES.iter().filter(|(p, _)| missing.contains(p)) {
        println!("    missing {package}: {why}");
    }
    if linker_missing {
        println!("    missing bpf-linker {BPF_LINKER_VERSION} (llvm-22): links the eBPF object");
    }
    if check_only {
        bail!("setup is incomplete: run `cargo xtask setup`");
    }
    if !nix::unistd::Uid::effective().is_root() {
        bail!("installing packages needs root: run `sudo cargo xtask setup`");
    }
    if !missing.is_empty() {
        println!("==> apt-get install {}", missing.join(" "));
        apt_get(&["update", "-q"])?;
        let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
        args.extend(&missing);
        let _no_service_starts = NoServiceStarts::install()?;
        apt_get(&args)?;
    }
    if linker_missing {
        println!("==> cargo install bpf-linker@{BPF_LINKER_VERSION} (llvm-22)");
        run_command(
            Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
                .env("LLVM_PREFIX", "/usr/lib/llvm-22")
                .args([
                    "install",
                    "--locked",
                    &format!("bpf-linker@{BPF_LINKER_VERSION}"),
                    "--no-default-features",
                    "--features",
                    "llvm-22",
                ]),
        )?;
    }
    println!("==> setup complete");
    Ok(())
}
