//! Test fixtures for the image store's tests: tar layers built entry by
//! entry, a raw one-file tarball, gzip, and images stored blob by blob.

use std::io::{self, Write as _};

use oci_spec::image::{
    Arch, Descriptor, ImageConfigurationBuilder, ImageManifestBuilder, MediaType, Os, RootFsBuilder,
};

use super::{ImageStore, normalize_reference};

/// A one-file tar archive (ustar, checksummed) with `name` holding `body`.
pub(super) fn tar_with(name: &str, body: &[u8]) -> Vec<u8> {
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
