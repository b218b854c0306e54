//! The multi-node harness (DESIGN.md §6): a private world per test, one
//! network namespace per node joined through a bridge in a "switch"
//! namespace, one real `shoald` process per node.
//!
//! Everything a world creates (namespaces, devices, processes, data dirs,
//! bpffs pins) carries a per-world prefix and is removed by RAII guards, also
//! when a test panics. Nothing is created in the root network namespace;
//! underlay addresses are in `198.18.0.0/15` and traffic stays between the
//! world's namespaces.
//!
//! Tests call [`require_privileges!`] first: without root (or without the
//! tools and kernel features the harness needs) they print why and skip;
//! those driving the stock docker CLI call [`require_docker_client!`] next.
//!
//! Module map:
//!
//! | module | owns |
//! | --- | --- |
//! | [`world`] | a world: its switch, nodes and their `shoald`, the CLIs against them |
//! | [`swarm`] | the swarm a suite or benchmark starts from ([`World::swarm`]) |
//! | [`tasks`] | the docker CLI against node 1 and a service's running tasks |
//! | [`client`] | hosts outside the nodes on a world's switch, HTTP from them |
//! | [`registry`] | a registry serving images to the nodes |
//! | [`netns`] | network namespaces as guards, `ip`, code run inside one |
//! | [`process`] | a `shoald` process inside a node's namespaces |
//! | [`wait`] | [`eventually`]: waiting on conditions |
//! | `fixtures` | the packet fixtures' harness: the eBPF object, `BPF_PROG_TEST_RUN`, hand-built frames (feature `fixtures`, on by default) |

pub mod client;
#[cfg(feature = "fixtures")]
pub mod fixtures;
pub mod netns;
pub mod process;
pub mod registry;
pub mod swarm;
pub mod tasks;
pub mod wait;
pub mod world;

pub use tasks::{CONVERGE, RunningTask, service_create_args};
pub use wait::eventually;
pub use world::{Node, World};

/// The reason this process cannot run privileged tests, if any.
#[must_use]
pub fn skip_reason() -> Option<String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Some("needs root (network namespaces, eBPF, bpffs)".into());
    }
    if std::process::Command::new("ip").arg("-V").output().is_err() {
        return Some("needs `ip` from iproute2 (cargo xtask setup installs it)".into());
    }
    if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Some("kernel has no BTF (/sys/kernel/btf/vmlinux)".into());
    }
    None
}

/// Returns from the calling test, printing why, when [`skip_reason`] says
/// privileged tests cannot run here.
#[macro_export]
macro_rules! require_privileges {
    () => {
        if let Some(reason) = $crate::skip_reason() {
            eprintln!("skipped: {reason}");
            return;
        }
    };
}

/// Prints a step of a test, so a failure's output says where it happened.
pub fn step(text: &str) {
    eprintln!("=== step: {text}");
}
