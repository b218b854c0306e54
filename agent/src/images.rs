//! The node's image store: an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/…`) under the data dir, as `skopeo`/`umoci` read it.
//!
//! [`ImageStore::import`] turns a root filesystem tarball into a one-layer
//! image (like `docker import`): the tarball becomes an uncompressed layer,
//! plus an image config and a manifest, and `index.json` names the manifest
//! with the `org.opencontainers.image.ref.name` annotation (`name:tag`).
//! Every file is written to a temporary name, fsync'd and renamed, so a crash
//! leaves either the old image or the new one.

use std::{
    collections::HashMap,
    fs::File,
    io::{self, Read, Write},
    path::{Path, PathBuf},
};

use oci_spec::image::{
    ANNOTATION_CREATED, ANNOTATION_REF_NAME, Arch, Descriptor, ImageConfigurationBuilder,
    ImageIndex, ImageIndexBuilder, ImageManifestBuilder, MediaType, Os, RootFsBuilder,
};
use sha2::{Digest as _, Sha256};

/// Why an image operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The reference is not `name[:tag]`.
    #[error("invalid reference format: {reference:?} (expected name[:tag], lowercase)")]
    InvalidReference {
        /// What was given.
        reference: String,
    },
    /// The tarball is not a tar archive.
    #[error("not a tar archive: {reason}")]
    NotATarball {
        /// What was wrong with it.
        reason: String,
    },
    /// A filesystem operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Building or reading OCI metadata failed.
    #[error("OCI metadata: {0}")]
    Oci(#[from] oci_spec::OciSpecError),
}

/// An image as `image ls` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSummary {
    /// `name:tag`.
    pub reference: String,
    /// `sha256:…` of the image config (Docker's image ID).
    pub id: String,
    /// Bytes of the layers.
    pub size: u64,
    /// RFC 3339 creation time, when recorded.
    pub created: String,
}

/// The store of one node.
#[derive(Clone, Debug)]
pub struct ImageStore {
    root: PathBuf,
}

/// `name[:tag]` with the tag defaulting to `latest`, as Docker normalises it.
pub fn normalize_reference(reference: &str) -> Result<String, ImageError> {
    let invalid = || ImageError::InvalidReference {
        reference: reference.to_owned(),
    };
    let (name, tag) = match reference.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, tag),
        _ => (reference, "latest"),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 255
        && name.split('/').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && part
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric())
        });
    let tag_ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && tag
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    if name_ok && tag_ok {
        Ok(format!("{name}:{tag}"))
    } else {
        Err(invalid())
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ImageError + 'a {
    move |source| ImageError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Checks that `header` (the first 512 bytes) is a tar header: the `ustar`
/// magic and a valid header checksum.
fn check_tar_header(header: &[u8]) -> Result<(), ImageError> {
    let bad = |reason: &str| ImageError::NotATarball {
        reason: reason.to_owned(),
    };
    if header.len() < 512 {
        return Err(bad("shorter than one tar header"));
    }
    if &header[257..262] != b"ustar" {
        return Err(bad("no ustar magic in the first header"));
    }
    let recorded = std::str::from_utf8(&header[148..156])
        .ok()
        .map(|s| s.trim_matches(|c: char| c == '\0' || c == ' '))
        .and_then(|s| u32::from_str_radix(s, 8).ok())
        .ok_or_else(|| bad("unreadable header checksum"))?;
    let computed: u32 = header[..512]
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                u32::from(b' ')
            } else {
                u32::from(b)
            }
        })
        .sum();
    if recorded == computed {
        Ok(())
    } else {
        Err(bad("header checksum mismatch"))
    }
}

impl ImageStore {
    /// The store under `root` (created on first write).
    #[must_use]
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn blob_path(&self, hex: &str) -> PathBuf {
        self.root.join("blobs/sha256").join(hex)
    }

    /// Writes `bytes` as a blob; returns its descriptor.
    fn write_blob(&self, media_type: MediaType, bytes: &[u8]) -> Result<Descriptor, ImageError> {
        let hex = format!("{:x}", Sha256::digest(bytes));
        write_atomic(&self.blob_path(&hex), bytes)?;
        let digest: oci_spec::image::Digest = format!("sha256:{hex}").parse()?;
        Ok(Descriptor::new(media_type, bytes.len() as u64, digest))
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    fn index(&self) -> Result<ImageIndex, ImageError> {
        let path = self.index_path();
        if path.exists() {
            Ok(ImageIndex::from_file(&path)?)
        } else {
            Ok(ImageIndexBuilder::default()
                .schema_version(2u32)
                .manifests(Vec::new())
                .build()?)
        }
    }

    /// Imports a root filesystem tarball read from `tarball` as the image
    /// `reference`; returns its summary. A previous image of that name is
    /// replaced. Refuses input that is not a tar archive.
    pub fn import(
        &self,
        tarball: &mut impl Read,
        reference: &str,
        created: &str,
    ) -> Result<ImageSummary, ImageError> {
        let reference = normalize_reference(reference)?;
        let mut layer = Vec::new();
        tarball
            .read_to_end(&mut layer)
            .map_err(|source| ImageError::Io {
                op: "reading",
                path: "the tarball".into(),
                source,
            })?;
        check_tar_header(&layer)?;
        std::fs::create_dir_all(self.root.join("blobs/sha256"))
            .map_err(io_err("creating", &self.root))?;
        write_atomic(
            &self.root.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;

        let layer = self.write_blob(MediaType::ImageLayer, &layer)?;
        let config = ImageConfigurationBuilder::default()
            .architecture(Arch::Amd64)
            .os(Os::Linux)
            .created(created.to_owned())
            .rootfs(
                RootFsBuilder::default()
                    .typ("layers")
                    .diff_ids(vec![layer.digest().to_string()])
                    .build()?,
            )
            .build()?;
        let config = self.write_blob(MediaType::ImageConfig, config.to_string()?.as_bytes())?;
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(config.clone())
            .layers(vec![layer.clone()])
            .build()?;
        let mut manifest =
            self.write_blob(MediaType::ImageManifest, manifest.to_string()?.as_bytes())?;
        manifest.set_annotations(Some(HashMap::from([
            (ANNOTATION_REF_NAME.to_owned(), reference.clone()),
            (ANNOTATION_CREATED.to_owned(), created.to_owned()),
        ])));

        let mut index = self.index()?;
        let mut manifests: Vec<Descriptor> = index
            .manifests()
            .iter()
            .filter(|m| ref_name(m) != Some(reference.as_str()))
            .cloned()
            .collect();
        manifests.push(manifest);
        index.set_manifests(manifests);
        write_atomic(&self.index_path(), index.to_string()?.as_bytes())?;
        Ok(ImageSummary {
            reference,
            id: config.digest().to_string(),
            size: layer.size(),
            created: created.to_owned(),
        })
    }

    /// Every tagged image, sorted by reference.
    pub fn list(&self) -> Result<Vec<ImageSummary>, ImageError> {
        let mut images = Vec::new();
        for manifest in self.index()?.manifests() {
            let Some(reference) = ref_name(manifest) else {
                continue;
            };
            let path = self.blob_path(manifest.digest().digest());
            let parsed = oci_spec::image::ImageManifest::from_file(&path)?;
            images.push(ImageSummary {
                reference: reference.to_owned(),
                id: parsed.config().digest().to_string(),
                size: parsed.layers().iter().map(Descriptor::size).sum(),
                created: manifest
                    .annotations()
                    .as_ref()
                    .and_then(|a| a.get(ANNOTATION_CREATED).cloned())
                    .unwrap_or_default(),
            });
        }
        images.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(images)
    }
}

fn ref_name(descriptor: &Descriptor) -> Option<&str> {
    descriptor
        .annotations()
        .as_ref()?
        .get(ANNOTATION_REF_NAME)
        .map(String::as_str)
}

/// Writes `bytes` to `path` through a temporary file, fsync and rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_err("creating", parent))?;
    }
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp).map_err(io_err("creating", &tmp))?;
    file.write_all(bytes).map_err(io_err("writing", &tmp))?;
    file.sync_all().map_err(io_err("syncing", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err("renaming into", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-file tar archive (ustar, checksummed) with `name` holding `body`.
    fn tar_with(name: &str, body: &[u8]) -> Vec<u8> {
        let mut header = [0u8; 512];
        header[..name.len()].copy_from_slice(name.as_bytes());
        header[100..107].copy_from_slice(b"0000644");
        header[124..135].copy_from_slice(format!("{:011o}", body.len()).as_bytes());
        header[136..147].copy_from_slice(b"00000000000");
        header[156] = b'0';
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        header[148..156].copy_from_slice(b"        ");
        let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
        header[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        let mut out = header.to_vec();
        out.extend_from_slice(body);
        out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
        out
    }

    #[test]
    fn references_normalise_like_docker() {
        assert_eq!(
            normalize_reference("whoami").ok().as_deref(),
            Some("whoami:latest")
        );
        assert_eq!(
            normalize_reference("shoal/whoami:1.0").ok().as_deref(),
            Some("shoal/whoami:1.0")
        );
        assert!(normalize_reference("Whoami").is_err());
        assert!(normalize_reference("who ami").is_err());
        assert!(normalize_reference("whoami:").is_err());
        assert!(normalize_reference("").is_err());
    }

    #[test]
    fn import_writes_an_oci_layout_and_lists_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ImageStore::new(dir.path());
        let tar = tar_with("hello.txt", b"hi\n");
        let summary = store
            .import(&mut tar.as_slice(), "demo", "2026-11-23T00:00:00Z")
            .expect("import");
        assert_eq!(summary.reference, "demo:latest");
        assert_eq!(summary.size, tar.len() as u64);
        assert!(summary.id.starts_with("sha256:"));
        assert!(dir.path().join("oci-layout").exists());
        assert_eq!(store.list().expect("list"), vec![summary.clone()]);

        // Re-importing the same name replaces it; another name adds one.
        store
            .import(
                &mut tar_with("b", b"2").as_slice(),
                "demo",
                "2026-11-23T00:00:01Z",
            )
            .expect("import");
        store
            .import(&mut tar.as_slice(), "other:1", "2026-11-23T00:00:02Z")
            .expect("import");
        let listed: Vec<String> = store
            .list()
            .expect("list")
            .into_iter()
            .map(|i| i.reference)
            .collect();
        assert_eq!(listed, ["demo:latest", "other:1"]);
    }

    #[test]
    fn not_a_tarball_is_refused_and_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ImageStore::new(dir.path());
        let error = store
            .import(&mut b"garbage".as_slice(), "demo", "now")
            .expect_err("refused");
        assert!(error.to_string().contains("not a tar archive"), "{error}");
        let mut corrupt = tar_with("a", b"x");
        corrupt[0] ^= 1;
        assert!(
            store
                .import(&mut corrupt.as_slice(), "demo", "now")
                .is_err()
        );
        assert!(store.list().expect("list").is_empty());
        assert!(!dir.path().join("index.json").exists());
    }
}
