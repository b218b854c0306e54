//! What the managers want of this node, as the dispatcher's `Assignments`
//! stream last said it: the node's own tasks ([`Assignments`]) and the
//! swarm-wide overlay directory ([`Directory`]). A leaf: the assignment
//! follower writes these, the executor, the overlay data plane and the DNS
//! resolvers read them, and none of those import each other for it.

use std::collections::BTreeMap;

use shoal_api::service::{OverlayEndpoint, ServiceVip, TaskAssignment};

/// The node's assignments as the managers last sent them: `None` until the
/// first full set arrived.
pub type Assignments = Option<BTreeMap<String, TaskAssignment>>;

/// What the swarm's overlays hold, as the managers announce it: every task
/// address and every service VIP. The overlay data plane and the task DNS
/// resolvers read it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Directory {
    /// Every overlay endpoint, by [`OverlayEndpoint::key`].
    pub endpoints: BTreeMap<String, OverlayEndpoint>,
    /// Every service VIP, by [`ServiceVip::key`].
    pub vips: BTreeMap<String, ServiceVip>,
}
