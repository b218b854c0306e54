//! Who this node is: its persistent node ID, hostname and default address.

use std::{io, net::IpAddr, path::Path};

use anyhow::{Context, Result, bail};
use shoal_api::id::ObjectId;

/// Reads `<data-dir>/node-id`, or creates it with a fresh ID.
pub fn load_or_create_node_id(data_dir: &Path) -> Result<ObjectId> {
    let path = data_dir.join("node-id");
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().with_context(|| {
            format!(
                "{} is corrupt; remove it to get a new node ID",
                path.display()
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let id = ObjectId::generate();
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, format!("{id}\n"))
                .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
                .and_then(|()| std::fs::rename(&tmp, &path))
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(id)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The host name of this node's UTS namespace.
pub fn hostname() -> Result<String> {
    let name = nix::unistd::gethostname().context("gethostname")?;
    name.into_string()
        .map_err(|raw| anyhow::anyhow!("hostname {} is not UTF-8", raw.to_string_lossy()))
}

/// The first IPv4 address on `iface`, the default advertise address.
pub fn first_ipv4(iface: &str) -> Result<IpAddr> {
    for ifaddr in nix::ifaddrs::getifaddrs().context("listing interface addresses")? {
        if ifaddr.interface_name != iface {
            continue;
        }
        if let Some(sin) = ifaddr.address.as_ref().and_then(|a| a.as_sockaddr_in()) {
            return Ok(IpAddr::V4(sin.ip()));
        }
    }
    bail!("interface {iface} has no IPv4 address: pass --advertise-addr")
}
