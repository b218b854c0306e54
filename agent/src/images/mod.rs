//! The node's image store: an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/…`) under the data dir, as `skopeo`/`umoci` read it.
//!
//! [`ImageStore::import`] turns a root filesystem tarball into a one-layer
//! image (like `docker import`): the tarball becomes an uncompressed layer,
//! plus an image config and a manifest, and `index.json` names the manifest
//! with the `org.opencontainers.image.ref.name` annotation (`name:tag`).
//! Every file is written to a temporary name, fsync'd and renamed, so a crash
//! leaves either the old image or the new one.
//!
//! [`ImageStore::unpack`] extracts an image's layers into a root filesystem
//! for a container: every blob's sha256 is checked first, layers may be
//! plain or gzip'd tar, OCI whiteouts (`.wh.<name>`, `.wh..wh..opq`) remove
//! what lower layers had, and no entry may land outside the root.
//!
//! This module owns the store itself (blobs, `index.json` and its tags,
//! import, list, digest checks, atomic writes) and the public surface;
//! the parts live below it:
//!
//! | module | owns |
//! | --- | --- |
//! | `reference` | the reference grammar: [`Reference`], [`normalize_reference`] |
//! | `change` | [`ImageRuntimeConfig`] and the `--change` instructions that set it |
//! | `unpack` | [`ImageStore::unpack`]: layers, whiteouts, path checks |
//! | `layout` | copying in an OCI image layout; the blob writer registry pulls share |

use std::{
    collections::HashMap,
    fs::File,
    io::{self, Read, Write},
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

use oci_spec::image::{
    ANNOTATION_CREATED, ANNOTATION_REF_NAME, Arch, Descriptor, ImageConfiguration,
    ImageConfigurationBuilder, ImageIndex, ImageIndexBuilder, ImageManifest, ImageManifestBuilder,
    MediaType, Os, RootFsBuilder,
};
use sha2::{Digest as _, Sha256};

mod change;
#[cfg(test)]
mod fixtures;
mod layout;
mod reference;
mod unpack;

pub use change::ImageRuntimeConfig;
pub(crate) use layout::{INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, pick_platform};
pub use reference::{Reference, normalize_reference};

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
    /// A directory or archive given as an OCI image layout is not one (or
    /// holds no single image to import).
    #[error("not an importable OCI image layout: {reason}")]
    NotALayout {
        /// What is wrong with it.
        reason: String,
    },
    /// The store has no image of that name.
    #[error("no such image: {reference}")]
    NotFound {
        /// The normalized reference.
        reference: String,
    },
    /// A blob's content does not match its digest (or size).
    #[error("blob {digest} is corrupt: {reason}")]
    Corrupt {
        /// The digest it is stored under.
        digest: String,
        /// What does not match.
        reason: String,
    },
    /// A layer's media type is not one shoal can extract.
    #[error("unsupported layer media type {media_type} (plain or gzip'd tar only)")]
    UnsupportedLayer {
        /// The media type.
        media_type: String,
    },
    /// A layer entry would land outside the root filesystem.
    #[error("layer entry {path:?} escapes the root filesystem")]
    UnsafeEntry {
        /// The entry's path.
        path: PathBuf,
    },
    /// The unpack destination exists and is not an empty directory.
    #[error("cannot unpack into {path}: not an empty directory")]
    RootfsNotEmpty {
        /// The destination.
        path: PathBuf,
    },
    /// A `docker import --change` instruction shoal cannot apply.
    #[error("invalid change {change:?}: {reason}")]
    InvalidChange {
        /// The instruction as given.
        change: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Extracting a layer failed.
    #[error("extracting layer {digest}: {source}")]
    Layer {
        /// The layer's digest.
        digest: String,
        /// The error.
        source: io::Error,
    },
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

/// An image as `image inspect` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageDetails {
    /// The image as `image ls` lists it, under the reference it was found by
    /// (or its first, when found by ID).
    pub summary: ImageSummary,
    /// Every reference naming the same image.
    pub references: Vec<String>,
    /// Its OCI image configuration (runtime config, platform, layers' diff IDs).
    pub config: ImageConfiguration,
}

/// The store of one node. Clones share one lock, which serialises updates
/// of `index.json`.
#[derive(Clone, Debug)]
pub struct ImageStore {
    root: PathBuf,
    index_lock: Arc<Mutex<()>>,
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
        Self {
            root: root.into(),
            index_lock: Arc::default(),
        }
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

    /// Creates the layout's skeleton (`oci-layout`, `blobs/sha256`).
    fn ensure_layout(&self) -> Result<(), ImageError> {
        let blobs = self.root.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).map_err(io_err("creating", &blobs))?;
        let marker = self.root.join("oci-layout");
        if marker.exists() {
            return Ok(());
        }
        write_atomic(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)
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
        self.import_with(tarball, reference, created, &ImageRuntimeConfig::default())
    }

    /// [`import`](Self::import) with `runtime` (from
    /// [`ImageRuntimeConfig::from_changes`], say) in the image config, as
    /// `docker import --change` does.
    pub fn import_with(
        &self,
        tarball: &mut impl Read,
        reference: &str,
        created: &str,
        runtime: &ImageRuntimeConfig,
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
        self.ensure_layout()?;

        let layer = self.write_blob(MediaType::ImageLayer, &layer)?;
        let config = ImageConfigurationBuilder::default()
            .architecture(Arch::Amd64)
            .os(Os::Linux)
            .created(created.to_owned())
            .config(runtime.to_oci())
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
        let manifest =
            self.write_blob(MediaType::ImageManifest, manifest.to_string()?.as_bytes())?;
        self.tag(manifest, &reference, created)?;
        Ok(ImageSummary {
            reference,
            id: config.digest().to_string(),
            size: layer.size(),
            created: created.to_owned(),
        })
    }

    /// Names the manifest `descriptor` as `reference` (normalized) in
    /// `index.json`, replacing any image of that name.
    fn tag(
        &self,
        mut descriptor: Descriptor,
        reference: &str,
        created: &str,
    ) -> Result<(), ImageError> {
        descriptor.set_annotations(Some(HashMap::from([
            (ANNOTATION_REF_NAME.to_owned(), reference.to_owned()),
            (ANNOTATION_CREATED.to_owned(), created.to_owned()),
        ])));
        self.ensure_layout()?;
        let _guard = self
            .index_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut index = self.index()?;
        let mut manifests: Vec<Descriptor> = index
            .manifests()
            .iter()
            .filter(|m| ref_name(m) != Some(reference))
            .cloned()
            .collect();
        manifests.push(descriptor);
        index.set_manifests(manifests);
        write_atomic(&self.index_path(), index.to_string()?.as_bytes())
    }

    /// The manifest descriptor `index.json` names `reference` (normalized).
    pub(crate) fn manifest_descriptor(
        &self,
        reference: &str,
    ) -> Result<Option<Descriptor>, ImageError> {
        Ok(self
            .index()?
            .manifests()
            .iter()
            .find(|m| ref_name(m) == Some(reference))
            .cloned())
    }

    /// Whether the store holds `reference` (normalized as
    /// [`normalize_reference`] does).
    pub fn contains(&self, reference: &str) -> Result<bool, ImageError> {
        let reference = normalize_reference(reference)?;
        Ok(self.manifest_descriptor(&reference)?.is_some())
    }

    /// The path of the blob `descriptor` names, after checking that its
    /// content has the descriptor's sha256 digest and size.
    fn verified_blob(&self, descriptor: &Descriptor) -> Result<PathBuf, ImageError> {
        let path = self.blob_path(sha256_hex(descriptor)?);
        let mut file = File::open(&path).map_err(io_err("opening", &path))?;
        let mut hasher = Sha256::new();
        let size = io::copy(&mut file, &mut hasher).map_err(io_err("reading", &path))?;
        check_content(descriptor, hasher, size)?;
        Ok(path)
    }

    /// The verified content of the blob `descriptor` names.
    fn read_verified(&self, descriptor: &Descriptor) -> Result<Vec<u8>, ImageError> {
        let path = self.verified_blob(descriptor)?;
        std::fs::read(&path).map_err(io_err("reading", &path))
    }

    /// The image `name` names, as `docker image inspect` looks it up: a
    /// reference (normalized as [`normalize_reference`] does), or an image
    /// ID, whole (`sha256:…`) or a prefix of its hex digits. `None` when
    /// the store has no such image.
    pub fn inspect(&self, name: &str) -> Result<Option<ImageDetails>, ImageError> {
        let images = self.list()?;
        let by_reference = normalize_reference(name)
            .ok()
            .and_then(|reference| images.iter().find(|i| i.reference == reference));
        let by_id = || {
            let hex = name.strip_prefix("sha256:").unwrap_or(name);
            (!hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| {
                    images.iter().find(|i| {
                        i.id.strip_prefix("sha256:")
                            .is_some_and(|id| id.starts_with(hex))
                    })
                })
                .flatten()
        };
        let Some(summary) = by_reference.or_else(by_id).cloned() else {
            return Ok(None);
        };
        let Some(manifest) = self.manifest_descriptor(&summary.reference)? else {
            return Ok(None);
        };
        let manifest = ImageManifest::from_reader(self.read_verified(&manifest)?.as_slice())?;
        let config =
            ImageConfiguration::from_reader(self.read_verified(manifest.config())?.as_slice())?;
        let references = images
            .iter()
            .filter(|i| i.id == summary.id)
            .map(|i| i.reference.clone())
            .collect();
        Ok(Some(ImageDetails {
            summary,
            references,
            config,
        }))
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

/// The hex sha256 digest `descriptor` names; other algorithms and malformed
/// digests are refused.
fn sha256_hex(descriptor: &Descriptor) -> Result<&str, ImageError> {
    let digest = descriptor.digest();
    let corrupt = |reason: String| ImageError::Corrupt {
        digest: digest.to_string(),
        reason,
    };
    if digest.algorithm().as_ref() != "sha256" {
        return Err(corrupt(format!(
            "unsupported digest algorithm {}",
            digest.algorithm()
        )));
    }
    let hex = digest.digest();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(corrupt("malformed sha256 digest".into()));
    }
    Ok(hex)
}

/// Checks content that hashed to `hasher` and was `size` bytes long
/// against `descriptor`.
fn check_content(descriptor: &Descriptor, hasher: Sha256, size: u64) -> Result<(), ImageError> {
    let corrupt = |reason: String| ImageError::Corrupt {
        digest: descriptor.digest().to_string(),
        reason,
    };
    let actual = format!("{:x}", hasher.finalize());
    if actual != sha256_hex(descriptor)? {
        return Err(corrupt(format!("its content hashes to sha256:{actual}")));
    }
    if size != descriptor.size() {
        return Err(corrupt(format!(
            "it holds {size} bytes, the descriptor says {}",
            descriptor.size()
        )));
    }
    Ok(())
}

fn ref_name(descriptor: &Descriptor) -> Option<&str> {
    descriptor
        .annotations()
        .as_ref()?
        .get(ANNOTATION_REF_NAME)
        .map(String::as_str)
}

/// Distinguishes the temporary files of concurrent writers.
static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` through a temporary file, fsync and rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_err("creating", parent))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(
        ".tmp-{}-{}",
        std::process::id(),
        TMP_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = PathBuf::from(tmp);
    let mut file = File::create(&tmp).map_err(io_err("creating", &tmp))?;
    file.write_all(bytes).map_err(io_err("writing", &tmp))?;
    file.sync_all().map_err(io_err("syncing", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err("renaming into", path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::fixtures::{Entry, layer, tar_with};

    #[test]
    fn a_corrupt_blob_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ImageStore::new(dir.path().join("images"));
        let tar = layer(&[Entry::File("hello", 0o644, b"hello")]);
        store
            .import(&mut tar.as_slice(), "demo", "now")
            .expect("import");
        let hex = format!("{:x}", Sha256::digest(&tar));
        let blob = store.blob_path(&hex);
        let mut bytes = std::fs::read(&blob).expect("blob");
        bytes[600] ^= 0x20;
        std::fs::write(&blob, &bytes).expect("corrupt the blob");
        let rootfs = dir.path().join("rootfs");
        let error = store.unpack("demo", &rootfs).expect_err("corrupt");
        let message = error.to_string();
        assert!(
            message.starts_with(&format!(
                "blob sha256:{hex} is corrupt: its content hashes to sha256:"
            )),
            "{message}"
        );
        assert!(!rootfs.exists(), "nothing extracted");
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
