//! The bpffs mount that holds the pins.

use std::{ffi::CString, io, os::unix::ffi::OsStrExt, path::Path};

use tracing::info;

use super::DataplaneError;

/// `BPF_FS_MAGIC` from `linux/magic.h`.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// Whether `path` is the root of a mounted bpffs.
fn is_bpffs(path: &Path) -> io::Result<bool> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `statfs` is plain data; zeroed is a valid value to be overwritten.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid C string and a pointer to a live `statfs`.
    if unsafe { libc::statfs(c_path.as_ptr(), &raw mut stat) } != 0 {
        return Err(io::Error::last_os_error());
    }
    #[expect(
        clippy::useless_conversion,
        reason = "f_type is i64 on x86_64, narrower elsewhere"
    )]
    let f_type = i64::from(stat.f_type);
    Ok(f_type == BPF_FS_MAGIC)
}

/// Mounts bpffs at `mount_point` unless one is mounted there already, as
/// cilium-agent does on hosts where systemd did not.
pub fn ensure_bpffs_mounted(mount_point: &Path) -> Result<(), DataplaneError> {
    let io_err = |op| {
        move |source| DataplaneError::Io {
            op,
            path: mount_point.to_path_buf(),
            source,
        }
    };
    std::fs::create_dir_all(mount_point).map_err(io_err("creating"))?;
    if is_bpffs(mount_point).map_err(io_err("statfs"))? {
        return Ok(());
    }
    let target = CString::new(mount_point.as_os_str().as_bytes())
        .map_err(|e| io_err("mounting bpffs at")(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
    // SAFETY: all arguments are valid NUL-terminated strings; data is a C string.
    let rc = unsafe {
        libc::mount(
            c"bpf".as_ptr(),
            target.as_ptr(),
            c"bpf".as_ptr(),
            0,
            c"mode=0700".as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(io_err("mounting bpffs at")(io::Error::last_os_error()));
    }
    info!(mount_point = %mount_point.display(), "mounted bpffs");
    Ok(())
}

/// Removes a node's pin directory and everything pinned in it, then the
/// shared `shoal` parent if no other node's pins are left.
pub fn remove_pin_dir(pin_dir: &Path) -> Result<(), DataplaneError> {
    match std::fs::remove_dir_all(pin_dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(DataplaneError::Io {
                op: "removing pin directory",
                path: pin_dir.to_path_buf(),
                source: e,
            });
        }
        _ => {}
    }
    if let Some(parent) = pin_dir.parent() {
        // Fails while another node still has pins there: that is fine.
        let _ = std::fs::remove_dir(parent);
    }
    Ok(())
}
