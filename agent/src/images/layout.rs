//! Copying an image into the store from an OCI image layout (a directory as
//! `skopeo copy … oci:DIR` or `umoci` write it, or its tar archive), and the
//! blob writer that copy and registry pulls share: every blob is streamed to
//! a temporary file, hashed on the way, and only renamed into
//! `blobs/sha256/` when its digest and size match its descriptor.
//!
//! A layout may hold several images: shoal takes the only one, or the only
//! linux/amd64 one, following an image index to its linux/amd64 manifest.

use std::{
    fs::File,
    io::{self, Read, Write},
    path::{Path, PathBuf},
    sync::atomic::Ordering,
};

use oci_spec::image::{Arch, Descriptor, ImageConfiguration, ImageIndex, ImageManifest, Os};
use sha2::{Digest as _, Sha256};

use super::{
    ImageError, ImageStore, ImageSummary, TMP_SEQ, check_content, io_err, normalize_reference,
    ref_name, sha256_hex,
};

/// Media types of a single-platform image manifest (OCI, Docker schema 2).
pub(crate) const MANIFEST_MEDIA_TYPES: [&str; 2] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// Media types of a multi-platform index (OCI index, Docker manifest list).
pub(crate) const INDEX_MEDIA_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// Whether an index entry is marked linux/amd64.
fn is_linux_amd64(descriptor: &Descriptor) -> bool {
    descriptor
        .platform()
        .as_ref()
        .is_some_and(|p| *p.os() == Os::Linux && *p.architecture() == Arch::Amd64)
}

/// The linux/amd64 entry of an index's `manifests`, if any.
pub(crate) fn pick_platform(manifests: &[Descriptor]) -> Option<&Descriptor> {
    manifests.iter().find(|m| is_linux_amd64(m))
}

/// A blob being written into the store. [`BlobWriter::commit`] checks it
/// against its descriptor and moves it into place; dropped uncommitted, the
/// temporary file is removed.
#[derive(Debug)]
pub(crate) struct BlobWriter {
    descriptor: Descriptor,
    target: PathBuf,
    tmp: PathBuf,
    file: Option<File>,
    hasher: Sha256,
    written: u64,
}

impl Write for BlobWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("blob already committed"))?;
        let n = file.write(bytes)?;
        self.hasher.update(&bytes[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), Write::flush)
    }
}

impl BlobWriter {
    /// Checks digest and size, syncs, and renames the blob into place.
    pub(crate) fn commit(mut self) -> Result<(), ImageError> {
        let file = self.file.take().ok_or_else(|| ImageError::Corrupt {
            digest: self.descriptor.digest().to_string(),
            reason: "committed twice".into(),
        })?;
        check_content(
            &self.descriptor,
            std::mem::take(&mut self.hasher),
            self.written,
        )?;
        file.sync_all().map_err(io_err("syncing", &self.tmp))?;
        std::fs::rename(&self.tmp, &self.target).map_err(io_err("renaming into", &self.target))
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Removes a staging directory on drop.
struct Staging(PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl ImageStore {
    /// A writer for the blob `descriptor` names.
    pub(crate) fn blob_writer(&self, descriptor: &Descriptor) -> Result<BlobWriter, ImageError> {
        let target = self.blob_path(sha256_hex(descriptor)?);
        self.ensure_layout()?;
        let mut tmp = target.as_os_str().to_owned();
        tmp.push(format!(
            ".tmp-{}-{}",
            std::process::id(),
            TMP_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let tmp = PathBuf::from(tmp);
        let file = File::create(&tmp).map_err(io_err("creating", &tmp))?;
        Ok(BlobWriter {
            descriptor: descriptor.clone(),
            target,
            tmp,
            file: Some(file),
            hasher: Sha256::new(),
            written: 0,
        })
    }

    /// Whether the store has the blob `descriptor` names, of its size (its
    /// content is checked again when an image is unpacked).
    pub(crate) fn has_blob(&self, descriptor: &Descriptor) -> bool {
        sha256_hex(descriptor).is_ok_and(|hex| {
            std::fs::symlink_metadata(self.blob_path(hex))
                .is_ok_and(|m| m.is_file() && m.len() == descriptor.size())
        })
    }

    /// The `created` time of the stored image config `descriptor` names.
    pub(crate) fn config_created(&self, descriptor: &Descriptor) -> Option<String> {
        let path = self.blob_path(sha256_hex(descriptor).ok()?);
        ImageConfiguration::from_file(path).ok()?.created().clone()
    }

    /// Names the stored manifest `descriptor` (whose content is `manifest`)
    /// `reference`; returns the image's summary.
    pub(crate) fn finish_import(
        &self,
        descriptor: &Descriptor,
        manifest: &ImageManifest,
        reference: &str,
        created: &str,
    ) -> Result<ImageSummary, ImageError> {
        let tagged = Descriptor::new(
            descriptor.media_type().clone(),
            descriptor.size(),
            descriptor.digest().clone(),
        );
        self.tag(tagged, reference, created)?;
        Ok(ImageSummary {
            reference: reference.to_owned(),
            id: manifest.config().digest().to_string(),
            size: manifest.layers().iter().map(Descriptor::size).sum(),
            created: created.to_owned(),
        })
    }

    /// Copies the image of the OCI image layout in the directory `layout`
    /// into the store as `reference` (manifest, config and layers, each
    /// checked against its digest); returns its summary. A previous image of
    /// that name is replaced.
    pub fn import_layout(
        &self,
        layout: &Path,
        reference: &str,
        created: &str,
    ) -> Result<ImageSummary, ImageError> {
        let reference = normalize_reference(reference)?;
        let bad = |reason: String| ImageError::NotALayout { reason };
        let marker = layout.join("oci-layout");
        let marker: serde_json::Value = std::fs::read(&marker)
            .map_err(|e| bad(format!("{}: {e}", marker.display())))
            .and_then(|bytes| {
                serde_json::from_slice(&bytes)
                    .map_err(|e| bad(format!("{}: {e}", marker.display())))
            })?;
        if !marker["imageLayoutVersion"].is_string() {
            return Err(bad("oci-layout has no imageLayoutVersion".into()));
        }
        let index_path = layout.join("index.json");
        let index = ImageIndex::from_file(&index_path)
            .map_err(|e| bad(format!("{}: {e}", index_path.display())))?;

        let descriptor = select_manifest(&index, |d| read_layout_blob(layout, d))?;
        let manifest_bytes = read_layout_blob(layout, &descriptor)?;
        let manifest = ImageManifest::from_reader(manifest_bytes.as_slice())?;
        for blob in std::iter::once(manifest.config()).chain(manifest.layers()) {
            if self.has_blob(blob) {
                continue;
            }
            let path = layout_blob_path(layout, blob)?;
            let mut source = File::open(&path).map_err(io_err("opening", &path))?;
            let mut writer = self.blob_writer(blob)?;
            io::copy(&mut source, &mut writer).map_err(io_err("copying", &path))?;
            writer.commit()?;
        }
        let mut writer = self.blob_writer(&descriptor)?;
        writer
            .write_all(&manifest_bytes)
            .map_err(io_err("writing", &self.root))?;
        writer.commit()?;
        self.finish_import(&descriptor, &manifest, &reference, created)
    }

    /// [`import_layout`](Self::import_layout) from a tar archive of the
    /// layout (`oci-archive`, or the directory as `shoal image import`
    /// sends it). Only its directories and regular files are read.
    pub fn import_layout_archive(
        &self,
        archive: &mut impl Read,
        reference: &str,
        created: &str,
    ) -> Result<ImageSummary, ImageError> {
        let reference = normalize_reference(reference)?;
        self.ensure_layout()?;
        let staging = Staging(self.root.join(format!(
            "staging/{}-{}",
            std::process::id(),
            TMP_SEQ.fetch_add(1, Ordering::Relaxed)
        )));
        std::fs::create_dir_all(&staging.0).map_err(io_err("creating", &staging.0))?;
        let not_tar = |e: io::Error| ImageError::NotATarball {
            reason: e.to_string(),
        };
        let mut tar = tar::Archive::new(archive);
        for entry in tar.entries().map_err(not_tar)? {
            let mut entry = entry.map_err(not_tar)?;
            let kind = entry.header().entry_type();
            if kind.is_file() || kind.is_dir() {
                entry
                    .unpack_in(&staging.0)
                    .map_err(io_err("extracting into", &staging.0))?;
            }
        }
        self.import_layout(&staging.0, &reference, created)
    }
}

/// Where the layout keeps the blob `descriptor` names.
fn layout_blob_path(layout: &Path, descriptor: &Descriptor) -> Result<PathBuf, ImageError> {
    Ok(layout.join("blobs/sha256").join(sha256_hex(descriptor)?))
}

/// A (small) blob of the layout, checked against `descriptor`.
fn read_layout_blob(layout: &Path, descriptor: &Descriptor) -> Result<Vec<u8>, ImageError> {
    let path = layout_blob_path(layout, descriptor)?;
    let bytes = std::fs::read(&path).map_err(io_err("reading", &path))?;
    check_content(
        descriptor,
        Sha256::new_with_prefix(&bytes),
        bytes.len() as u64,
    )?;
    Ok(bytes)
}

/// The descriptor of the one image manifest `index` leads to: its only
/// entry, or its only linux/amd64 one; an index entry is followed (read
/// with `read`) to its linux/amd64 manifest.
fn select_manifest(
    index: &ImageIndex,
    read: impl Fn(&Descriptor) -> Result<Vec<u8>, ImageError>,
) -> Result<Descriptor, ImageError> {
    let bad = |reason: String| ImageError::NotALayout { reason };
    let images: Vec<&Descriptor> = index
        .manifests()
        .iter()
        .filter(|d| {
            let media_type = d.media_type().to_string();
            MANIFEST_MEDIA_TYPES.contains(&media_type.as_str())
                || INDEX_MEDIA_TYPES.contains(&media_type.as_str())
        })
        .collect();
    let chosen = match images.as_slice() {
        [] => return Err(bad("its index.json lists no image manifest".into())),
        [only] => *only,
        several => {
            let amd64: Vec<&Descriptor> = several
                .iter()
                .copied()
                .filter(|d| is_linux_amd64(d))
                .collect();
            let [chosen] = amd64.as_slice() else {
                let names: Vec<&str> = several.iter().filter_map(|d| ref_name(d)).collect();
                return Err(bad(format!(
                    "it holds {} images {names:?}, not one marked linux/amd64",
                    several.len()
                )));
            };
            *chosen
        }
    };
    if !INDEX_MEDIA_TYPES.contains(&chosen.media_type().to_string().as_str()) {
        return Ok(chosen.clone());
    }
    let nested = ImageIndex::from_reader(read(chosen)?.as_slice())?;
    let manifest = pick_platform(nested.manifests())
        .ok_or_else(|| bad("its image index has no linux/amd64 manifest".into()))?;
    if !MANIFEST_MEDIA_TYPES.contains(&manifest.media_type().to_string().as_str()) {
        return Err(bad(format!(
            "its linux/amd64 entry is a {}, not an image manifest",
            manifest.media_type()
        )));
    }
    Ok(manifest.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::fixtures::{Entry, gzip, layer, store_image};
    use oci_spec::image::{ImageIndexBuilder, MediaType, PlatformBuilder};

    /// A layout (written by a second store) holding `app:1`, one gzip'd
    /// layer with `/hello` saying `greeting`.
    fn source_layout(dir: &Path, greeting: &[u8]) -> (ImageStore, Descriptor) {
        let source = ImageStore::new(dir.join("layout"));
        let hello = layer(&[Entry::File("hello", 0o644, greeting)]);
        let manifest = store_image(
            &source,
            "app:1",
            &[(MediaType::ImageLayerGzip, gzip(&hello))],
            &["/hello"],
            &[],
        );
        (source, manifest)
    }

    fn blob_dir_entries(store: &ImageStore) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(store.root.join("blobs/sha256"))
            .map(|dir| {
                dir.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    #[test]
    fn a_layout_directory_is_copied_in() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (source, _) = source_layout(dir.path(), b"from a layout");
        let store = ImageStore::new(dir.path().join("store"));
        let summary = store
            .import_layout(&source.root, "copied", "2026-11-23T00:00:00Z")
            .expect("import");
        assert_eq!(summary.reference, "copied:latest");
        assert_eq!(store.list().expect("list"), vec![summary.clone()]);
        assert_eq!(
            summary.id,
            source.list().expect("list")[0].id,
            "the same config"
        );
        let rootfs = dir.path().join("rootfs");
        let config = store.unpack("copied", &rootfs).expect("unpack");
        assert_eq!(config.cmd, ["/hello"]);
        assert_eq!(
            std::fs::read(rootfs.join("hello")).expect("file"),
            b"from a layout"
        );
        assert_eq!(blob_dir_entries(&store), blob_dir_entries(&source));
    }

    #[test]
    fn an_index_is_followed_to_its_linux_amd64_manifest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (source, amd64) = source_layout(dir.path(), b"amd64");
        let arm = store_image(
            &source,
            "arm:1",
            &[(
                MediaType::ImageLayer,
                layer(&[Entry::File("hello", 0o644, b"arm64")]),
            )],
            &[],
            &[],
        );
        let platform = |arch: Arch| {
            PlatformBuilder::default()
                .os(Os::Linux)
                .architecture(arch)
                .build()
                .expect("platform")
        };
        let mut arm = Descriptor::new(MediaType::ImageManifest, arm.size(), arm.digest().clone());
        arm.set_platform(Some(platform(Arch::ARM64)));
        let mut amd64 = Descriptor::new(
            MediaType::ImageManifest,
            amd64.size(),
            amd64.digest().clone(),
        );
        amd64.set_platform(Some(platform(Arch::Amd64)));
        let nested = ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(vec![arm, amd64])
            .build()
            .expect("index");
        let nested = source
            .write_blob(
                MediaType::ImageIndex,
                nested.to_string().expect("json").as_bytes(),
            )
            .expect("index blob");
        let top = ImageIndexBuilder::default()
            .schema_version(2u32)
            .manifests(vec![nested])
            .build()
            .expect("index");
        std::fs::write(source.index_path(), top.to_string().expect("json")).expect("index.json");

        let store = ImageStore::new(dir.path().join("store"));
        store
            .import_layout(&source.root, "multi:1", "now")
            .expect("import");
        let rootfs = dir.path().join("rootfs");
        store.unpack("multi:1", &rootfs).expect("unpack");
        assert_eq!(std::fs::read(rootfs.join("hello")).expect("file"), b"amd64");
    }

    #[test]
    fn a_corrupt_or_missing_layout_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (source, _) = source_layout(dir.path(), b"hello");
        let store = ImageStore::new(dir.path().join("store"));

        let error = store
            .import_layout(&dir.path().join("nowhere"), "x", "now")
            .expect_err("no layout");
        assert!(
            error
                .to_string()
                .starts_with("not an importable OCI image layout"),
            "{error}"
        );

        // Corrupt the layer (the largest blob).
        let blobs = source.root.join("blobs/sha256");
        let layer = std::fs::read_dir(&blobs)
            .expect("blobs")
            .map(|e| e.expect("entry").path())
            .max_by_key(|p| std::fs::metadata(p).expect("metadata").len())
            .expect("a blob");
        let mut bytes = std::fs::read(&layer).expect("layer");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&layer, bytes).expect("corrupt");
        let error = store
            .import_layout(&source.root, "copied", "now")
            .expect_err("corrupt");
        assert!(
            matches!(&error, ImageError::Corrupt { digest, .. } if layer.ends_with(&digest["sha256:".len()..])),
            "{error}"
        );
        assert!(!store.contains("copied").expect("contains"));
        assert!(
            blob_dir_entries(&store).iter().all(|n| !n.contains(".tmp")),
            "no temporary file left: {:?}",
            blob_dir_entries(&store)
        );
    }

    #[test]
    fn a_layout_archive_is_imported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (source, _) = source_layout(dir.path(), b"archived");
        let mut builder = tar::Builder::new(Vec::new());
        builder
            .append_dir_all(".", &source.root)
            .expect("archive the layout");
        let archive = builder.into_inner().expect("archive");
        let store = ImageStore::new(dir.path().join("store"));
        store
            .import_layout_archive(&mut archive.as_slice(), "archived:2", "now")
            .expect("import");
        let rootfs = dir.path().join("rootfs");
        store.unpack("archived:2", &rootfs).expect("unpack");
        assert_eq!(
            std::fs::read(rootfs.join("hello")).expect("file"),
            b"archived"
        );
        assert_eq!(
            std::fs::read_dir(store.root.join("staging"))
                .expect("staging")
                .count(),
            0,
            "staging is cleaned up"
        );
        let error = store
            .import_layout_archive(&mut b"not a tar".as_slice(), "x:1", "now")
            .expect_err("garbage");
        assert!(!store.contains("x:1").expect("contains"), "{error}");
    }
}
