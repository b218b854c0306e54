//! [`NetlinkClient`]: the kernel's [`Netlink`], over rtnetlink. A
//! connection is a netlink socket, bound for life to the namespace it was
//! opened in, and a task on the Tokio runtime that drives it.

use std::{
    fs::File,
    net::{IpAddr, Ipv4Addr},
    os::fd::AsRawFd,
    path::Path,
};

use futures_util::TryStreamExt;
use rtnetlink::{
    Handle, LinkMessageBuilder, LinkUnspec, LinkVeth, LinkVxlan, RouteMessageBuilder,
    packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage},
};

use super::{Link, Netlink, NetlinkError};

/// A connection to the kernel's netlink in one network namespace.
#[derive(Clone, Debug)]
pub struct NetlinkClient {
    handle: Handle,
}

impl NetlinkClient {
    /// A connection in the calling thread's namespace; must be called
    /// within a Tokio runtime, which then drives it.
    pub fn connect() -> Result<Self, NetlinkError> {
        let (connection, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(connection);
        Ok(Self { handle })
    }

    /// Sets attributes of link `index` (`change` starts from
    /// `LinkUnspec::new_with_index(index)`).
    async fn set_link(
        &self,
        index: u32,
        change: impl FnOnce(LinkMessageBuilder<LinkUnspec>) -> LinkMessageBuilder<LinkUnspec>,
    ) -> Result<(), NetlinkError> {
        self.handle
            .link()
            .set(change(LinkUnspec::new_with_index(index)).build())
            .execute()
            .await?;
        Ok(())
    }
}

/// Opens a connection in the namespace `netns` from a thread of its own,
/// which joins that namespace and ends: the socket stays there, and the
/// `runtime` drives it.
fn connect_in(
    netns: &File,
    runtime: &tokio::runtime::Handle,
) -> Result<NetlinkClient, NetlinkError> {
    // SAFETY: setns takes a valid namespace fd; it moves only this thread,
    // which ends once the socket is open.
    if unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    let _entered = runtime.enter();
    NetlinkClient::connect()
}

impl Netlink for NetlinkClient {
    async fn enter(&self, netns: &Path) -> Result<Self, NetlinkError> {
        let netns = File::open(netns)?;
        let runtime = tokio::runtime::Handle::current();
        let (sender, receiver) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            // The receiver waits below; it is gone only if that wait was
            // cancelled, and then nobody wants the connection.
            let _ = sender.send(connect_in(&netns, &runtime));
        });
        receiver
            .await
            .map_err(|_| std::io::Error::other("the thread entering the namespace panicked"))?
    }

    async fn link(&self, name: &str) -> Result<Link, NetlinkError> {
        let message = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute()
            .try_next()
            .await?
            .ok_or_else(|| NetlinkError::from_errno(libc::ENODEV))?;
        Ok(link_of(&message))
    }

    async fn add_veth(&self, name: &str, peer: &str, mtu: u32) -> Result<(), NetlinkError> {
        self.handle
            .link()
            .add(LinkVeth::new(name, peer).mtu(mtu).build())
            .execute()
            .await?;
        Ok(())
    }

    async fn add_vxlan(&self, name: &str, port: u16, mtu: u32) -> Result<(), NetlinkError> {
        self.handle
            .link()
            .add(
                LinkMessageBuilder::<LinkVxlan>::new(name)
                    .port(port)
                    .collect_metadata(true)
                    .learning(false)
                    .mtu(mtu)
                    .up()
                    .build(),
            )
            .execute()
            .await?;
        Ok(())
    }

    async fn move_link(&self, index: u32, netns: &Path) -> Result<(), NetlinkError> {
        let netns = File::open(netns)?;
        self.set_link(index, |link| link.setns_by_fd(netns.as_raw_fd()))
            .await
    }

    async fn set_name(&self, index: u32, name: &str) -> Result<(), NetlinkError> {
        self.set_link(index, |link| link.name(name)).await
    }

    async fn set_mtu(&self, index: u32, mtu: u32) -> Result<(), NetlinkError> {
        self.set_link(index, |link| link.mtu(mtu)).await
    }

    async fn set_up(&self, index: u32) -> Result<(), NetlinkError> {
        self.set_link(index, LinkMessageBuilder::up).await
    }

    async fn delete_link(&self, index: u32) -> Result<(), NetlinkError> {
        self.handle.link().del(index).execute().await?;
        Ok(())
    }

    async fn add_address(
        &self,
        index: u32,
        address: Ipv4Addr,
        prefix_len: u8,
    ) -> Result<(), NetlinkError> {
        self.handle
            .address()
            .add(index, IpAddr::V4(address), prefix_len)
            .execute()
            .await?;
        Ok(())
    }

    async fn add_default_route(&self, gateway: Ipv4Addr, index: u32) -> Result<(), NetlinkError> {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .output_interface(index)
            .build();
        self.handle.route().add(route).execute().await?;
        Ok(())
    }
}

/// What [`Link`] says of a link message (the kernel always sends the MTU;
/// 1500, Ethernet's, stands in if it did not).
fn link_of(message: &LinkMessage) -> Link {
    let mut link = Link {
        index: message.header.index,
        mtu: 1500,
        mac: None,
        is_veth: false,
    };
    for attribute in &message.attributes {
        match attribute {
            LinkAttribute::Mtu(mtu) => link.mtu = *mtu,
            LinkAttribute::Address(mac) => link.mac = <[u8; 6]>::try_from(mac.as_slice()).ok(),
            LinkAttribute::LinkInfo(infos) => {
                link.is_veth |= infos
                    .iter()
                    .any(|info| matches!(info, LinkInfo::Kind(InfoKind::Veth)));
            }
            _ => {}
        }
    }
    link
}
