//! A task's network namespace and its interfaces on overlay networks
//! (DESIGN.md §4, "Networking, per node"), through rtnetlink.
//!
//! The agent makes the namespace itself (a bind mount of a fresh network
//! namespace at `<task dir>/netns`) and gives its path to runc, like a CNI
//! runtime. For each network of the task it creates a veth pair: the host
//! side (`sh<task ID prefix><n>`) stays in the node's namespace, where the
//! overlay's tc programs attach; the other side becomes `eth<n>` in the
//! task's namespace with the task's address and the network's MTU. Only
//! the `ingress` network's interface gets a default route: the routing
//! mesh keeps its clients' addresses, so the replies to them must go back
//! through it; other overlays carry task-to-task traffic only. Removing the
//! namespace removes its veths and their host sides with it.

use std::{
    fs,
    net::IpAddr,
    os::fd::{AsRawFd, OwnedFd},
    path::{Path, PathBuf},
};

use futures_util::TryStreamExt;
use rtnetlink::{
    Handle, LinkMessageBuilder, LinkUnspec, LinkVeth, LinkVxlan, packet_route::link::LinkAttribute,
};
use serde::{Deserialize, Serialize};
use shoal_api::service::TaskNetwork;

/// Why a task's network could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TaskNetworkError {
    /// A system call failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A netlink request failed.
    #[error("{op}: {message}")]
    Netlink {
        /// What was being done.
        op: String,
        /// The kernel's answer.
        message: String,
    },
}

fn io_error(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> TaskNetworkError {
    let op = op.into();
    move |source| TaskNetworkError::Io { op, source }
}

fn netlink_error(op: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> TaskNetworkError {
    let op = op.into();
    move |e| TaskNetworkError::Netlink {
        op,
        message: e.to_string(),
    }
}

/// The host-side name of a task's veth on its `index`-th network: at most
/// 15 bytes (`IFNAMSIZ - 1`).
#[must_use]
pub fn host_ifname(task_id: &str, index: usize) -> String {
    let prefix: String = task_id.chars().take(10).collect();
    format!("sh{prefix}{index}")
}

/// Creates a network namespace bound at `path` (an empty file is created
/// first). Runs on a thread of its own, which `unshare` moves.
pub fn create_netns(path: &Path) -> Result<(), TaskNetworkError> {
    fs::File::create(path).map_err(io_error(format!("creating {}", path.display())))?;
    let target = path.to_owned();
    std::thread::spawn(move || -> Result<(), TaskNetworkError> {
        // SAFETY: unshare takes a flag; it moves only this thread, which
        // ends right after the bind mount.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(io_error("unshare(CLONE_NEWNET)")(
                std::io::Error::last_os_error(),
            ));
        }
        let source = c"/proc/thread-self/ns/net";
        let target_c = std::ffi::CString::new(target.as_os_str().as_encoded_bytes())
            .map_err(|e| io_error("netns path")(std::io::Error::other(e)))?;
        // SAFETY: both paths are NUL-terminated C strings that outlive the
        // call; a bind mount needs no fstype or data.
        let mounted = unsafe {
            libc::mount(
                source.as_ptr(),
                target_c.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            )
        };
        if mounted != 0 {
            return Err(io_error(format!(
                "bind-mounting the netns at {}",
                target.display()
            ))(std::io::Error::last_os_error()));
        }
        Ok(())
    })
    .join()
    .map_err(|_| io_error("the netns thread")(std::io::Error::other("panicked")))?
}

/// Unmounts and removes a namespace made by [`create_netns`] (its veths go
/// with it). Missing is fine.
pub fn remove_netns(path: &Path) {
    if let Ok(target) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) {
        // SAFETY: a NUL-terminated path; a lazy unmount of our own mount.
        unsafe {
            libc::umount2(target.as_ptr(), libc::MNT_DETACH);
        }
    }
    let _ = fs::remove_file(path);
}

/// One of a task's interfaces, as the data plane needs it (kept in the
/// task's directory, so a restarted agent can wire an adopted task again).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachedInterface {
    /// The network and the task's address on it.
    pub network: TaskNetwork,
    /// The host side's name.
    pub host_ifname: String,
    /// The host side's ifindex (in the node's namespace).
    pub host_ifindex: u32,
    /// The host side's MAC: what the task resolves its peers to.
    pub host_mac: [u8; 6],
    /// The task side's MAC (`eth<n>`).
    pub task_mac: [u8; 6],
}

/// Connects the task's namespace at `netns` to each of its `networks`:
/// one veth each, `eth<n>` inside with the task's address and `mtu` (or the
/// network's own). Also brings the namespace's loopback up. Returns the
/// interfaces, in the order of `networks`.
pub async fn attach(
    netns: &Path,
    task_id: &str,
    networks: &[TaskNetwork],
    mtu: u32,
) -> Result<Vec<AttachedInterface>, TaskNetworkError> {
    let netns_fd: OwnedFd = fs::File::open(netns)
        .map_err(io_error(format!("opening {}", netns.display())))?
        .into();
    let handle = connect()?;
    let mut inside = Vec::new();
    let mut host_sides = Vec::new();
    for (index, network) in networks.iter().enumerate() {
        let host = host_ifname(task_id, index);
        let peer = format!("sp{}", &host[2..]);
        let mtu = network.mtu.unwrap_or(mtu);
        handle
            .link()
            .add(LinkVeth::new(&host, &peer).mtu(mtu).build())
            .execute()
            .await
            .map_err(netlink_error(format!("creating veth {host}")))?;
        let host_index = link_index(&handle, &host).await?;
        let peer_index = link_index(&handle, &peer).await?;
        host_sides.push((
            host.clone(),
            host_index,
            link_mac(&handle, host_index).await?,
        ));
        handle
            .link()
            .set(
                LinkUnspec::new_with_index(peer_index)
                    .setns_by_fd(netns_fd.as_raw_fd())
                    .build(),
            )
            .execute()
            .await
            .map_err(netlink_error(format!("moving {peer} into the task")))?;
        handle
            .link()
            .set(LinkUnspec::new_with_index(host_index).up().build())
            .execute()
            .await
            .map_err(netlink_error(format!("bringing {host} up")))?;
        inside.push((peer, format!("eth{index}"), network.clone(), mtu));
    }
    let netns_path: PathBuf = netns.to_owned();
    let task_macs = std::thread::spawn(move || configure_inside(&netns_path, inside))
        .join()
        .map_err(|_| io_error("the netns thread")(std::io::Error::other("panicked")))??;
    Ok(networks
        .iter()
        .zip(host_sides)
        .zip(task_macs)
        .map(
            |((network, (host_ifname, host_ifindex, host_mac)), task_mac)| AttachedInterface {
                network: network.clone(),
                host_ifname,
                host_ifindex,
                host_mac,
                task_mac,
            },
        )
        .collect())
}

/// In the task's namespace (on a thread that joins it): renames each veth
/// to `eth<n>`, sets its MTU, gives it its address and brings it and
/// loopback up. Returns each interface's MAC.
fn configure_inside(
    netns: &Path,
    interfaces: Vec<(String, String, TaskNetwork, u32)>,
) -> Result<Vec<[u8; 6]>, TaskNetworkError> {
    let file = fs::File::open(netns).map_err(io_error(format!("opening {}", netns.display())))?;
    // SAFETY: setns takes a valid namespace fd; it moves only this thread.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io_error("setns into the task")(
            std::io::Error::last_os_error(),
        ));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io_error("a runtime for the task's netlink"))?;
    runtime.block_on(async move {
        let handle = connect()?;
        let lo = link_index(&handle, "lo").await?;
        handle
            .link()
            .set(LinkUnspec::new_with_index(lo).up().build())
            .execute()
            .await
            .map_err(netlink_error("bringing lo up"))?;
        let mut macs = Vec::new();
        for (peer, name, network, mtu) in interfaces {
            let index = link_index(&handle, &peer).await?;
            macs.push(link_mac(&handle, index).await?);
            handle
                .link()
                .set(
                    LinkUnspec::new_with_index(index)
                        .name(name.clone())
                        .mtu(mtu)
                        .build(),
                )
                .execute()
                .await
                .map_err(netlink_error(format!("renaming {peer} to {name}")))?;
            handle
                .address()
                .add(index, IpAddr::V4(network.addr), network.prefix_len)
                .execute()
                .await
                .map_err(netlink_error(format!("addressing {name}")))?;
            handle
                .link()
                .set(LinkUnspec::new_with_index(index).up().build())
                .execute()
                .await
                .map_err(netlink_error(format!("bringing {name} up")))?;
            if network.ingress {
                // Replies to the routing mesh's clients, whose addresses
                // are outside every overlay, go back through it.
                let route = rtnetlink::RouteMessageBuilder::<std::net::Ipv4Addr>::new()
                    .gateway(network.gateway)
                    .output_interface(index)
                    .build();
                handle
                    .route()
                    .add(route)
                    .execute()
                    .await
                    .map_err(netlink_error(format!("a default route through {name}")))?;
            }
        }
        Ok(macs)
    })
}

/// A netlink handle in the calling thread's network namespace.
fn connect() -> Result<Handle, TaskNetworkError> {
    let (connection, handle, _) =
        rtnetlink::new_connection().map_err(io_error("opening a netlink socket"))?;
    tokio::spawn(connection);
    Ok(handle)
}

/// The MAC address of link `index`.
async fn link_mac(handle: &Handle, index: u32) -> Result<[u8; 6], TaskNetworkError> {
    let link = handle
        .link()
        .get()
        .match_index(index)
        .execute()
        .try_next()
        .await
        .map_err(netlink_error(format!("reading link {index}")))?
        .ok_or_else(|| TaskNetworkError::Netlink {
            op: format!("reading link {index}"),
            message: "no such link".into(),
        })?;
    link.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::Address(mac) => <[u8; 6]>::try_from(mac.as_slice()).ok(),
            _ => None,
        })
        .ok_or_else(|| TaskNetworkError::Netlink {
            op: format!("reading link {index}"),
            message: "no MAC address".into(),
        })
}

async fn link_index(handle: &Handle, name: &str) -> Result<u32, TaskNetworkError> {
    let link = handle
        .link()
        .get()
        .match_name(name.to_owned())
        .execute()
        .try_next()
        .await
        .map_err(netlink_error(format!("looking up {name}")))?
        .ok_or_else(|| TaskNetworkError::Netlink {
            op: format!("looking up {name}"),
            message: "no such link".into(),
        })?;
    Ok(link.header.index)
}

/// The node's flow-based VXLAN device (`external`): one for every overlay
/// network; programs set the tunnel key (remote node, VNI) per packet.
pub const VXLAN_DEVICE: &str = "shoal_vxlan";

/// Creates [`VXLAN_DEVICE`] (UDP `port`, no learning, `mtu`) unless it
/// exists, brings it up and returns its ifindex. Idempotent.
pub async fn ensure_vxlan_device(port: u16, mtu: u32) -> Result<u32, TaskNetworkError> {
    let handle = connect()?;
    if let Ok(index) = link_index(&handle, VXLAN_DEVICE).await {
        return Ok(index);
    }
    handle
        .link()
        .add(
            LinkMessageBuilder::<LinkVxlan>::new(VXLAN_DEVICE)
                .port(port)
                .collect_metadata(true)
                .learning(false)
                .mtu(mtu)
                .up()
                .build(),
        )
        .execute()
        .await
        .map_err(netlink_error(format!("creating {VXLAN_DEVICE}")))?;
    link_index(&handle, VXLAN_DEVICE).await
}

/// The MTU and kind of the link `name` in the calling thread's namespace.
pub async fn link_facts(name: &str) -> Result<LinkFacts, TaskNetworkError> {
    let handle = connect()?;
    let link = handle
        .link()
        .get()
        .match_name(name.to_owned())
        .execute()
        .try_next()
        .await
        .map_err(netlink_error(format!("looking up {name}")))?
        .ok_or_else(|| TaskNetworkError::Netlink {
            op: format!("looking up {name}"),
            message: "no such link".into(),
        })?;
    let mut facts = LinkFacts {
        mtu: 1500,
        is_veth: false,
    };
    for attribute in &link.attributes {
        match attribute {
            LinkAttribute::Mtu(mtu) => facts.mtu = *mtu,
            LinkAttribute::LinkInfo(infos) => {
                facts.is_veth |= infos.iter().any(|info| {
                    matches!(
                        info,
                        rtnetlink::packet_route::link::LinkInfo::Kind(
                            rtnetlink::packet_route::link::InfoKind::Veth
                        )
                    )
                });
            }
            _ => {}
        }
    }
    Ok(facts)
}

/// What the node needs to know about its underlay interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkFacts {
    /// Its MTU.
    pub mtu: u32,
    /// Whether it is a veth, whose peer (in a namespace the node cannot
    /// see) decides whether frames sent back out by XDP are received.
    pub is_veth: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_interface_names_fit_ifnamsiz() {
        let name = host_ifname("8cznq21zbj0gs7oq434sbj35t", 3);
        assert_eq!(name, "sh8cznq21zbj3");
        assert!(name.len() <= 15);
        assert_ne!(host_ifname("abc", 0), host_ifname("abc", 1));
    }
}
