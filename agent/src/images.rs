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

use std::{
    collections::{HashMap, HashSet},
    ffi::OsStr,
    fs::File,
    io::{self, BufReader, Read, Write},
    path::{Component, Path, PathBuf},
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

mod layout;

pub(crate) use layout::{INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, pick_platform};

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

/// What the image config says about how to run it (OCI image config
/// `config` fields).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageRuntimeConfig {
    /// `NAME=value` pairs.
    pub env: Vec<String>,
    /// The entrypoint; the command's arguments follow it.
    pub entrypoint: Vec<String>,
    /// The default command (or the entrypoint's default arguments).
    pub cmd: Vec<String>,
    /// The working directory; empty for `/`.
    pub working_dir: String,
    /// `user[:group]` (names or IDs); empty for root.
    pub user: String,
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

impl ImageRuntimeConfig {
    /// The config `docker import --change` makes from Dockerfile
    /// instructions: `CMD`, `ENTRYPOINT` (JSON array or shell form), `ENV`
    /// (`K=V …` or `K V`), `WORKDIR` and `USER`, applied in order.
    pub fn from_changes(changes: &[impl AsRef<str>]) -> Result<Self, ImageError> {
        let mut config = Self::default();
        for change in changes {
            config.apply(change.as_ref())?;
        }
        Ok(config)
    }

    fn apply(&mut self, change: &str) -> Result<(), ImageError> {
        let invalid = |reason: &str| ImageError::InvalidChange {
            change: change.to_owned(),
            reason: reason.to_owned(),
        };
        let change = change.trim();
        let (instruction, rest) = change
            .split_once(char::is_whitespace)
            .map_or((change, ""), |(i, r)| (i, r.trim()));
        if rest.is_empty() {
            return Err(invalid("missing arguments"));
        }
        match instruction.to_ascii_uppercase().as_str() {
            "CMD" => self.cmd = exec_form(rest),
            "ENTRYPOINT" => self.entrypoint = exec_form(rest),
            "ENV" => {
                let words = shell_words(rest).ok_or_else(|| invalid("unbalanced quotes"))?;
                let pairs: Vec<(String, String)> = if words[0].contains('=') {
                    words
                        .iter()
                        .map(|w| {
                            w.split_once('=')
                                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                                .ok_or_else(|| invalid("expected KEY=value"))
                        })
                        .collect::<Result<_, _>>()?
                } else {
                    // The legacy form: `ENV KEY the value`.
                    let (key, value) = rest
                        .split_once(char::is_whitespace)
                        .ok_or_else(|| invalid("expected KEY=value or KEY value"))?;
                    vec![(key.to_owned(), value.trim().to_owned())]
                };
                for (key, value) in pairs {
                    if key.is_empty() {
                        return Err(invalid("empty variable name"));
                    }
                    self.env
                        .retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
                    self.env.push(format!("{key}={value}"));
                }
            }
            "WORKDIR" => {
                self.working_dir = if rest.starts_with('/') {
                    rest.to_owned()
                } else {
                    // Relative to the previous WORKDIR, as Dockerfiles have it.
                    let base = if self.working_dir.is_empty() {
                        "/"
                    } else {
                        self.working_dir.as_str()
                    };
                    Path::new(base).join(rest).display().to_string()
                };
            }
            "USER" => rest.clone_into(&mut self.user),
            _ => {
                return Err(invalid(
                    "unsupported instruction (CMD, ENTRYPOINT, ENV, WORKDIR or USER)",
                ));
            }
        }
        Ok(())
    }

    /// The OCI image config's `config` object.
    fn to_oci(&self) -> oci_spec::image::Config {
        let mut config = oci_spec::image::Config::default();
        let some = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        config.set_env(some(&self.env));
        config.set_entrypoint(some(&self.entrypoint));
        config.set_cmd(some(&self.cmd));
        config.set_working_dir((!self.working_dir.is_empty()).then(|| self.working_dir.clone()));
        config.set_user((!self.user.is_empty()).then(|| self.user.clone()));
        config
    }
}

/// A `CMD`/`ENTRYPOINT` argument: a JSON array of strings (exec form), or
/// else a command line for `/bin/sh -c` (shell form), as Docker reads it.
fn exec_form(rest: &str) -> Vec<String> {
    if rest.starts_with('[')
        && let Ok(words) = serde_json::from_str::<Vec<String>>(rest)
    {
        return words;
    }
    vec!["/bin/sh".into(), "-c".into(), rest.to_owned()]
}

/// Splits `text` into words at unquoted whitespace; `"…"` and `'…'` quote,
/// a backslash escapes the next character (not inside single quotes).
/// `None` when a quote is not closed.
fn shell_words(text: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => word.push(c),
            (_, '\\') => {
                word.push(chars.next().unwrap_or('\\'));
                in_word = true;
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (_, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return None;
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

/// The store of one node. Clones share one lock, which serialises updates
/// of `index.json`.
#[derive(Clone, Debug)]
pub struct ImageStore {
    root: PathBuf,
    index_lock: Arc<Mutex<()>>,
}

/// An image reference, `[registry/]path[:tag|@digest]`, as Docker reads
/// it: the first path component is a registry host when it has a `.` or a
/// `:port`, or is `localhost`; the tag defaults to `latest` unless a digest
/// is given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]`, when given.
    pub registry: Option<String>,
    /// The repository path (`whoami`, `shoal/whoami`).
    pub path: String,
    /// The tag (`latest` by default); unused with a digest.
    pub tag: String,
    /// `sha256:<hex>`, when the reference pins one.
    pub digest: Option<String>,
}

impl Reference {
    /// Parses and checks `reference`.
    pub fn parse(reference: &str) -> Result<Self, ImageError> {
        let invalid = || ImageError::InvalidReference {
            reference: reference.to_owned(),
        };
        let (rest, digest) = match reference.split_once('@') {
            Some((rest, digest)) => {
                let hex = digest.strip_prefix("sha256:").ok_or_else(invalid)?;
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(invalid());
                }
                (rest, Some(digest.to_ascii_lowercase()))
            }
            None => (reference, None),
        };
        let (name, tag) = match rest.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => (name, tag),
            _ => (rest, "latest"),
        };
        let (registry, path) = match name.split_once('/') {
            Some((first, path)) if first.contains(['.', ':']) || first == "localhost" => {
                (Some(first), path)
            }
            _ => (None, name),
        };
        let registry_ok = registry.is_none_or(|registry| {
            let (host, port) = registry.split_once(':').unwrap_or((registry, "1"));
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b))
                && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        let path_ok = !path.is_empty()
            && name.len() <= 255
            && path.split('/').all(|part| {
                !part.is_empty()
                    && part.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
                    })
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
        if !(registry_ok && path_ok && tag_ok) {
            return Err(invalid());
        }
        Ok(Self {
            registry: registry.map(str::to_owned),
            path: path.to_owned(),
            tag: tag.to_owned(),
            digest,
        })
    }

    /// `[registry/]path`.
    #[must_use]
    pub fn repository(&self) -> String {
        match &self.registry {
            Some(registry) => format!("{registry}/{}", self.path),
            None => self.path.clone(),
        }
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.digest {
            Some(digest) => write!(f, "{}@{digest}", self.repository()),
            None => write!(f, "{}:{}", self.repository(), self.tag),
        }
    }
}

/// `[registry/]name[:tag]` (or `@sha256:…`) with the tag defaulting to
/// `latest`, as Docker normalises it.
pub fn normalize_reference(reference: &str) -> Result<String, ImageError> {
    Reference::parse(reference).map(|r| r.to_string())
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

        let runtime = config.config().clone().unwrap_or_default();
        Ok(ImageRuntimeConfig {
            env: runtime.env().clone().unwrap_or_default(),
            entrypoint: runtime.entrypoint().clone().unwrap_or_default(),
            cmd: runtime.cmd().clone().unwrap_or_default(),
            working_dir: runtime.working_dir().clone().unwrap_or_default(),
            user: runtime.user().clone().unwrap_or_default(),
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

    /// A one-file tar archive (ustar, checksummed) with `name` holding `body`.
    fn tar_with(name: &str, body: &[u8]) -> Vec<u8> {
        let mut header = [0u8; 512];
        header[..name.len()].copy_from_slice(name.as_bytes());
        header[100..107].copy_from_slice(b"0000644");
        header[108..115].copy_from_slice(b"0000000");
        header[116..123].copy_from_slice(b"0000000");
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

    /// One entry of a test layer.
    pub(super) enum Entry<'a> {
        Dir(&'a str, u32),
        File(&'a str, u32, &'a [u8]),
        Symlink(&'a str, &'a str),
        HardLink(&'a str, &'a str),
    }

    /// A ustar archive of `entries`, made with the `tar` crate.
    pub(super) fn layer(entries: &[Entry<'_>]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for entry in entries {
            let mut header = tar::Header::new_ustar();
            header.set_mtime(1_700_000_000);
            header.set_uid(0);
            header.set_gid(0);
            match *entry {
                Entry::Dir(path, mode) => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(mode);
                    header.set_size(0);
                    builder.append_data(&mut header, path, io::empty())
                }
                Entry::File(path, mode, body) => {
                    header.set_mode(mode);
                    header.set_size(body.len() as u64);
                    builder.append_data(&mut header, path, body)
                }
                Entry::Symlink(path, target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_mode(0o777);
                    header.set_size(0);
                    builder.append_link(&mut header, path, target)
                }
                Entry::HardLink(path, target) => {
                    header.set_entry_type(tar::EntryType::Link);
                    header.set_mode(0o644);
                    header.set_size(0);
                    builder.append_link(&mut header, path, target)
                }
            }
            .expect("appending to the test layer");
        }
        builder.into_inner().expect("finishing the test layer")
    }

    pub(super) fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).expect("gzip");
        encoder.finish().expect("gzip")
    }

    /// Stores an image of `layers` with `cmd` and `env` in its config;
    /// returns its manifest's descriptor.
    pub(super) fn store_image(
        store: &ImageStore,
        reference: &str,
        layers: &[(MediaType, Vec<u8>)],
        cmd: &[&str],
        env: &[&str],
    ) -> Descriptor {
        let layers: Vec<Descriptor> = layers
            .iter()
            .map(|(media_type, bytes)| store.write_blob(media_type.clone(), bytes).expect("blob"))
            .collect();
        let runtime = oci_spec::image::ConfigBuilder::default()
            .cmd(cmd.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
            .env(env.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
            .working_dir("/srv")
            .build()
            .expect("runtime config");
        let config = ImageConfigurationBuilder::default()
            .architecture(Arch::Amd64)
            .os(Os::Linux)
            .config(runtime)
            .rootfs(
                RootFsBuilder::default()
                    .typ("layers")
                    .diff_ids(Vec::<String>::new())
                    .build()
                    .expect("rootfs"),
            )
            .build()
            .expect("config");
        let config = store
            .write_blob(
                MediaType::ImageConfig,
                config.to_string().expect("json").as_bytes(),
            )
            .expect("config blob");
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(config)
            .layers(layers)
            .build()
            .expect("manifest");
        let manifest = store
            .write_blob(
                MediaType::ImageManifest,
                manifest.to_string().expect("json").as_bytes(),
            )
            .expect("manifest blob");
        store
            .tag(
                manifest.clone(),
                &normalize_reference(reference).expect("ref"),
                "now",
            )
            .expect("tag");
        manifest
    }

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

    #[test]
    fn changes_parse_like_docker_import() {
        let config = ImageRuntimeConfig::from_changes(&[
            r#"CMD ["/usr/local/bin/whoami", "--port", "80"]"#,
            "entrypoint /bin/run me",
            "ENV PATH=/bin:/usr/bin GREETING=\"hello world\"",
            "ENV LEGACY some value",
            "ENV PATH=/sbin",
            "WORKDIR /srv",
            "WORKDIR data",
            "USER nobody:nogroup",
        ])
        .expect("valid changes");
        assert_eq!(config.cmd, ["/usr/local/bin/whoami", "--port", "80"]);
        assert_eq!(config.entrypoint, ["/bin/sh", "-c", "/bin/run me"]);
        assert_eq!(
            config.env,
            ["GREETING=hello world", "LEGACY=some value", "PATH=/sbin"]
        );
        assert_eq!(config.working_dir, "/srv/data");
        assert_eq!(config.user, "nobody:nogroup");
        // Not a JSON array: the shell form, as Docker falls back to.
        let shell = ImageRuntimeConfig::from_changes(&["CMD [oops"]).expect("shell form");
        assert_eq!(shell.cmd, ["/bin/sh", "-c", "[oops"]);
        for bad in ["EXPOSE 80", "CMD", "ENV", "ENV A=\"open", "ENV =x"] {
            let error = ImageRuntimeConfig::from_changes(&[bad]).expect_err(bad);
            assert!(error.to_string().starts_with("invalid change"), "{error}");
        }
    }

    #[test]
    fn imported_changes_come_back_from_unpack() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ImageStore::new(dir.path().join("images"));
        let runtime =
            ImageRuntimeConfig::from_changes(&[r#"CMD ["/hello"]"#, "ENV A=1", "USER 65534"])
                .expect("changes");
        store
            .import_with(
                &mut layer(&[Entry::File("hello", 0o755, b"hi")]).as_slice(),
                "demo",
                "now",
                &runtime,
            )
            .expect("import");
        let unpacked = store
            .unpack("demo", &dir.path().join("rootfs"))
            .expect("unpack");
        assert_eq!(unpacked, runtime);
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
        assert_eq!(
            normalize_reference("198.18.0.1:5000/whoami")
                .ok()
                .as_deref(),
            Some("198.18.0.1:5000/whoami:latest")
        );
        assert_eq!(
            normalize_reference("localhost/a/b:v2").ok().as_deref(),
            Some("localhost/a/b:v2")
        );
        let digest = format!("sha256:{}", "ab".repeat(32));
        let pinned = Reference::parse(&format!("Registry.example:443/app@{digest}"))
            .expect("a digest reference");
        assert_eq!(pinned.registry.as_deref(), Some("Registry.example:443"));
        assert_eq!(pinned.path, "app");
        assert_eq!(pinned.digest.as_deref(), Some(digest.as_str()));
        assert_eq!(
            pinned.to_string(),
            format!("Registry.example:443/app@{digest}")
        );
        let plain = Reference::parse("shoal/whoami").expect("no registry");
        assert_eq!(
            (plain.registry, plain.path.as_str()),
            (None, "shoal/whoami")
        );
        assert!(normalize_reference("host:99999/app").is_err());
        assert!(normalize_reference("app@sha256:abc").is_err());
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
