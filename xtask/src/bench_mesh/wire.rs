//! A switch whose ports behave like the wire behind a NIC: an `XDP_PASS`
//! program on every veth port of the bridge. The kernel delivers a frame
//! an XDP program sends back out of a veth (`XDP_TX`, `XDP_REDIRECT`) only
//! when the peer runs an XDP program itself; with one on the switch's
//! side, the nodes' native XDP can transmit, as it would on a NIC.
//!
//! The program is two instructions (`r0 = XDP_PASS; exit`), assembled
//! from text by LLVM's `llvm-mc` (from the LLVM that `cargo xtask setup`
//! installs for bpf-linker) into an ELF object that `ip link set … xdp
//! obj` loads: the least code, no eBPF build and no loader of our own.

use std::{path::Path, process::Command};

use anyhow::{Result, bail};
use shoal_netns_tests::netns::NetNs;

use crate::bench_shared::checked;

/// LLVM's assembler, from Debian's `llvm-22` (a dependency of
/// `llvm-22-dev`, which setup installs).
const LLVM_MC: &str = "/usr/lib/llvm-22/bin/llvm-mc";

/// The program: return `XDP_PASS` (2), in section `xdp`.
const XDP_PASS: &str = "\t.section xdp,\"ax\",@progbits
\t.globl xdp_pass
\t.type xdp_pass,@function
xdp_pass:
\tr0 = 2
\texit
\t.size xdp_pass, .-xdp_pass
\t.section license,\"aw\",@progbits
\t.asciz \"GPL\"
";

/// Assembles the program in `dir` and attaches it (native XDP) to every
/// veth port of `switch`'s bridge; the ports' names.
pub(super) fn xdp_pass_on_ports(switch: &NetNs, dir: &Path) -> Result<Vec<String>> {
    let (source, object) = (dir.join("xdp_pass.s"), dir.join("xdp_pass.o"));
    std::fs::write(&source, XDP_PASS)?;
    checked(
        Command::new(LLVM_MC)
            .args(["-triple", "bpfel", "-filetype=obj", "-o"])
            .arg(&object)
            .arg(&source),
    )?;
    let object = object.display().to_string();
    let listed =
        String::from_utf8_lossy(&switch.ip(&["-o", "link", "show", "type", "veth"]).stdout)
            .into_owned();
    let ports = veth_names(&listed);
    if ports.is_empty() {
        bail!("no veth port in {}", switch.name());
    }
    for port in &ports {
        switch.ip(&[
            "link", "set", "dev", port, "xdpdrv", "obj", &object, "sec", "xdp",
        ]);
    }
    Ok(ports)
}

/// The interface names of an `ip -o link show` listing (`N: name@peer: …`).
fn veth_names(listed: &str) -> Vec<String> {
    listed
        .lines()
        .filter_map(|line| {
            let name = line.split(": ").nth(1)?;
            Some(name.split('@').next()?.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::veth_names;

    #[test]
    fn reads_interface_names_of_a_one_line_listing() {
        let listed = "3: n1@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue master br0 state UP mode DEFAULT group default qlen 1000\\    link/ether 9a:…
5: h-client@if4: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue master br0\\    link/ether 1e:…
";
        assert_eq!(veth_names(listed), ["n1", "h-client"]);
        assert!(veth_names("").is_empty());
    }
}
