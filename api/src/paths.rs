//! Endpoint paths and defaults shared by server and clients.

/// Default unix socket of `shoald`, like `/var/run/docker.sock`.
pub const DEFAULT_SOCKET: &str = "/run/shoal/shoald.sock";

/// Prefix of the shoal-only endpoints (not part of the Docker Engine API).
pub const SHOAL_PREFIX: &str = "/shoal/v1";

/// `GET`: this node's [`crate::status::NodeStatus`].
pub const NODE_STATUS: &str = "/shoal/v1/status";

/// `GET`/`HEAD`: Docker's liveness probe; answers `OK` with `API-Version`.
pub const PING: &str = "/_ping";

/// Docker Engine API version shoald declares on `/_ping`; the docker 28
/// client negotiates down to it.
pub const DOCKER_API_VERSION: &str = "1.41";
