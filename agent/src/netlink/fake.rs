//! [`FakeNetlink`]: a [`Netlink`] for unit tests, without root. It keeps
//! an in-memory model of the node's namespace and the tasks' (links, their
//! addresses, each namespace's default route), answers lookups from it and
//! refuses what the kernel would refuse, with the kernel's errno. It
//! records every call, and can be told to refuse some.

use std::{
    collections::BTreeMap,
    net::Ipv4Addr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use super::{Link, Netlink, NetlinkError};

/// A namespace of the model: the node's (`None`) or the one bound at a path.
pub type Netns = Option<PathBuf>;

/// The longest interface name (`IFNAMSIZ - 1`).
const MAX_IFNAME: usize = 15;

/// What the kernel gives a new veth peer or loopback.
const DEFAULT_MTU: u32 = 1500;

/// One connection of the fake, into one namespace of a model that every
/// connection made from it (by cloning or [`Netlink::enter`]) shares.
#[derive(Clone, Debug)]
pub struct FakeNetlink {
    system: Arc<Mutex<System>>,
    netns: Netns,
}

/// A link of the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeLink {
    /// The namespace it is in.
    pub netns: Netns,
    /// Its ifindex (unique across namespaces in the model).
    pub index: u32,
    /// Its name.
    pub name: String,
    /// What sort of link it is.
    pub kind: FakeKind,
    /// Its MTU.
    pub mtu: u32,
    /// Its MAC address.
    pub mac: [u8; 6],
    /// Whether it is up.
    pub up: bool,
    /// Its addresses, with their prefix lengths.
    pub addresses: Vec<(Ipv4Addr, u8)>,
}

/// What sort of link a [`FakeLink`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FakeKind {
    /// A namespace's `lo`.
    Loopback,
    /// One side of a veth pair, with its peer's ifindex.
    Veth {
        /// The other side.
        peer: u32,
    },
    /// A flow-based VXLAN device on a UDP port.
    Vxlan {
        /// Its UDP port.
        port: u16,
    },
}

/// The operations of [`Netlink`], to record calls and choose refusals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    /// [`Netlink::enter`]
    Enter,
    /// [`Netlink::link`]
    Link,
    /// [`Netlink::add_veth`]
    AddVeth,
    /// [`Netlink::add_vxlan`]
    AddVxlan,
    /// [`Netlink::move_link`]
    MoveLink,
    /// [`Netlink::set_name`]
    SetName,
    /// [`Netlink::set_mtu`]
    SetMtu,
    /// [`Netlink::set_up`]
    SetUp,
    /// [`Netlink::delete_link`]
    DeleteLink,
    /// [`Netlink::add_address`]
    AddAddress,
    /// [`Netlink::add_default_route`]
    AddDefaultRoute,
}

/// A call made to the fake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// The namespace of the connection it was made on.
    pub netns: Netns,
    /// The operation.
    pub op: Op,
    /// What it was about: the namespace entered, or the link's name (as
    /// given, or of the ifindex given; empty if there was none).
    pub subject: String,
}

#[derive(Debug)]
struct System {
    namespaces: BTreeMap<Netns, Namespace>,
    links: BTreeMap<u32, FakeLink>,
    next_index: u32,
    calls: Vec<Call>,
    refusals: BTreeMap<Op, i32>,
}

/// A namespace's state beyond its links.
#[derive(Debug, Default)]
struct Namespace {
    /// The default route: its gateway and the ifindex it leaves through.
    default_route: Option<(Ipv4Addr, u32)>,
}

impl Default for FakeNetlink {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeNetlink {
    /// A model with only the node's namespace and its `lo`; the connection
    /// is in the node's namespace.
    #[must_use]
    pub fn new() -> Self {
        let fake = Self {
            system: Arc::new(Mutex::new(System {
                namespaces: BTreeMap::new(),
                links: BTreeMap::new(),
                next_index: 1,
                calls: Vec::new(),
                refusals: BTreeMap::new(),
            })),
            netns: None,
        };
        fake.system().create_namespace(None);
        fake
    }

    fn system(&self) -> MutexGuard<'_, System> {
        self.system.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes a namespace bound at `path`, with its `lo` (down), as
    /// `create_netns` does.
    pub fn add_netns(&self, path: &Path) {
        self.system().create_namespace(Some(path.to_owned()));
    }

    /// Makes every later call of `op` fail with `errno`.
    pub fn refuse(&self, op: Op, errno: i32) {
        self.system().refusals.insert(op, errno);
    }

    /// Every call so far, in order.
    #[must_use]
    pub fn calls(&self) -> Vec<Call> {
        self.system().calls.clone()
    }

    /// How many calls of `op` were made so far.
    #[must_use]
    pub fn count(&self, op: Op) -> usize {
        self.system().calls.iter().filter(|c| c.op == op).count()
    }

    /// The link called `name` in `netns`.
    #[must_use]
    pub fn find(&self, netns: &Netns, name: &str) -> Option<FakeLink> {
        let system = self.system();
        system
            .named(netns, name)
            .map(|index| system.links[&index].clone())
    }

    /// The names of the links in `netns`, in ifindex order.
    #[must_use]
    pub fn link_names(&self, netns: &Netns) -> Vec<String> {
        self.system()
            .links
            .values()
            .filter(|link| &link.netns == netns)
            .map(|link| link.name.clone())
            .collect()
    }

    /// The default route of `netns`: its gateway and the name of the link
    /// it leaves through.
    #[must_use]
    pub fn default_route(&self, netns: &Netns) -> Option<(Ipv4Addr, String)> {
        let system = self.system();
        let (gateway, index) = system.namespaces.get(netns)?.default_route?;
        Some((gateway, system.links[&index].name.clone()))
    }

    /// Records a call of `op` about `subject` (a name) and says whether it
    /// is refused.
    fn call(&self, op: Op, subject: &str) -> Result<MutexGuard<'_, System>, NetlinkError> {
        let mut system = self.system();
        system.calls.push(Call {
            netns: self.netns.clone(),
            op,
            subject: subject.to_owned(),
        });
        match system.refusals.get(&op) {
            Some(&errno) => Err(NetlinkError::from_errno(errno)),
            None => Ok(system),
        }
    }

    /// As [`Self::call`], about link `index`, which must be in this
    /// connection's namespace (`ENODEV` otherwise, as the kernel).
    fn call_on(&self, op: Op, index: u32) -> Result<MutexGuard<'_, System>, NetlinkError> {
        let subject = self
            .system()
            .links
            .get(&index)
            .map(|link| link.name.clone())
            .unwrap_or_default();
        let system = self.call(op, &subject)?;
        match system.links.get(&index) {
            Some(link) if link.netns == self.netns => Ok(system),
            _ => Err(NetlinkError::from_errno(libc::ENODEV)),
        }
    }
}

impl System {
    fn create_namespace(&mut self, netns: Netns) {
        self.create_link(&netns, "lo", FakeKind::Loopback, DEFAULT_MTU);
        self.namespaces.insert(netns, Namespace::default());
    }

    fn create_link(&mut self, netns: &Netns, name: &str, kind: FakeKind, mtu: u32) -> u32 {
        let index = self.next_index;
        self.next_index += 1;
        let [.., high, low] = index.to_be_bytes();
        let mac = if kind == FakeKind::Loopback {
            [0; 6]
        } else {
            [0x02, 0, 0, 0, high, low]
        };
        self.links.insert(
            index,
            FakeLink {
                netns: netns.clone(),
                index,
                name: name.to_owned(),
                kind,
                mtu,
                mac,
                up: false,
                addresses: Vec::new(),
            },
        );
        index
    }

    fn named(&self, netns: &Netns, name: &str) -> Option<u32> {
        self.links
            .values()
            .find(|link| &link.netns == netns && link.name == name)
            .map(|link| link.index)
    }

    fn link_mut(&mut self, index: u32) -> &mut FakeLink {
        self.links
            .get_mut(&index)
            .expect("the caller checked the link exists")
    }

    /// Removes the default route of `link`'s namespace if it leaves
    /// through `link`, as the kernel does when the link goes down or away.
    fn forget_routes_through(&mut self, link: &FakeLink) {
        if let Some(namespace) = self.namespaces.get_mut(&link.netns)
            && namespace
                .default_route
                .is_some_and(|(_, index)| index == link.index)
        {
            namespace.default_route = None;
        }
    }

    /// Deletes link `index` and, if it is a veth, its peer.
    fn delete(&mut self, index: u32) {
        let Some(link) = self.links.remove(&index) else {
            return;
        };
        self.forget_routes_through(&link);
        if let FakeKind::Veth { peer } = link.kind {
            self.delete(peer);
        }
    }
}

fn check_name(name: &str) -> Result<(), NetlinkError> {
    if name.is_empty() || name.len() > MAX_IFNAME {
        return Err(NetlinkError::from_errno(libc::EINVAL));
    }
    Ok(())
}

fn in_subnet(address: Ipv4Addr, prefix_len: u8, other: Ipv4Addr) -> bool {
    let mask = u32::MAX
        .checked_shl(32 - u32::from(prefix_len))
        .unwrap_or(0);
    u32::from(address) & mask == u32::from(other) & mask
}

impl Netlink for FakeNetlink {
    async fn enter(&self, netns: &Path) -> Result<Self, NetlinkError> {
        let system = self.call(Op::Enter, &netns.display().to_string())?;
        let netns = Some(netns.to_owned());
        if !system.namespaces.contains_key(&netns) {
            return Err(std::io::Error::from_raw_os_error(libc::ENOENT).into());
        }
        Ok(Self {
            system: Arc::clone(&self.system),
            netns,
        })
    }

    async fn link(&self, name: &str) -> Result<Link, NetlinkError> {
        let system = self.call(Op::Link, name)?;
        let index = system
            .named(&self.netns, name)
            .ok_or_else(|| NetlinkError::from_errno(libc::ENODEV))?;
        let link = &system.links[&index];
        Ok(Link {
            index,
            mtu: link.mtu,
            mac: (link.kind != FakeKind::Loopback).then_some(link.mac),
            is_veth: matches!(link.kind, FakeKind::Veth { .. }),
        })
    }

    async fn add_veth(&self, name: &str, peer: &str, mtu: u32) -> Result<(), NetlinkError> {
        let mut system = self.call(Op::AddVeth, name)?;
        check_name(name)?;
        check_name(peer)?;
        if name == peer
            || system.named(&self.netns, name).is_some()
            || system.named(&self.netns, peer).is_some()
        {
            return Err(NetlinkError::from_errno(libc::EEXIST));
        }
        let index = system.create_link(&self.netns, name, FakeKind::Veth { peer: 0 }, mtu);
        let peer_index = system.create_link(
            &self.netns,
            peer,
            FakeKind::Veth { peer: index },
            DEFAULT_MTU,
        );
        system.link_mut(index).kind = FakeKind::Veth { peer: peer_index };
        Ok(())
    }

    async fn add_vxlan(&self, name: &str, port: u16, mtu: u32) -> Result<(), NetlinkError> {
        let mut system = self.call(Op::AddVxlan, name)?;
        check_name(name)?;
        if system.named(&self.netns, name).is_some() {
            return Err(NetlinkError::from_errno(libc::EEXIST));
        }
        let index = system.create_link(&self.netns, name, FakeKind::Vxlan { port }, mtu);
        system.link_mut(index).up = true;
        Ok(())
    }

    async fn move_link(&self, index: u32, netns: &Path) -> Result<(), NetlinkError> {
        let mut system = self.call_on(Op::MoveLink, index)?;
        let target = Some(netns.to_owned());
        if !system.namespaces.contains_key(&target) {
            return Err(std::io::Error::from_raw_os_error(libc::ENOENT).into());
        }
        let link = system.links[&index].clone();
        if link.kind == FakeKind::Loopback {
            return Err(NetlinkError::from_errno(libc::EINVAL));
        }
        if system.named(&target, &link.name).is_some() {
            return Err(NetlinkError::from_errno(libc::EEXIST));
        }
        system.forget_routes_through(&link);
        let moved = system.link_mut(index);
        moved.netns = target;
        moved.up = false;
        moved.addresses.clear();
        Ok(())
    }

    async fn set_name(&self, index: u32, name: &str) -> Result<(), NetlinkError> {
        let mut system = self.call_on(Op::SetName, index)?;
        check_name(name)?;
        if system.links[&index].up {
            return Err(NetlinkError::from_errno(libc::EBUSY));
        }
        match system.named(&self.netns, name) {
            Some(other) if other != index => Err(NetlinkError::from_errno(libc::EEXIST)),
            _ => {
                system.link_mut(index).name = name.to_owned();
                Ok(())
            }
        }
    }

    async fn set_mtu(&self, index: u32, mtu: u32) -> Result<(), NetlinkError> {
        let mut system = self.call_on(Op::SetMtu, index)?;
        if mtu < 68 {
            return Err(NetlinkError::from_errno(libc::EINVAL));
        }
        system.link_mut(index).mtu = mtu;
        Ok(())
    }

    async fn set_up(&self, index: u32) -> Result<(), NetlinkError> {
        let mut system = self.call_on(Op::SetUp, index)?;
        system.link_mut(index).up = true;
        Ok(())
    }

    async fn delete_link(&self, index: u32) -> Result<(), NetlinkError> {
        let mut system = self.call_on(Op::DeleteLink, index)?;
        if system.links[&index].kind == FakeKind::Loopback {
            return Err(NetlinkError::from_errno(libc::EOPNOTSUPP));
        }
        system.delete(index);
        Ok(())
    }

    async fn add_address(
        &self,
        index: u32,
        address: Ipv4Addr,
        prefix_len: u8,
    ) -> Result<(), NetlinkError> {
        let mut system = self.call_on(Op::AddAddress, index)?;
        if prefix_len > 32 {
            return Err(NetlinkError::from_errno(libc::EINVAL));
        }
        let link = system.link_mut(index);
        if link.addresses.contains(&(address, prefix_len)) {
            return Err(NetlinkError::from_errno(libc::EEXIST));
        }
        link.addresses.push((address, prefix_len));
        Ok(())
    }

    async fn add_default_route(&self, gateway: Ipv4Addr, index: u32) -> Result<(), NetlinkError> {
        let mut system = self.call_on(Op::AddDefaultRoute, index)?;
        let link = &system.links[&index];
        if !link.up {
            return Err(NetlinkError::from_errno(libc::ENETDOWN));
        }
        if !link
            .addresses
            .iter()
            .any(|&(address, prefix_len)| in_subnet(address, prefix_len, gateway))
        {
            return Err(NetlinkError::from_errno(libc::ENETUNREACH));
        }
        let namespace = system
            .namespaces
            .get_mut(&self.netns)
            .expect("a link's namespace exists");
        if namespace.default_route.is_some() {
            return Err(NetlinkError::from_errno(libc::EEXIST));
        }
        namespace.default_route = Some((gateway, index));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::NetlinkErrorKind;

    /// The fake refuses as the kernel does where the agent's logic depends
    /// on it.
    #[tokio::test]
    async fn refuses_as_the_kernel_does() {
        let node = FakeNetlink::new();
        node.add_veth("a", "b", 1450).await.expect("a veth");
        let exists = node.add_veth("b", "c", 1450).await.expect_err("b is taken");
        assert_eq!(exists.kind(), NetlinkErrorKind::AlreadyExists);
        let missing = node.link("c").await.expect_err("no c");
        assert_eq!(missing.errno(), Some(libc::ENODEV));
        let a = node.link("a").await.expect("a");
        assert!(a.is_veth);
        assert_eq!(a.mtu, 1450);
        assert_eq!(node.link("b").await.expect("b").mtu, DEFAULT_MTU);

        node.set_up(a.index).await.expect("up");
        let busy = node
            .set_name(a.index, "d")
            .await
            .expect_err("up links keep their name");
        assert_eq!(busy.errno(), Some(libc::EBUSY));
        let down = node.link("b").await.expect("b");
        let unreachable = node
            .add_default_route(Ipv4Addr::new(10, 0, 0, 1), down.index)
            .await
            .expect_err("b is down");
        assert_eq!(unreachable.errno(), Some(libc::ENETDOWN));

        let task = PathBuf::from("/run/task/netns");
        let gone = node.enter(&task).await.expect_err("no such namespace");
        assert_eq!(gone.kind(), NetlinkErrorKind::NotFound);
        node.add_netns(&task);
        node.move_link(down.index, &task).await.expect("moved");
        assert_eq!(
            node.find(&Some(task.clone()), "b").map(|b| b.up),
            Some(false)
        );
        assert_eq!(node.link_names(&None), ["lo", "a"]);
        node.delete_link(a.index).await.expect("deleted");
        assert_eq!(node.link_names(&Some(task)), ["lo"], "the peer went too");
        assert_eq!(node.link_names(&None), ["lo"]);
    }
}
