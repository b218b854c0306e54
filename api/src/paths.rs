//! Endpoint paths and defaults shared by server and clients.

/// Default unix socket of `shoald`, like `/var/run/docker.sock`.
pub const DEFAULT_SOCKET: &str = "/run/shoal/shoald.sock";

/// `GET`: this node's [`crate::status::NodeStatus`].
pub const NODE_STATUS: &str = "/shoal/v1/status";

/// `POST ?reference=NAME:TAG`: the body is a tar archive of an OCI image
/// layout, whose image the node copies into its store.
pub const IMAGE_LOAD_LAYOUT: &str = "/shoal/v1/images/load";

/// `GET`/`HEAD`: Docker's liveness probe; answers `OK` with `API-Version`.
pub const PING: &str = "/_ping";

/// Docker Engine API version shoald declares on `/_ping`; the docker 28
/// client negotiates down to it.
pub const DOCKER_API_VERSION: &str = "1.41";
