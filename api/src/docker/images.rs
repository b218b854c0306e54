//! Docker's `ImageInspect` document (`GET /images/{name}/json`), as shoald
//! answers it for the images in a node's store and as a client reads it
//! from shoald or dockerd. Fields Docker may leave out default when read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::nullable;

/// `GET /images/{name}/json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageInspect {
    /// `sha256:…` of the image config.
    pub id: String,
    /// `name:tag` references naming the image.
    #[serde(deserialize_with = "nullable")]
    pub repo_tags: Vec<String>,
    /// `name@sha256:…` references naming the image.
    #[serde(deserialize_with = "nullable")]
    pub repo_digests: Vec<String>,
    /// The parent image's ID (empty: none).
    pub parent: String,
    /// The commit message (empty).
    pub comment: String,
    /// RFC 3339 creation time.
    pub created: String,
    /// The image's author.
    pub author: String,
    /// How a container of the image runs.
    #[serde(deserialize_with = "nullable")]
    pub config: ImageConfig,
    /// CPU architecture (`amd64`, …).
    pub architecture: String,
    /// Operating system (`linux`).
    pub os: String,
    /// Bytes of the layers.
    pub size: u64,
    /// The layers' diff IDs.
    #[serde(rename = "RootFS", deserialize_with = "nullable")]
    pub root_fs: RootFs,
}

/// An image's runtime configuration, in Docker's words.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageConfig {
    /// User (name or UID, optionally `:group`).
    pub user: String,
    /// `KEY=value` entries.
    #[serde(deserialize_with = "nullable")]
    pub env: Vec<String>,
    /// The default command.
    #[serde(deserialize_with = "nullable")]
    pub cmd: Vec<String>,
    /// The entrypoint.
    #[serde(deserialize_with = "nullable")]
    pub entrypoint: Vec<String>,
    /// The working directory.
    pub working_dir: String,
    /// Labels.
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    /// The signal that stops a container (empty: SIGTERM).
    pub stop_signal: String,
}

/// The image's layers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RootFs {
    /// `layers`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// Each layer's diff ID (`sha256:…` of its uncompressed tar).
    #[serde(deserialize_with = "nullable")]
    pub layers: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dockerd_and_writes_docker_names() {
        let dockerd = r#"{"Id":"sha256:ab","RepoTags":["busybox:latest"],"RepoDigests":null,
            "Parent":"","Comment":"","Created":"2024-09-26T21:31:42Z","Config":{"Cmd":["sh"],
            "Env":["PATH=/bin"],"Entrypoint":null,"Labels":null,"WorkingDir":"","User":""},
            "Architecture":"amd64","Os":"linux","Size":4261550,
            "RootFS":{"Type":"layers","Layers":["sha256:cd"]},"Metadata":{}}"#;
        let image: ImageInspect = serde_json::from_str(dockerd).expect("dockerd's document");
        assert_eq!(image.config.cmd, ["sh"]);
        assert!(image.repo_digests.is_empty() && image.config.entrypoint.is_empty());
        assert_eq!(image.root_fs.layers, ["sha256:cd"]);
        let written = serde_json::to_value(&image).expect("json");
        assert_eq!(written["RootFS"]["Type"], "layers");
        assert_eq!(written["Config"]["WorkingDir"], "");
        assert_eq!(written["Id"], "sha256:ab");
    }
}
