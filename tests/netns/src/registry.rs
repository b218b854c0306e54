//! A local OCI registry for the pull tests (DESIGN.md §6): Debian's
//! `docker-registry` (distribution 2.8) run inside a node's network
//! namespace on its underlay address, port 5000, plain HTTP, with
//! filesystem storage in the test's directory; and a minimal push (blob
//! uploads and a manifest PUT, from inside that namespace) that copies an
//! image out of a node's OCI layout store into it.

use std::{
    fmt::Write as _,
    io::{Read as _, Write as _},
    net::{SocketAddrV4, TcpStream},
    path::{Path, PathBuf},
    time::Duration,
};

use serde_json::Value;

use crate::{eventually, netns::run_in, process::DaemonProcess, world::Node};

/// An HTTP answer: status, headers (names lowercased) and body.
type Answer = (u16, Vec<(String, String)>, Vec<u8>);

/// Debian's `docker-registry` package installs it here.
pub const REGISTRY_PROGRAM: &str = "/usr/bin/docker-registry";

/// The registry's port.
pub const REGISTRY_PORT: u16 = 5000;

/// A running registry, stopped (by PID) on drop. Drop it before the world
/// whose namespace it runs in.
#[derive(Debug)]
pub struct Registry {
    /// Stopped on drop; the storage lives in the world's directory.
    process: DaemonProcess,
    addr: SocketAddrV4,
    netns_path: String,
    log: PathBuf,
}

impl Registry {
    /// Starts `docker-registry serve` in `host`'s namespace on its underlay
    /// address, storing under `dir` (created), and waits until `/v2/`
    /// answers.
    ///
    /// # Panics
    /// When `docker-registry` is not installed (`cargo xtask setup`
    /// installs it), cannot start, or does not answer within 30 s.
    #[must_use]
    pub fn start(host: &Node, dir: &Path) -> Self {
        assert!(
            Path::new(REGISTRY_PROGRAM).is_file(),
            "{REGISTRY_PROGRAM} not found: install docker-registry (`cargo xtask setup` does)"
        );
        let addr = SocketAddrV4::new(host.addr(), REGISTRY_PORT);
        std::fs::create_dir_all(dir.join("storage")).expect("creating the registry's storage");
        let config = dir.join("config.yml");
        std::fs::write(&config, config_yaml(&dir.join("storage"), addr))
            .expect("writing the registry's config");
        let log = dir.join("registry.log");
        let process = DaemonProcess::spawn(
            Path::new(REGISTRY_PROGRAM),
            &["serve".to_owned(), config.display().to_string()],
            &host.netns().path(),
            "registry",
            &log,
        );
        let mut registry = Self {
            process,
            addr,
            netns_path: host.netns().path(),
            log,
        };
        eventually(
            "the registry to answer /v2/",
            Duration::from_secs(30),
            || {
                assert!(
                    !registry.process.has_exited(),
                    "docker-registry exited:\n{}",
                    registry.log()
                );
                let (status, _, _) = registry.request("GET", "/v2/", &[], &[])?;
                if status == 200 {
                    Ok(())
                } else {
                    Err(format!("GET /v2/ answered {status}"))
                }
            },
        );
        registry
    }

    /// `host:port` of the registry, as pulls name it.
    #[must_use]
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// The registry's log so far.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Pushes the image `reference` (as `index.json` names it) of the OCI
    /// layout store `layout` (a node's `data/images`) as `repository:tag`:
    /// every blob (uploaded unless the registry has it), then the manifest.
    /// Returns the manifest's digest.
    ///
    /// # Panics
    /// When the image is not in the layout or the registry refuses a step.
    #[expect(clippy::must_use_candidate, reason = "often pushed for the effect")]
    pub fn push(&self, layout: &Path, reference: &str, repository: &str, tag: &str) -> String {
        let read = |path: PathBuf| {
            std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        };
        let blob = |digest: &str| {
            read(
                layout
                    .join("blobs/sha256")
                    .join(digest.trim_start_matches("sha256:")),
            )
        };
        let index: Value =
            serde_json::from_slice(&read(layout.join("index.json"))).expect("index.json");
        let descriptor = index["manifests"]
            .as_array()
            .and_then(|manifests| {
                manifests
                    .iter()
                    .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == reference)
            })
            .unwrap_or_else(|| panic!("{reference} is not in {}", layout.display()))
            .clone();
        let digest = descriptor["digest"].as_str().expect("digest").to_owned();
        let media_type = descriptor["mediaType"]
            .as_str()
            .expect("media type")
            .to_owned();
        let manifest_bytes = blob(&digest);
        let manifest: Value = serde_json::from_slice(&manifest_bytes).expect("manifest");
        let mut blobs = vec![manifest["config"]["digest"].clone()];
        blobs.extend(
            manifest["layers"]
                .as_array()
                .expect("layers")
                .iter()
                .map(|l| l["digest"].clone()),
        );
        for digest in blobs {
            let digest = digest.as_str().expect("blob digest");
            let path = format!("/v2/{repository}/blobs/{digest}");
            let (status, _, _) = self.request("HEAD", &path, &[], &[]).expect("HEAD blob");
            if status == 200 {
                continue;
            }
            let (status, headers, body) = self
                .request(
                    "POST",
                    &format!("/v2/{repository}/blobs/uploads/"),
                    &[],
                    &[],
                )
                .expect("starting an upload");
            assert_eq!(
                status,
                202,
                "starting an upload: {}",
                String::from_utf8_lossy(&body)
            );
            let location = header(&headers, "location").expect("upload location");
            let location = location
                .strip_prefix(&format!("http://{}", self.addr))
                .unwrap_or(&location)
                .to_owned();
            let separator = if location.contains('?') { '&' } else { '?' };
            let (status, _, body) = self
                .request(
                    "PUT",
                    &format!("{location}{separator}digest={digest}"),
                    &[("Content-Type", "application/octet-stream")],
                    &blob(digest),
                )
                .expect("uploading a blob");
            assert_eq!(
                status,
                201,
                "uploading {digest}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        let (status, _, body) = self
            .request(
                "PUT",
                &format!("/v2/{repository}/manifests/{tag}"),
                &[("Content-Type", &media_type)],
                &manifest_bytes,
            )
            .expect("putting the manifest");
        assert_eq!(
            status,
            201,
            "putting the manifest: {}",
            String::from_utf8_lossy(&body)
        );
        digest
    }

    /// One HTTP/1.1 request to the registry from inside its namespace;
    /// returns the status, headers and body.
    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Answer, String> {
        let addr = self.addr;
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (name, value) in headers {
            let _ = write!(request, "{name}: {value}\r\n");
        }
        request.push_str("\r\n");
        let mut request = request.into_bytes();
        request.extend_from_slice(body);
        let head_only = method == "HEAD";
        run_in(&self.netns_path, move || {
            exchange(addr, &request, head_only)
        })
    }
}

/// Sends `request` to `addr` and reads the answer until the server closes.
fn exchange(addr: SocketAddrV4, request: &[u8], head_only: bool) -> Result<Answer, String> {
    let mut stream = TcpStream::connect_timeout(&addr.into(), Duration::from_secs(2))
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    stream.write_all(request).map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 16 << 10];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("reading from {addr}: {e}")),
        }
        if head_only && answer.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no HTTP header in {:?}", String::from_utf8_lossy(&answer)))?;
    let head = String::from_utf8_lossy(&answer[..end]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok((status, headers, answer[end + 4..].to_vec()))
}

fn header(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// The registry's configuration: filesystem storage under `storage`, plain
/// HTTP on `addr`, deletes allowed, no auth.
fn config_yaml(storage: &Path, addr: SocketAddrV4) -> String {
    format!(
        "version: 0.1\n\
         log:\n  level: info\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
         http:\n  addr: {addr}\n",
        storage.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn the_config_serves_plain_http_from_the_test_dir() {
        let yaml = config_yaml(
            Path::new("/tmp/world/registry/storage"),
            SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), REGISTRY_PORT),
        );
        assert!(
            yaml.contains("rootdirectory: /tmp/world/registry/storage\n"),
            "{yaml}"
        );
        assert!(yaml.contains("addr: 198.18.0.1:5000\n"), "{yaml}");
        assert!(!yaml.contains("auth"), "{yaml}");
    }
}
