//! Unpacking an image into a container's root filesystem
//! ([`ImageStore::unpack`]): layers extracted in order (plain or gzip'd
//! tar), OCI whiteouts (`.wh.<name>`, `.wh..wh..opq`) applied to what lower
//! layers left, and every entry's path checked so that none lands outside
//! the root, not even through a symlink an earlier entry made.

use std::{
    collections::HashSet,
    ffi::OsStr,
    fs::File,
    io::{self, BufReader, Read},
    path::{Component, Path, PathBuf},
};

use oci_spec::image::{ImageConfiguration, ImageManifest};

use super::{ImageError, ImageRuntimeConfig, ImageStore, io_err, normalize_reference};

impl ImageStore {
    /// Extracts the image's layers in order into `rootfs` (an empty or
    /// missing directory), applying OCI whiteouts, after verifying each
    /// blob's sha256 digest; returns its runtime config. Layers may be plain
    /// or gzip'd tar. Modes, ownership (when running as root), symlinks and
    /// hard links are kept; an entry that would land outside `rootfs` is
    /// refused.
    pub fn unpack(&self, reference: &str, rootfs: &Path) -> Result<ImageRuntimeConfig, ImageError> {
        let reference = normalize_reference(reference)?;
        let descriptor = self
            .manifest_descriptor(&reference)?
            .ok_or(ImageError::NotFound { reference })?;
        let manifest = ImageManifest::from_reader(self.read_verified(&descriptor)?.as_slice())?;
        let config =
            ImageConfiguration::from_reader(self.read_verified(manifest.config())?.as_slice())?;
        let layers = manifest
            .layers()
            .iter()
            .map(|layer| Ok((layer, self.verified_blob(layer)?)))
            .collect::<Result<Vec<_>, ImageError>>()?;

        prepare_rootfs(rootfs)?;
        let root = rootfs.canonicalize().map_err(io_err("resolving", rootfs))?;
        for (layer, path) in layers {
            let file = File::open(&path).map_err(io_err("opening", &path))?;
            let media_type = layer.media_type().to_string();
            let reader: Box<dyn Read> = if media_type.ends_with("gzip") {
                Box::new(flate2::read::GzDecoder::new(BufReader::new(file)))
            } else if media_type.ends_with("tar") {
                Box::new(BufReader::new(file))
            } else {
                return Err(ImageError::UnsupportedLayer { media_type });
            };
            extract_layer(reader, &root).map_err(|e| match e {
                LayerError::Io(source) => ImageError::Layer {
                    digest: layer.digest().to_string(),
                    source,
                },
                LayerError::Unsafe(path) => ImageError::UnsafeEntry { path },
            })?;
        }

        Ok(ImageRuntimeConfig::from_oci(config.config().as_ref()))
    }
}

/// Creates `rootfs`, or checks that it is an empty directory.
fn prepare_rootfs(rootfs: &Path) -> Result<(), ImageError> {
    match std::fs::read_dir(rootfs) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(ImageError::RootfsNotEmpty {
                    path: rootfs.to_path_buf(),
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::create_dir_all(rootfs).map_err(io_err("creating", rootfs))
        }
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => Err(ImageError::RootfsNotEmpty {
            path: rootfs.to_path_buf(),
        }),
        Err(source) => Err(ImageError::Io {
            op: "reading",
            path: rootfs.to_path_buf(),
            source,
        }),
    }
}

/// Why extracting one layer failed.
enum LayerError {
    Io(io::Error),
    Unsafe(PathBuf),
}

impl From<io::Error> for LayerError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

/// `path` (a tar entry's) as a relative path of normal components only;
/// leading `/` and `.` are dropped as tar does, `..` is refused.
fn entry_relative_path(path: &Path) -> Result<PathBuf, LayerError> {
    let mut relative = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => relative.push(part),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(LayerError::Unsafe(path.to_path_buf()));
            }
        }
    }
    Ok(relative)
}

/// `root/relative`'s parent, resolved, if it exists; refused when it
/// resolves (through symlinks) outside `root`, which is canonical.
fn resolved_parent(root: &Path, relative: &Path) -> Result<Option<PathBuf>, LayerError> {
    let parent = root.join(relative.parent().unwrap_or(Path::new("")));
    match parent.canonicalize() {
        Ok(resolved) if resolved.starts_with(root) => Ok(Some(resolved)),
        Ok(_) => Err(LayerError::Unsafe(relative.to_path_buf())),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Removes `path` (not following a final symlink), whatever it is.
fn remove_any(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Extracts one layer's tar stream into `root` (canonical), applying its
/// whiteouts to what earlier layers left there.
fn extract_layer(reader: impl Read, root: &Path) -> Result<(), LayerError> {
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_preserve_ownerships(running_as_root());
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(true);
    // Paths this layer created (with their ancestors): an opaque whiteout
    // hides only what lower layers had.
    let mut created: HashSet<PathBuf> = HashSet::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let relative = entry_relative_path(&entry.path()?)?;
        let Some(name) = relative.file_name().map(OsStr::to_os_string) else {
            continue;
        };
        let name = name.to_string_lossy();
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            let Some(parent) = resolved_parent(root, &relative)? else {
                continue;
            };
            if name == OPAQUE_WHITEOUT {
                let dir_relative = relative.parent().unwrap_or(Path::new(""));
                for child in std::fs::read_dir(&parent)? {
                    let child = child?;
                    if !created.contains(&dir_relative.join(child.file_name())) {
                        remove_any(&child.path())?;
                    }
                }
            } else if !hidden.is_empty() {
                remove_any(&parent.join(hidden))?;
            }
            continue;
        }
        // What a lower layer had at this path goes, unless both are
        // directories (their contents merge).
        if let Some(parent) = resolved_parent(root, &relative)? {
            let target = parent.join(&*name);
            if let Ok(existing) = std::fs::symlink_metadata(&target)
                && !(existing.is_dir() && entry.header().entry_type().is_dir())
            {
                remove_any(&target)?;
            }
        }
        if !entry.unpack_in(root)? {
            return Err(LayerError::Unsafe(relative));
        }
        for ancestor in relative.ancestors() {
            if !created.insert(ancestor.to_path_buf()) {
                break;
            }
        }
    }
    Ok(())
}

/// Whether this process may set file ownership (`chown` to any user).
fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use oci_spec::image::MediaType;

    use super::*;
    use crate::images::fixtures::{Entry, gzip, layer, store_image, tar_with};

    #[test]
    fn unpack_an_imported_image() {
        use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ImageStore::new(dir.path().join("images"));
        let tar = layer(&[
            Entry::Dir("etc", 0o755),
            Entry::File("etc/hostname", 0o640, b"demo\n"),
            Entry::Dir("bin", 0o700),
            Entry::File("bin/busybox", 0o4755, b"#!binary"),
            Entry::Symlink("bin/sh", "busybox"),
            Entry::Symlink("bin/abs", "/bin/busybox"),
            Entry::HardLink("bin/ls", "bin/busybox"),
        ]);
        store
            .import(&mut tar.as_slice(), "demo", "now")
            .expect("import");
        assert!(store.contains("demo").expect("contains"));
        assert!(store.contains("demo:latest").expect("contains"));
        assert!(!store.contains("demo:2").expect("contains"));

        let rootfs = dir.path().join("bundle/rootfs");
        let config = store.unpack("demo", &rootfs).expect("unpack");
        assert_eq!(config, ImageRuntimeConfig::default());
        assert_eq!(
            std::fs::read(rootfs.join("etc/hostname")).expect("file"),
            b"demo\n"
        );
        let mode = |p: &str| {
            std::fs::symlink_metadata(rootfs.join(p))
                .expect("metadata")
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(mode("etc/hostname"), 0o640);
        assert_eq!(mode("bin"), 0o700);
        assert_eq!(mode("bin/busybox"), 0o4755);
        assert_eq!(
            std::fs::read_link(rootfs.join("bin/sh")).expect("symlink"),
            Path::new("busybox")
        );
        assert_eq!(
            std::fs::read_link(rootfs.join("bin/abs")).expect("symlink"),
            Path::new("/bin/busybox")
        );
        let inode = |p: &str| std::fs::metadata(rootfs.join(p)).expect("metadata").ino();
        assert_eq!(inode("bin/ls"), inode("bin/busybox"));

        // Only into an empty directory; only images the store has.
        let again = store.unpack("demo", &rootfs).expect_err("not empty");
        assert!(
            matches!(again, ImageError::RootfsNotEmpty { .. }),
            "{again}"
        );
        let missing = store
            .unpack("other", &dir.path().join("other"))
            .expect_err("no such image");
        assert_eq!(missing.to_string(), "no such image: other:latest");
        assert!(!dir.path().join("other").exists());
    }

    #[test]
    fn whiteouts_hide_lower_layers_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ImageStore::new(dir.path().join("images"));
        let lower = layer(&[
            Entry::Dir("a", 0o755),
            Entry::File("a/keep", 0o644, b"keep"),
            Entry::File("a/gone", 0o644, b"gone"),
            Entry::Dir("b", 0o755),
            Entry::File("b/old", 0o644, b"old"),
            Entry::Dir("b/sub", 0o755),
            Entry::File("b/sub/deep", 0o644, b"deep"),
            Entry::Dir("c", 0o755),
            Entry::File("c/file", 0o644, b"c"),
            Entry::File("d", 0o644, b"a file, then a directory"),
        ]);
        let upper = layer(&[
            Entry::File("a/.wh.gone", 0o644, b""),
            // Written before the opaque marker of its directory: it stays.
            Entry::File("b/new", 0o644, b"new"),
            Entry::File("b/.wh..wh..opq", 0o644, b""),
            Entry::File(".wh.c", 0o644, b""),
            Entry::Dir("d", 0o755),
            Entry::File("d/inner", 0o644, b"inner"),
        ]);
        store_image(
            &store,
            "layered:1",
            &[
                (MediaType::ImageLayerGzip, gzip(&lower)),
                (MediaType::ImageLayer, upper),
            ],
            &["/bin/sh", "-c", "true"],
            &["PATH=/bin"],
        );
        let rootfs = dir.path().join("rootfs");
        let config = store.unpack("layered:1", &rootfs).expect("unpack");
        assert_eq!(config.cmd, ["/bin/sh", "-c", "true"]);
        assert_eq!(config.env, ["PATH=/bin"]);
        assert_eq!(config.working_dir, "/srv");
        let mut found: Vec<String> = Vec::new();
        let mut stack = vec![rootfs.clone()];
        while let Some(path) = stack.pop() {
            for child in std::fs::read_dir(&path).expect("read_dir") {
                let child = child.expect("entry").path();
                found.push(
                    child
                        .strip_prefix(&rootfs)
                        .expect("inside")
                        .display()
                        .to_string(),
                );
                if child.is_dir() {
                    stack.push(child);
                }
            }
        }
        found.sort();
        assert_eq!(found, ["a", "a/keep", "b", "b/new", "d", "d/inner"]);
    }

    #[test]
    fn entries_escaping_the_rootfs_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ImageStore::new(dir.path().join("images"));
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).expect("outside dir");

        let dotdot = tar_with("../escaped", b"x");
        store
            .import(&mut dotdot.as_slice(), "dotdot", "now")
            .expect("import");
        let error = store
            .unpack("dotdot", &dir.path().join("r1"))
            .expect_err("escapes");
        assert!(matches!(error, ImageError::UnsafeEntry { .. }), "{error}");
        assert!(!dir.path().join("escaped").exists());

        let through_symlink = layer(&[
            Entry::Symlink("link", outside.to_str().expect("utf-8")),
            Entry::File("link/pwned", 0o644, b"x"),
        ]);
        store
            .import(&mut through_symlink.as_slice(), "symlink", "now")
            .expect("import");
        assert!(store.unpack("symlink", &dir.path().join("r2")).is_err());
        let whiteout_through_symlink = layer(&[
            Entry::Symlink("link", outside.to_str().expect("utf-8")),
            Entry::File("link/.wh..wh..opq", 0o644, b""),
        ]);
        std::fs::write(outside.join("precious"), b"keep").expect("outside file");
        store
            .import(&mut whiteout_through_symlink.as_slice(), "whiteout", "now")
            .expect("import");
        let error = store
            .unpack("whiteout", &dir.path().join("r3"))
            .expect_err("escapes");
        assert!(matches!(error, ImageError::UnsafeEntry { .. }), "{error}");
        assert_eq!(
            std::fs::read_dir(&outside).expect("outside").count(),
            1,
            "nothing written or removed outside"
        );
    }
}
