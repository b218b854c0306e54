//! `shoal image …`: import a root filesystem tarball into this node's image
//! store (like `docker import`) or copy in an OCI image layout (a directory
//! or its tar archive), pull from a registry (like `docker pull`), list the
//! images (like `docker images`).

use std::{io::Read as _, path::Path};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use shoal_api::{Client, client::query_value, paths::IMAGE_LOAD_LAYOUT};

use crate::output::Table;

/// `shoal image` verbs.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Import the contents from a tarball to create a filesystem image, or
    /// copy the image of an OCI image layout (a directory, or its tar
    /// archive).
    Import {
        /// Apply a Dockerfile instruction to the image (CMD, ENTRYPOINT,
        /// ENV, WORKDIR, USER), e.g. `-c 'CMD ["/bin/app"]'`; root
        /// filesystem tarballs only.
        #[arg(short = 'c', long = "change")]
        changes: Vec<String>,
        /// The tarball (`-` for standard input) or the layout directory.
        file: String,
        /// `name[:tag]` of the new image.
        reference: String,
    },
    /// Pull an image from a registry: `HOST[:PORT]/NAME[:TAG|@DIGEST]`
    /// (registries reached over plain HTTP must be given to shoald with
    /// `--insecure-registry`).
    Pull {
        /// The image reference.
        reference: String,
    },
    /// List images.
    Ls,
}

/// Runs a `shoal image` verb.
pub async fn run(client: &Client, command: ImageCommand) -> Result<()> {
    match command {
        ImageCommand::Import {
            changes,
            file,
            reference,
        } => import(client, &file, &reference, &changes).await,
        ImageCommand::Pull { reference } => pull(client, &reference).await,
        ImageCommand::Ls => ls(client).await,
    }
}

/// `reference` as the docker CLI sends it: the repository, and the tag or
/// digest (empty for the default tag).
fn split_reference(reference: &str) -> (&str, &str) {
    if let Some((repository, digest)) = reference.split_once('@') {
        return (repository, digest);
    }
    match reference.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => (repository, tag),
        _ => (reference, ""),
    }
}

async fn pull(client: &Client, reference: &str) -> Result<()> {
    let (image, tag) = split_reference(reference);
    let path = format!(
        "/images/create?fromImage={}&tag={}",
        query_value(image),
        query_value(tag)
    );
    let answer = client
        .post_bytes(&path, Vec::new(), "application/json")
        .await?;
    for line in String::from_utf8_lossy(&answer).lines() {
        let Ok(line) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if let Some(error) = line["error"].as_str() {
            bail!("{error}");
        }
        let status = line["status"].as_str().unwrap_or_default();
        match line["id"].as_str() {
            Some(id) => println!("{id}: {status}"),
            None => println!("{status}"),
        }
    }
    Ok(())
}

/// Whether `tarball` is a tar archive of an OCI image layout (has an
/// `oci-layout` file at its root).
fn is_layout_archive(tarball: &[u8]) -> bool {
    let mut archive = tar::Archive::new(tarball);
    let Ok(entries) = archive.entries() else {
        return false;
    };
    entries.map_while(Result::ok).any(|entry| {
        entry
            .path()
            .is_ok_and(|p| p.strip_prefix(".").unwrap_or(&p) == Path::new("oci-layout"))
    })
}

/// A tar archive of the directory `dir` (symlinks kept as links).
fn archive_dir(dir: &Path) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    builder
        .append_dir_all(".", dir)
        .and_then(|()| builder.into_inner())
        .with_context(|| format!("archiving {}", dir.display()))
}

async fn import(client: &Client, file: &str, reference: &str, changes: &[String]) -> Result<()> {
    let mut tarball = Vec::new();
    if file == "-" {
        std::io::stdin()
            .read_to_end(&mut tarball)
            .context("reading standard input")?;
    } else if Path::new(file).is_dir() {
        tarball = archive_dir(Path::new(file))?;
    } else {
        tarball = std::fs::read(file).with_context(|| format!("reading {file}"))?;
    }
    if is_layout_archive(&tarball) {
        if !changes.is_empty() {
            bail!("--change applies to root filesystem tarballs, not to OCI image layouts");
        }
        let path = format!("{IMAGE_LOAD_LAYOUT}?reference={}", query_value(reference));
        return print_status(
            client
                .post_bytes(&path, tarball, "application/x-tar")
                .await?,
        );
    } else if Path::new(file).is_dir() {
        bail!("{file} is not an OCI image layout (it has no oci-layout file)");
    }
    let (repo, tag) = match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (reference, ""),
    };
    let mut path = format!(
        "/images/create?fromSrc=-&repo={}&tag={}",
        query_value(repo),
        query_value(tag)
    );
    for change in changes {
        path.push_str("&changes=");
        path.push_str(&query_value(change));
    }
    print_status(
        client
            .post_bytes(&path, tarball, "application/x-tar")
            .await?,
    )
}

/// Prints the image ID of an import's answer.
fn print_status(answer: impl AsRef<[u8]>) -> Result<()> {
    let status: serde_json::Value =
        serde_json::from_slice(answer.as_ref()).context("reading the import result")?;
    println!("{}", status["status"].as_str().unwrap_or_default());
    Ok(())
}

async fn ls(client: &Client) -> Result<()> {
    let images: Vec<serde_json::Value> = client.get_json("/images/json").await?;
    let mut table = Table::new(["REPOSITORY", "TAG", "IMAGE ID", "SIZE"]);
    for image in &images {
        let (repo, tag) = if let Some(tagged) = image["RepoTags"][0].as_str() {
            split_reference(tagged)
        } else if let Some(pinned) = image["RepoDigests"][0].as_str() {
            (split_reference(pinned).0, "<none>")
        } else {
            ("<none>", "<none>")
        };
        let id = image["Id"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches("sha256:");
        let size = image["Size"].as_u64().unwrap_or(0);
        table.row([
            repo.to_owned(),
            tag.to_owned(),
            id.chars().take(12).collect(),
            human_size(size),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

/// Sizes as docker prints them (decimal units).
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    #[expect(clippy::cast_precision_loss, reason = "display only")]
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        return format!("{bytes}B");
    }
    // Three significant digits, trailing zeros dropped (Go's %.3g).
    let text = if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    };
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_like_docker() {
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(4_300_000), "4.3MB");
        assert_eq!(human_size(123_456_789), "123MB");
        assert_eq!(human_size(1_234_000), "1.23MB");
        assert_eq!(query_value("shoal/whoami"), "shoal%2Fwhoami");
    }

    #[test]
    fn references_split_into_repository_and_tag() {
        assert_eq!(
            split_reference("198.18.0.1:5000/whoami:v1"),
            ("198.18.0.1:5000/whoami", "v1")
        );
        assert_eq!(
            split_reference("198.18.0.1:5000/whoami"),
            ("198.18.0.1:5000/whoami", "")
        );
        assert_eq!(
            split_reference("r.example/a@sha256:00"),
            ("r.example/a", "sha256:00")
        );
    }

    #[test]
    fn layout_archives_are_told_from_rootfs_tarballs() {
        let dir = std::env::temp_dir().join(format!("shoal-cli-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("blobs/sha256")).expect("layout dir");
        std::fs::write(dir.join("oci-layout"), "{}").expect("marker");
        let layout = archive_dir(&dir).expect("archive");
        std::fs::remove_file(dir.join("oci-layout")).expect("remove marker");
        let rootfs = archive_dir(&dir).expect("archive");
        std::fs::remove_dir_all(&dir).expect("cleanup");
        assert!(is_layout_archive(&layout));
        assert!(!is_layout_archive(&rootfs));
        assert!(!is_layout_archive(b"not a tarball"));
    }
}
