//! All of the agent's netlink (DESIGN.md §4, "Netlink"): the few operations
//! on links, addresses and routes the node needs, as the trait [`Netlink`]
//! (one connection into one network namespace), implemented for the kernel
//! by [`NetlinkClient`] over rtnetlink and, in unit tests, by a fake that
//! models each namespace in memory (`fake`).
//!
//! Each operation does one thing and fails as the kernel does, with its
//! errno ([`NetlinkError::kind`]). Idempotence (the agent may restart at any
//! time) is the callers': they match on the kind, for example
//! [`NetlinkErrorKind::AlreadyExists`] when creating what a previous run
//! created.

mod client;
#[cfg(test)]
pub mod fake;

use std::{net::Ipv4Addr, num::NonZeroI32, path::Path};

pub use client::NetlinkClient;

/// A netlink connection into one network namespace.
///
/// Links are named by their ifindex in that namespace, except for
/// [`Netlink::link`], which finds one by name.
pub trait Netlink: Sized + Send + Sync {
    /// A connection of the same kind into the namespace bound at `netns`
    /// (a task's).
    fn enter(&self, netns: &Path) -> impl Future<Output = Result<Self, NetlinkError>> + Send;

    /// The link called `name`. Not found: [`NetlinkErrorKind::NotFound`].
    fn link(&self, name: &str) -> impl Future<Output = Result<Link, NetlinkError>> + Send;

    /// Creates a veth pair, down: `name` with `mtu`, and its `peer` with
    /// the default MTU. Either name taken: [`NetlinkErrorKind::AlreadyExists`].
    fn add_veth(
        &self,
        name: &str,
        peer: &str,
        mtu: u32,
    ) -> impl Future<Output = Result<(), NetlinkError>> + Send;

    /// Creates a flow-based (`external`) VXLAN device on UDP `port`, without
    /// learning, with `mtu`, up. Name taken: [`NetlinkErrorKind::AlreadyExists`].
    fn add_vxlan(
        &self,
        name: &str,
        port: u16,
        mtu: u32,
    ) -> impl Future<Output = Result<(), NetlinkError>> + Send;

    /// Moves link `index` into the namespace bound at `netns`; it arrives
    /// down and without addresses, as the kernel moves links.
    fn move_link(
        &self,
        index: u32,
        netns: &Path,
    ) -> impl Future<Output = Result<(), NetlinkError>> + Send;

    /// Renames link `index` (which must be down) to `name`.
    fn set_name(
        &self,
        index: u32,
        name: &str,
    ) -> impl Future<Output = Result<(), NetlinkError>> + Send;

    /// Sets link `index`'s MTU.
    fn set_mtu(
        &self,
        index: u32,
        mtu: u32,
    ) -> impl Future<Output = Result<(), NetlinkError>> + Send;

    /// Brings link `index` up.
    fn set_up(&self, index: u32) -> impl Future<Output = Result<(), NetlinkError>> + Send;

    /// Deletes link `index` (a veth's peer goes with it).
    fn delete_link(&self, index: u32) -> impl Future<Output = Result<(), NetlinkError>> + Send;

    /// Gives link `index` the address `address/prefix_len`. Already there:
    /// [`NetlinkErrorKind::AlreadyExists`].
    fn add_address(
        &self,
        index: u32,
        address: Ipv4Addr,
        prefix_len: u8,
    ) -> impl Future<Output = Result<(), NetlinkError>> + Send;

    /// Adds the default route through `gateway` on link `index` (which must
    /// be up, with an address on the gateway's subnet). A default route
    /// already there: [`NetlinkErrorKind::AlreadyExists`].
    fn add_default_route(
        &self,
        gateway: Ipv4Addr,
        index: u32,
    ) -> impl Future<Output = Result<(), NetlinkError>> + Send;
}

/// A link as [`Netlink::link`] finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// Its ifindex in its namespace.
    pub index: u32,
    /// Its MTU.
    pub mtu: u32,
    /// Its MAC address, if it has an Ethernet one.
    pub mac: Option<[u8; 6]>,
    /// Whether it is one side of a veth pair.
    pub is_veth: bool,
}

/// Why a netlink operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The kernel refused the request (its errno is in the message), or
    /// answered what rtnetlink could not read.
    #[error(transparent)]
    Request(#[from] rtnetlink::Error),
    /// A system call around the request failed: opening a netlink socket
    /// or a namespace, or entering one.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What a [`NetlinkError`] means for a caller that wants to be idempotent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetlinkErrorKind {
    /// What was to be created is there (`EEXIST`).
    AlreadyExists,
    /// What was named is not there: no such link (`ENODEV`), namespace
    /// (`ENOENT`) or route (`ESRCH`).
    NotFound,
    /// Anything else.
    Other,
}

impl NetlinkError {
    /// The kernel's refusal with `errno`, as rtnetlink reports it.
    #[must_use]
    pub fn from_errno(errno: i32) -> Self {
        let mut message = rtnetlink::packet_core::ErrorMessage::default();
        message.code = NonZeroI32::new(-errno);
        Self::Request(rtnetlink::Error::NetlinkError(message))
    }

    /// The errno the kernel answered with, if it answered with one.
    #[must_use]
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Request(rtnetlink::Error::NetlinkError(message)) => {
                message.code.map(|code| code.get().abs())
            }
            Self::Request(_) => None,
            Self::Io(error) => error.raw_os_error(),
        }
    }

    /// What the error means (from [`Self::errno`]).
    #[must_use]
    pub fn kind(&self) -> NetlinkErrorKind {
        match self.errno() {
            Some(libc::EEXIST) => NetlinkErrorKind::AlreadyExists,
            Some(libc::ENODEV | libc::ENOENT | libc::ESRCH) => NetlinkErrorKind::NotFound,
            _ => NetlinkErrorKind::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_come_from_the_errno() {
        let exists = NetlinkError::from_errno(libc::EEXIST);
        assert_eq!(exists.errno(), Some(libc::EEXIST));
        assert_eq!(exists.kind(), NetlinkErrorKind::AlreadyExists);
        assert!(exists.to_string().contains("File exists"), "{exists}");
        assert_eq!(
            NetlinkError::from_errno(libc::ENODEV).kind(),
            NetlinkErrorKind::NotFound
        );
        let missing_netns = NetlinkError::from(std::io::Error::from_raw_os_error(libc::ENOENT));
        assert_eq!(missing_netns.kind(), NetlinkErrorKind::NotFound);
        assert_eq!(
            NetlinkError::from_errno(libc::EPERM).kind(),
            NetlinkErrorKind::Other
        );
        assert_eq!(
            NetlinkError::Request(rtnetlink::Error::RequestFailed).errno(),
            None
        );
    }
}
