//! Endpoint paths and defaults shared by server and clients.

/// Default unix socket of `shoald`, like `/var/run/docker.sock`.
pub const DEFAULT_SOCKET: &str = "/run/shoal/shoald.sock";

/// `GET`: this node's [`crate::status::NodeStatus`].
pub const NODE_STATUS: &str = "/shoal/v1/status";

/// `GET`/`HEAD`: Docker's liveness probe; answers `OK` with `API-Version`.
pub const PING: &str = "/_ping";

/// Docker Engine API version shoald declares on `/_ping`; the docker 28
/// client negotiates down to it.
pub const DOCKER_API_VERSION: &str = "1.41";
