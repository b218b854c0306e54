//! The node's swarm credentials and membership record under
//! `<data-dir>/swarm/`: CA certificate, node certificate, node key (mode
//! 0600) and `membership.json`, each written atomically and fsync'd.

use std::{os::unix::fs::PermissionsExt, path::Path};

use shoal_manager::ca::NodeCredentials;
use tracing::warn;

use super::{Membership, Swarm, SwarmError};

pub(super) const CA_CERT: &str = "ca.crt";
pub(super) const NODE_CERT: &str = "node.crt";
pub(super) const NODE_KEY: &str = "node.key";
pub(super) const MEMBERSHIP: &str = "membership.json";

pub(super) fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> SwarmError + 'a {
    move |source| SwarmError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` atomically with `mode`, fsync'd.
pub(super) fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), SwarmError> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp).map_err(io_err("creating", &tmp))?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io_err("chmod", &tmp))?;
    file.write_all(bytes).map_err(io_err("writing", &tmp))?;
    file.sync_all().map_err(io_err("syncing", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err("renaming into", path))
}

pub(super) fn read_file(path: &Path) -> Result<String, SwarmError> {
    std::fs::read_to_string(path).map_err(io_err("reading", path))
}

impl Swarm {
    pub(super) fn persist(
        &self,
        membership: &Membership,
        creds: &NodeCredentials,
        ca_pem: &str,
    ) -> Result<(), SwarmError> {
        let dir = &self.facts.dir;
        std::fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io_err("chmod", dir))?;
        write_file(&dir.join(CA_CERT), ca_pem.as_bytes(), 0o644)?;
        write_file(&dir.join(NODE_CERT), creds.cert_pem.as_bytes(), 0o644)?;
        write_file(&dir.join(NODE_KEY), creds.key_pem.as_bytes(), 0o600)?;
        let json = serde_json::to_vec_pretty(membership)
            .map_err(|e| SwarmError::InvalidRequest(e.to_string()))?;
        write_file(&dir.join(MEMBERSHIP), &json, 0o600)
    }

    /// Removes everything the node keeps about its swarm.
    pub(super) fn forget(&self) {
        if let Err(error) = std::fs::remove_dir_all(&self.facts.dir)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            warn!(%error, dir = %self.facts.dir.display(), "removing swarm state");
        }
    }
}
