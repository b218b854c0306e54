//! A task's network namespace and its interfaces on overlay networks
//! (DESIGN.md §4, "Networking, per node"), through [`crate::netlink`].
//!
//! The agent makes the namespace itself (a bind mount of a fresh network
//! namespace at `<task dir>/netns`, where interfaces get no IPv6, as on
//! Docker's overlay endpoints) and gives its path to runc, like a CNI
//! runtime. For each network of the task it creates a veth pair: the host
//! side (`sh<task ID prefix><n>`) stays in the node's namespace, where the
//! overlay's tc programs attach; the other side becomes `eth<n>` in the
//! task's namespace with the task's address and the network's MTU. Only
//! the `ingress` network's interface gets a default route: the routing
//! mesh keeps its clients' addresses, so the replies to them must go back
//! through it; other overlays carry task-to-task traffic only. Removing the
//! namespace removes its veths and their host sides with it; [`detach`]
//! removes them without waiting for the namespace to go.
//!
//! Every step is idempotent, so that an agent that restarted halfway can
//! run it again: what is already there is recognised by the kernel's
//! answer ([`NetlinkErrorKind`]), never by its text. The logic runs on any
//! [`Netlink`], and its unit tests on the fake.

use std::{fs, path::Path};

use serde::{Deserialize, Serialize};
use shoal_api::service::TaskNetwork;

use crate::netlink::{Link, Netlink, NetlinkClient, NetlinkError, NetlinkErrorKind};

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
    /// A netlink operation failed.
    #[error("{op}: {source}")]
    Netlink {
        /// What was being done.
        op: String,
        /// The kernel's answer.
        source: NetlinkError,
    },
    /// A task's veth has no Ethernet address to give the data plane.
    #[error("{ifname} has no MAC address")]
    NoMac {
        /// The interface's name.
        ifname: String,
    },
}

fn io_error(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> TaskNetworkError {
    let op = op.into();
    move |source| TaskNetworkError::Io { op, source }
}

fn netlink_error(op: impl Into<String>) -> impl FnOnce(NetlinkError) -> TaskNetworkError {
    let op = op.into();
    move |source| TaskNetworkError::Netlink { op, source }
}

/// The host-side name of a task's veth on its `index`-th network: at most
/// 15 bytes (`IFNAMSIZ - 1`).
#[must_use]
pub fn host_ifname(task_id: &str, index: usize) -> String {
    let prefix: String = task_id.chars().take(10).collect();
    format!("sh{prefix}{index}")
}

/// Creates a network namespace bound at `path` (an empty file is created
/// first), in which interfaces get no IPv6 ([`disable_ipv6_on_new_interfaces`]).
/// Runs on a thread of its own, which `unshare` moves.
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
        disable_ipv6_on_new_interfaces()?;
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

/// Overlay networks carry IPv4 only, and Docker leaves IPv6 off on their
/// endpoints unless the network enables it: every interface made in or
/// moved into the calling thread's network namespace from now on, the
/// task's `eth<n>` among them, gets no IPv6 (no link-local address, router
/// solicitation or MLD report, which the overlay's programs would only
/// drop as not IPv4). The loopback, already there, keeps `::1`. A kernel
/// without IPv6 has nothing to turn off.
fn disable_ipv6_on_new_interfaces() -> Result<(), TaskNetworkError> {
    // The `net` sysctls are those of the opening thread's namespace.
    const DEFAULT_DISABLE_IPV6: &str = "/proc/sys/net/ipv6/conf/default/disable_ipv6";
    match fs::write(DEFAULT_DISABLE_IPV6, "1") {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        written => written.map_err(io_error(format!("writing {DEFAULT_DISABLE_IPV6}"))),
    }
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
///
/// Idempotent: a veth left by an earlier attempt for the same task (an
/// agent that restarted halfway) is replaced. On failure, the veths made so
/// far are deleted.
pub async fn attach(
    netns: &Path,
    task_id: &str,
    networks: &[TaskNetwork],
    mtu: u32,
) -> Result<Vec<AttachedInterface>, TaskNetworkError> {
    attach_with(&connect()?, netns, task_id, networks, mtu).await
}

/// Deletes the host sides of a task's veths, and so their peers, without
/// waiting for the task's namespace to go. Those already gone are fine.
pub async fn detach(interfaces: &[AttachedInterface]) -> Result<(), TaskNetworkError> {
    detach_with(&connect()?, interfaces).await
}

/// The node's flow-based VXLAN device (`external`): one for every overlay
/// network; programs set the tunnel key (remote node, VNI) per packet.
pub const VXLAN_DEVICE: &str = "shoal_vxlan";

/// Creates [`VXLAN_DEVICE`] (UDP `port`, no learning, `mtu`) unless it
/// exists, brings it up and returns its ifindex. Idempotent.
pub async fn ensure_vxlan_device(port: u16, mtu: u32) -> Result<u32, TaskNetworkError> {
    ensure_vxlan_device_with(&connect()?, port, mtu).await
}

/// The MTU and kind of the link `name` in the calling thread's namespace.
pub async fn link_facts(name: &str) -> Result<LinkFacts, TaskNetworkError> {
    let link = connect()?
        .link(name)
        .await
        .map_err(netlink_error(format!("looking up {name}")))?;
    Ok(LinkFacts {
        mtu: link.mtu,
        is_veth: link.is_veth,
    })
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

/// A netlink connection in the calling thread's (the node's) namespace.
fn connect() -> Result<NetlinkClient, TaskNetworkError> {
    NetlinkClient::connect().map_err(netlink_error("opening a netlink socket"))
}

/// [`attach`] through `node`, a connection in the node's namespace.
async fn attach_with<N: Netlink>(
    node: &N,
    netns: &Path,
    task_id: &str,
    networks: &[TaskNetwork],
    mtu: u32,
) -> Result<Vec<AttachedInterface>, TaskNetworkError> {
    let task = node
        .enter(netns)
        .await
        .map_err(netlink_error(format!("entering {}", netns.display())))?;
    let lo = find_link(&task, "lo").await?;
    task.set_up(lo.index)
        .await
        .map_err(netlink_error("bringing lo up"))?;
    let mut attached = Vec::with_capacity(networks.len());
    for (index, network) in networks.iter().enumerate() {
        match attach_one(node, &task, netns, task_id, index, network, mtu).await {
            Ok(interface) => attached.push(interface),
            Err(error) => {
                let made: Vec<String> = (0..=index).map(|i| host_ifname(task_id, i)).collect();
                if let Err(cleanup) = delete_links(node, &made).await {
                    tracing::warn!(task = %task_id, error = %cleanup, "removing a failed attach's veths");
                }
                return Err(error);
            }
        }
    }
    Ok(attached)
}

/// Attaches the task to its `index`-th network: a veth from `node`'s
/// namespace into `task`'s (bound at `netns`), named, sized, addressed and
/// up, with the default route through it on the `ingress` network. The
/// task's side is always a new link (see [`add_veth`]), so its address and
/// route cannot be there already.
async fn attach_one<N: Netlink>(
    node: &N,
    task: &N,
    netns: &Path,
    task_id: &str,
    index: usize,
    network: &TaskNetwork,
    mtu: u32,
) -> Result<AttachedInterface, TaskNetworkError> {
    let host = host_ifname(task_id, index);
    let peer = format!("sp{}", &host[2..]);
    let inside = format!("eth{index}");
    let mtu = network.mtu.unwrap_or(mtu);
    add_veth(node, &host, &peer, mtu).await?;
    let host_link = find_link(node, &host).await?;
    let peer_index = find_link(node, &peer).await?.index;
    node.move_link(peer_index, netns)
        .await
        .map_err(netlink_error(format!("moving {peer} into the task")))?;
    node.set_up(host_link.index)
        .await
        .map_err(netlink_error(format!("bringing {host} up")))?;

    let task_link = find_link(task, &peer).await?;
    task.set_name(task_link.index, &inside)
        .await
        .map_err(netlink_error(format!("renaming {peer} to {inside}")))?;
    task.set_mtu(task_link.index, mtu)
        .await
        .map_err(netlink_error(format!("setting {inside}'s MTU")))?;
    task.add_address(task_link.index, network.addr, network.prefix_len)
        .await
        .map_err(netlink_error(format!("addressing {inside}")))?;
    task.set_up(task_link.index)
        .await
        .map_err(netlink_error(format!("bringing {inside} up")))?;
    if network.ingress {
        // Replies to the routing mesh's clients, whose addresses are
        // outside every overlay, go back through it.
        task.add_default_route(network.gateway, task_link.index)
            .await
            .map_err(netlink_error(format!("a default route through {inside}")))?;
    }
    Ok(AttachedInterface {
        network: network.clone(),
        host_ifindex: host_link.index,
        host_mac: mac(&host_link, &host)?,
        task_mac: mac(&task_link, &inside)?,
        host_ifname: host,
    })
}

/// Creates the veth pair `host`–`peer`, replacing one an earlier attempt
/// left (its names are this task's alone).
async fn add_veth<N: Netlink>(
    node: &N,
    host: &str,
    peer: &str,
    mtu: u32,
) -> Result<(), TaskNetworkError> {
    let op = || format!("creating veth {host}");
    match node.add_veth(host, peer, mtu).await {
        Err(error) if error.kind() == NetlinkErrorKind::AlreadyExists => {
            delete_links(node, &[host, peer]).await?;
            node.add_veth(host, peer, mtu)
                .await
                .map_err(netlink_error(op()))
        }
        result => result.map_err(netlink_error(op())),
    }
}

/// [`detach`] through `node`.
async fn detach_with<N: Netlink>(
    node: &N,
    interfaces: &[AttachedInterface],
) -> Result<(), TaskNetworkError> {
    let names: Vec<&str> = interfaces.iter().map(|i| i.host_ifname.as_str()).collect();
    delete_links(node, &names).await
}

/// Deletes the links called `names` in `netlink`'s namespace; those not
/// there are fine.
async fn delete_links<N: Netlink>(
    netlink: &N,
    names: &[impl AsRef<str>],
) -> Result<(), TaskNetworkError> {
    for name in names.iter().map(AsRef::as_ref) {
        let deleted = match netlink.link(name).await {
            Ok(link) => netlink.delete_link(link.index).await,
            Err(error) => Err(error),
        };
        match deleted {
            Err(error) if error.kind() != NetlinkErrorKind::NotFound => {
                return Err(netlink_error(format!("deleting {name}"))(error));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The link called `name` in `netlink`'s namespace.
async fn find_link<N: Netlink>(netlink: &N, name: &str) -> Result<Link, TaskNetworkError> {
    netlink
        .link(name)
        .await
        .map_err(netlink_error(format!("looking up {name}")))
}

/// The MAC address of `link`, called `ifname`.
fn mac(link: &Link, ifname: &str) -> Result<[u8; 6], TaskNetworkError> {
    link.mac.ok_or_else(|| TaskNetworkError::NoMac {
        ifname: ifname.to_owned(),
    })
}

/// [`ensure_vxlan_device`] through `node`.
async fn ensure_vxlan_device_with<N: Netlink>(
    node: &N,
    port: u16,
    mtu: u32,
) -> Result<u32, TaskNetworkError> {
    match node.link(VXLAN_DEVICE).await {
        Ok(link) => return Ok(link.index),
        Err(error) if error.kind() == NetlinkErrorKind::NotFound => {}
        Err(error) => return Err(netlink_error(format!("looking up {VXLAN_DEVICE}"))(error)),
    }
    match node.add_vxlan(VXLAN_DEVICE, port, mtu).await {
        // AlreadyExists: another caller made it since the lookup.
        Err(error) if error.kind() != NetlinkErrorKind::AlreadyExists => {
            return Err(netlink_error(format!("creating {VXLAN_DEVICE}"))(error));
        }
        _ => {}
    }
    Ok(find_link(node, VXLAN_DEVICE).await?.index)
}

#[cfg(test)]
mod tests {
    use std::{
        net::Ipv4Addr,
        path::{Path, PathBuf},
    };

    use super::*;
    use crate::netlink::fake::{FakeKind, FakeNetlink, Netns, Op};

    const TASK: &str = "8cznq21zbj0gs7oq434sbj35t";
    const NODE: Netns = None;

    fn network(name: &str, vni: u32, third: u8, ingress: bool) -> TaskNetwork {
        TaskNetwork {
            network_id: format!("{name}-id"),
            name: name.to_owned(),
            vni,
            addr: Ipv4Addr::new(10, 0, third, 5),
            prefix_len: 24,
            gateway: Ipv4Addr::new(10, 0, third, 1),
            mtu: None,
            ingress,
        }
    }

    /// The node's namespace and a task's, as `create_netns` leaves it.
    fn node_and_task() -> (FakeNetlink, PathBuf, Netns) {
        let node = FakeNetlink::new();
        let path = PathBuf::from("/var/lib/shoal/tasks/t/netns");
        node.add_netns(&path);
        let task = Some(path.clone());
        (node, path, task)
    }

    async fn attach_to(
        node: &FakeNetlink,
        netns: &Path,
        networks: &[TaskNetwork],
    ) -> Result<Vec<AttachedInterface>, TaskNetworkError> {
        attach_with(node, netns, TASK, networks, 1450).await
    }

    #[test]
    fn host_interface_names_fit_ifnamsiz() {
        let name = host_ifname("8cznq21zbj0gs7oq434sbj35t", 3);
        assert_eq!(name, "sh8cznq21zbj3");
        assert!(name.len() <= 15);
        assert_ne!(host_ifname("abc", 0), host_ifname("abc", 1));
    }

    #[tokio::test]
    async fn attach_makes_eth_n_per_network_with_its_address_and_mtu() {
        let (node, path, task) = node_and_task();
        let mut backend = network("backend", 4097, 1, false);
        backend.mtu = Some(1400);
        let networks = [network("ingress", 4096, 0, true), backend];
        let interfaces = attach_to(&node, &path, &networks).await.expect("attached");

        assert_eq!(node.link_names(&task), ["lo", "eth0", "eth1"]);
        assert!(node.find(&task, "lo").expect("lo").up);
        for (index, (interface, network)) in interfaces.iter().zip(&networks).enumerate() {
            let inside = node.find(&task, &format!("eth{index}")).expect("eth<n>");
            let host = node
                .find(&NODE, &host_ifname(TASK, index))
                .expect("host side");
            assert_eq!(interface.network, *network);
            assert_eq!(interface.host_ifname, host.name);
            assert_eq!(interface.host_ifindex, host.index);
            assert_eq!(interface.host_mac, host.mac);
            assert_eq!(interface.task_mac, inside.mac);
            assert!(host.up && inside.up);
            assert_eq!(inside.addresses, [(network.addr, 24)]);
            assert_eq!(inside.mtu, host.mtu);
        }
        assert_eq!(
            node.find(&task, "eth0").expect("eth0").mtu,
            1450,
            "the node's"
        );
        assert_eq!(
            node.find(&task, "eth1").expect("eth1").mtu,
            1400,
            "the network's"
        );
        assert_eq!(
            node.link_names(&NODE),
            ["lo", "sh8cznq21zbj0", "sh8cznq21zbj1"],
            "the peers moved into the task"
        );
    }

    #[tokio::test]
    async fn only_the_ingress_network_gets_the_default_route() {
        let (node, path, task) = node_and_task();
        let networks = [
            network("backend", 4097, 1, false),
            network("ingress", 4096, 0, true),
        ];
        attach_to(&node, &path, &networks).await.expect("attached");
        assert_eq!(
            node.default_route(&task),
            Some((Ipv4Addr::new(10, 0, 0, 1), "eth1".to_owned()))
        );

        let (node, path, task) = node_and_task();
        attach_to(&node, &path, &[network("backend", 4097, 1, false)])
            .await
            .expect("attached");
        assert_eq!(node.default_route(&task), None);
    }

    #[tokio::test]
    async fn attaching_again_replaces_the_veths_of_an_earlier_attempt() {
        let (node, path, task) = node_and_task();
        let networks = [
            network("ingress", 4096, 0, true),
            network("backend", 4097, 1, false),
        ];
        let first = attach_to(&node, &path, &networks).await.expect("attached");
        let again = attach_to(&node, &path, &networks)
            .await
            .expect("attached again");
        assert_eq!(node.link_names(&task), ["lo", "eth0", "eth1"]);
        assert_eq!(node.link_names(&NODE).len(), 3);
        assert_ne!(first[0].host_ifindex, again[0].host_ifindex, "new veths");
        assert_eq!(
            node.default_route(&task),
            Some((Ipv4Addr::new(10, 0, 0, 1), "eth0".to_owned()))
        );

        // An agent that stopped between creating a veth and moving its
        // peer, then made the task a fresh namespace.
        let (node, path, task) = node_and_task();
        node.add_veth(&host_ifname(TASK, 0), "sp8cznq21zbj0", 1450)
            .await
            .expect("a stale veth");
        attach_to(&node, &path, &networks).await.expect("attached");
        assert_eq!(node.link_names(&task), ["lo", "eth0", "eth1"]);
        assert_eq!(
            node.link_names(&NODE),
            ["lo", "sh8cznq21zbj0", "sh8cznq21zbj1"]
        );
    }

    #[tokio::test]
    async fn detach_deletes_the_veths_and_tolerates_their_absence() {
        let (node, path, task) = node_and_task();
        let networks = [
            network("ingress", 4096, 0, true),
            network("backend", 4097, 1, false),
        ];
        let interfaces = attach_to(&node, &path, &networks).await.expect("attached");
        detach_with(&node, &interfaces).await.expect("detached");
        assert_eq!(node.link_names(&NODE), ["lo"]);
        assert_eq!(node.link_names(&task), ["lo"], "the peers went with them");
        assert_eq!(node.default_route(&task), None);
        detach_with(&node, &interfaces)
            .await
            .expect("detached twice");
    }

    #[tokio::test]
    async fn a_failed_attach_leaves_no_veth_and_keeps_the_kernels_answer() {
        let (node, path, task) = node_and_task();
        node.refuse(Op::AddDefaultRoute, libc::EPERM);
        let networks = [
            network("backend", 4097, 1, false),
            network("ingress", 4096, 0, true),
        ];
        let error = attach_to(&node, &path, &networks)
            .await
            .expect_err("the route is refused");
        let TaskNetworkError::Netlink { op, source } = &error else {
            panic!("not a netlink error: {error:?}");
        };
        assert_eq!(op, "a default route through eth1");
        assert_eq!(source.errno(), Some(libc::EPERM));
        assert_eq!(node.link_names(&NODE), ["lo"]);
        assert_eq!(node.link_names(&task), ["lo"]);
    }

    #[tokio::test]
    async fn attach_fails_without_the_tasks_namespace() {
        let node = FakeNetlink::new();
        let error = attach_to(&node, Path::new("/nowhere"), &[network("b", 1, 1, false)])
            .await
            .expect_err("no namespace");
        let TaskNetworkError::Netlink { source, .. } = &error else {
            panic!("not a netlink error: {error:?}");
        };
        assert_eq!(source.kind(), NetlinkErrorKind::NotFound);
        assert_eq!(node.count(Op::AddVeth), 0);
    }

    #[tokio::test]
    async fn attach_fails_when_an_earlier_veth_cannot_be_replaced() {
        let (node, path, _) = node_and_task();
        node.add_veth(&host_ifname(TASK, 0), "sp8cznq21zbj0", 1450)
            .await
            .expect("a stale veth");
        node.refuse(Op::DeleteLink, libc::EPERM);
        let error = attach_to(&node, &path, &[network("b", 1, 1, false)])
            .await
            .expect_err("the stale veth stays");
        let expected = format!(
            "deleting {}: {}",
            host_ifname(TASK, 0),
            NetlinkError::from_errno(libc::EPERM)
        );
        assert_eq!(error.to_string(), expected);
    }

    #[tokio::test]
    async fn the_vxlan_device_is_made_once() {
        let node = FakeNetlink::new();
        let index = ensure_vxlan_device_with(&node, 4789, 1450)
            .await
            .expect("created");
        let device = node.find(&NODE, VXLAN_DEVICE).expect("the device");
        assert_eq!(device.index, index);
        assert_eq!(device.kind, FakeKind::Vxlan { port: 4789 });
        assert_eq!(device.mtu, 1450);
        assert!(device.up);
        let again = ensure_vxlan_device_with(&node, 4789, 1450)
            .await
            .expect("found");
        assert_eq!(again, index);
        let ops: Vec<(Op, String)> = node
            .calls()
            .into_iter()
            .map(|call| (call.op, call.subject))
            .collect();
        let about = |op| (op, VXLAN_DEVICE.to_owned());
        assert_eq!(
            ops,
            [
                about(Op::Link),
                about(Op::AddVxlan),
                about(Op::Link),
                about(Op::Link)
            ],
            "made once, then found"
        );

        let node = FakeNetlink::new();
        node.refuse(Op::Link, libc::EPERM);
        let error = ensure_vxlan_device_with(&node, 4789, 1450)
            .await
            .expect_err("the lookup is refused");
        assert_eq!(node.count(Op::AddVxlan), 0, "only a missing device is made");
        assert!(
            error.to_string().starts_with("looking up shoal_vxlan: "),
            "{error}"
        );
    }
}
