//! `<data-dir>/dataplane.json`: what the last run attached where, so the next
//! run can tell whether the pinned links are its own (same object, same
//! interface) and can be reused as they are.

use std::{io, path::Path};

use aya::programs::XdpMode;
use serde::{Deserialize, Serialize};

use super::DataplaneError;

/// The attach record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachRecord {
    /// SHA-256 of the object the pinned programs came from.
    pub object_sha256: String,
    /// The underlay interface name.
    pub iface: String,
    /// Its index when attached: a recreated interface gets a new one.
    pub ifindex: u32,
    /// `native` or `generic`.
    pub xdp_mode: String,
}

impl AttachRecord {
    /// The XDP mode of the recorded attachment.
    pub fn xdp_mode(&self) -> XdpMode {
        if self.xdp_mode == "generic" {
            XdpMode::Skb
        } else {
            XdpMode::Driver
        }
    }

    /// Reads the record; `None` when there is none. An unreadable record is
    /// treated as none (the pins are then replaced, not trusted).
    pub fn read(path: &Path) -> Result<Option<Self>, DataplaneError> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(DataplaneError::Io {
                op: "reading",
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Writes the record atomically (temp file, fsync, rename).
    pub fn write(&self, path: &Path) -> Result<(), DataplaneError> {
        let io_err = |op| {
            move |source| DataplaneError::Io {
                op,
                path: path.to_path_buf(),
                source,
            }
        };
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| io_err("encoding")(io::Error::new(io::ErrorKind::InvalidData, e)))?;
        {
            use std::io::Write as _;
            let mut file = std::fs::File::create(&tmp).map_err(io_err("creating"))?;
            file.write_all(&bytes).map_err(io_err("writing"))?;
            file.sync_all().map_err(io_err("syncing"))?;
        }
        std::fs::rename(&tmp, path).map_err(io_err("renaming into"))
    }

    /// Removes the record.
    pub fn remove(path: &Path) -> Result<(), DataplaneError> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(DataplaneError::Io {
                op: "removing",
                path: path.to_path_buf(),
                source: e,
            }),
            _ => Ok(()),
        }
    }
}
