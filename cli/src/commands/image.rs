//! `shoal image …`: import a root filesystem tarball into this node's image
//! store (like `docker import`), list the images (like `docker images`).

use std::io::Read as _;

use anyhow::{Context, Result};
use clap::Subcommand;
use shoal_api::Client;

use crate::output::Table;

/// `shoal image` verbs.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Import the contents from a tarball to create a filesystem image.
    Import {
        /// Apply a Dockerfile instruction to the image (CMD, ENTRYPOINT,
        /// ENV, WORKDIR, USER), e.g. `-c 'CMD ["/bin/app"]'`.
        #[arg(short = 'c', long = "change")]
        changes: Vec<String>,
        /// The tarball, or `-` for standard input.
        file: String,
        /// `name[:tag]` of the new image.
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
        ImageCommand::Ls => ls(client).await,
    }
}

fn query_escape(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn import(client: &Client, file: &str, reference: &str, changes: &[String]) -> Result<()> {
    let mut tarball = Vec::new();
    if file == "-" {
        std::io::stdin()
            .read_to_end(&mut tarball)
            .context("reading standard input")?;
    } else {
        tarball = std::fs::read(file).with_context(|| format!("reading {file}"))?;
    }
    let (repo, tag) = match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (reference, ""),
    };
    let mut path = format!(
        "/images/create?fromSrc=-&repo={}&tag={}",
        query_escape(repo),
        query_escape(tag)
    );
    for change in changes {
        path.push_str("&changes=");
        path.push_str(&query_escape(change));
    }
    let answer = client
        .post_bytes(&path, tarball, "application/x-tar")
        .await?;
    let status: serde_json::Value =
        serde_json::from_slice(&answer).context("reading the import result")?;
    println!("{}", status["status"].as_str().unwrap_or_default());
    Ok(())
}

async fn ls(client: &Client) -> Result<()> {
    let images: Vec<serde_json::Value> = client.get_json("/images/json").await?;
    let mut table = Table::new(["REPOSITORY", "TAG", "IMAGE ID", "SIZE"]);
    for image in &images {
        let reference = image["RepoTags"][0].as_str().unwrap_or("<none>:<none>");
        let (repo, tag) = reference.rsplit_once(':').unwrap_or((reference, "<none>"));
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
        assert_eq!(query_escape("shoal/whoami"), "shoal%2Fwhoami");
    }
}
