//! Pulling images from an OCI distribution registry into the node's
//! [`ImageStore`] (`docker pull HOST[:PORT]/NAME[:TAG|@DIGEST]`).
//!
//! The manifest is fetched with every media type shoal reads in `Accept`
//! (OCI manifest and index, Docker schema 2 manifest and manifest list); an
//! index is followed to its linux/amd64 manifest. Config and layers are
//! streamed into the store as they are (compressed layers stay compressed,
//! with their media type; [`ImageStore::unpack`] reads gzip) and each is
//! checked against its sha256 digest before it is renamed into place; blobs
//! the store already has are not fetched again. A bearer-token challenge
//! (`WWW-Authenticate: Bearer realm=…`) is answered with an anonymous token.
//!
//! Registries are reached over HTTPS (rustls, the system's root
//! certificates) unless listed as insecure (`shoald --insecure-registry
//! HOST:PORT`), which are reached over plain HTTP only. A registry that
//! answers plain HTTP to the TLS handshake is reported with the flag to
//! set, as dockerd does.

use std::{
    io::{self, Write as _},
    pin::Pin,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use http_body_util::{BodyExt as _, Empty};
use hyper::{
    Request, Response, StatusCode, Uri,
    body::{Bytes, Incoming},
    header,
};
use hyper_util::rt::TokioIo;
use oci_spec::image::{Descriptor, Digest, ImageIndex, ImageManifest, MediaType};
use sha2::{Digest as _, Sha256};
use shoal_api::client::query_value;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};

use crate::images::{
    INDEX_MEDIA_TYPES, ImageError, ImageStore, ImageSummary, MANIFEST_MEDIA_TYPES, Reference,
    pick_platform,
};

/// How long connecting to a registry may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a registry may stay silent (answer headers, body frames).
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest manifest, index or token answer read into memory.
const MAX_DOCUMENT_BYTES: usize = 4 << 20;
/// Redirects followed for one request (blob storage backends redirect).
const MAX_REDIRECTS: usize = 5;

/// Why a pull failed.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The reference is invalid, or storing the image failed.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The reference names no registry host.
    #[error(
        "{reference}: pulls need a registry: HOST[:PORT]/NAME[:TAG] (Docker Hub names are not supported)"
    )]
    NoRegistry {
        /// The reference as given.
        reference: String,
    },
    /// The registry speaks plain HTTP and is not listed as insecure.
    #[error(
        "http: server gave HTTP response to HTTPS client: registry {registry} serves plain HTTP; \
         start shoald with --insecure-registry {registry} to pull from it"
    )]
    PlainHttp {
        /// `host[:port]`.
        registry: String,
    },
    /// A redirect or token realm asked for plain HTTP to a host that is not
    /// an insecure registry.
    #[error("refusing plain HTTP to {authority} (not an --insecure-registry)")]
    InsecureUrl {
        /// `host[:port]`.
        authority: String,
    },
    /// The registry could not be reached.
    #[error("cannot reach registry {registry}: {source}")]
    Connect {
        /// `host[:port]`.
        registry: String,
        /// The error.
        source: io::Error,
    },
    /// The TLS handshake failed.
    #[error("TLS with registry {registry}: {source}")]
    Tls {
        /// `host[:port]`.
        registry: String,
        /// The error.
        source: io::Error,
    },
    /// The HTTP exchange failed.
    #[error("talking to registry {registry}: {source}")]
    Http {
        /// `host[:port]`.
        registry: String,
        /// The error.
        source: hyper::Error,
    },
    /// The registry went silent.
    #[error("registry {registry} did not answer within {seconds} s")]
    Timeout {
        /// `host[:port]`.
        registry: String,
        /// The limit.
        seconds: u64,
    },
    /// The registry has no such manifest (tag or digest).
    #[error("manifest for {reference} not found: {message}")]
    NotFound {
        /// The normalized reference.
        reference: String,
        /// What the registry said.
        message: String,
    },
    /// The registry wants credentials shoal does not have.
    #[error("pulling {reference}: registry requires authentication: {message}")]
    Unauthorized {
        /// The normalized reference.
        reference: String,
        /// What the registry said.
        message: String,
    },
    /// The registry answered an unexpected status.
    #[error("registry {registry} answered {status} for {what}: {message}")]
    Status {
        /// `host[:port]`.
        registry: String,
        /// The status.
        status: StatusCode,
        /// What was asked.
        what: String,
        /// The error body's message.
        message: String,
    },
    /// The registry's answer is not what the protocol says.
    #[error("pulling {reference}: {reason}")]
    Protocol {
        /// The normalized reference.
        reference: String,
        /// What is wrong.
        reason: String,
    },
}

/// Steps of a pull, for progress output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PullEvent {
    /// The image manifest was resolved to `digest`.
    Manifest {
        /// `sha256:…` of the manifest.
        digest: String,
        /// Whether the store already names this manifest by the reference.
        up_to_date: bool,
    },
    /// The store already had this blob.
    BlobExists {
        /// `sha256:…`.
        digest: String,
    },
    /// A blob was downloaded and verified.
    BlobDownloaded {
        /// `sha256:…`.
        digest: String,
        /// Bytes.
        size: u64,
    },
}

/// Pulls `reference` (`host[:port]/name[:tag|@sha256:…]`) into `store`,
/// tagged as the normalized reference; `insecure` lists the `host[:port]`
/// registries reached over plain HTTP. Returns the image's summary.
pub async fn pull(
    store: &ImageStore,
    reference: &str,
    insecure: &[String],
) -> Result<ImageSummary, PullError> {
    pull_with_progress(store, reference, insecure, &|_| {}).await
}

/// [`pull`], telling `progress` about each step.
pub async fn pull_with_progress(
    store: &ImageStore,
    reference: &str,
    insecure: &[String],
    progress: &(dyn Fn(PullEvent) + Send + Sync),
) -> Result<ImageSummary, PullError> {
    let parsed = Reference::parse(reference)?;
    let Some(registry) = parsed.registry.clone() else {
        return Err(PullError::NoRegistry {
            reference: reference.to_owned(),
        });
    };
    let normalized = parsed.to_string();
    let mut client = Client {
        registry: registry.clone(),
        insecure: insecure.to_vec(),
        token: None,
        reference: normalized.clone(),
    };
    let protocol = |reason: String| PullError::Protocol {
        reference: normalized.clone(),
        reason,
    };

    let wanted = parsed.digest.as_deref().unwrap_or(&parsed.tag);
    let mut document = client
        .manifest(&parsed.path, wanted, parsed.digest.as_deref())
        .await?;
    if INDEX_MEDIA_TYPES.contains(&document.media_type.as_str()) {
        let index = ImageIndex::from_reader(document.bytes.as_slice())
            .map_err(|e| protocol(format!("unreadable image index: {e}")))?;
        let chosen = pick_platform(index.manifests())
            .ok_or_else(|| protocol("its image index has no linux/amd64 manifest".into()))?;
        let digest = chosen.digest().to_string();
        document = client
            .manifest(&parsed.path, &digest, Some(&digest))
            .await?;
    }
    if !MANIFEST_MEDIA_TYPES.contains(&document.media_type.as_str()) {
        return Err(protocol(format!(
            "unsupported manifest media type {:?} (OCI or Docker schema 2 only)",
            document.media_type
        )));
    }
    let manifest = ImageManifest::from_reader(document.bytes.as_slice())
        .map_err(|e| protocol(format!("unreadable image manifest: {e}")))?;
    let up_to_date = store
        .manifest_descriptor(&normalized)?
        .is_some_and(|d| d.digest().to_string() == document.digest);
    progress(PullEvent::Manifest {
        digest: document.digest.clone(),
        up_to_date,
    });
    for layer in manifest.layers() {
        let media_type = layer.media_type().to_string();
        if !(media_type.ends_with("gzip") || media_type.ends_with("tar")) {
            return Err(protocol(format!(
                "unsupported layer media type {media_type} (plain or gzip'd tar only)"
            )));
        }
    }

    for blob in std::iter::once(manifest.config()).chain(manifest.layers()) {
        let digest = blob.digest().to_string();
        if store.has_blob(blob) {
            progress(PullEvent::BlobExists { digest });
            continue;
        }
        client.blob(store, &parsed.path, blob).await?;
        progress(PullEvent::BlobDownloaded {
            digest,
            size: blob.size(),
        });
    }

    let descriptor = Descriptor::new(
        MediaType::from(document.media_type.as_str()),
        document.bytes.len() as u64,
        document
            .digest
            .parse::<Digest>()
            .map_err(|e| protocol(format!("manifest digest: {e}")))?,
    );
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        let mut writer = store.blob_writer(&descriptor)?;
        writer
            .write_all(&document.bytes)
            .map_err(|source| ImageError::Io {
                op: "writing",
                path: "the manifest blob".into(),
                source,
            })?;
        writer.commit()?;
        let created = store.config_created(manifest.config()).unwrap_or_default();
        store.finish_import(&descriptor, &manifest, &normalized, &created)
    })
    .await
    .map_err(|e| {
        PullError::Image(ImageError::Io {
            op: "storing",
            path: "the pulled image".into(),
            source: io::Error::other(e),
        })
    })?
    .map_err(PullError::Image)
}

/// A manifest or index as fetched.
struct Document {
    media_type: String,
    digest: String,
    bytes: Vec<u8>,
}

/// One registry, for the requests of one pull.
struct Client {
    registry: String,
    insecure: Vec<String>,
    /// The bearer token, once a challenge was answered.
    token: Option<String>,
    /// The normalized reference, for errors.
    reference: String,
}

impl Client {
    fn base(&self) -> String {
        let scheme = if self.is_insecure(&self.registry) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}", self.registry)
    }

    fn is_insecure(&self, authority: &str) -> bool {
        self.insecure.iter().any(|i| i == authority)
    }

    /// Fetches the manifest `wanted` (tag or digest) of `path`; checks it
    /// against `digest` when pinned, and against the registry's
    /// `Docker-Content-Digest` otherwise.
    async fn manifest(
        &mut self,
        path: &str,
        wanted: &str,
        digest: Option<&str>,
    ) -> Result<Document, PullError> {
        let accept = MANIFEST_MEDIA_TYPES
            .iter()
            .chain(&INDEX_MEDIA_TYPES)
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        let url = format!("{}/v2/{path}/manifests/{wanted}", self.base());
        let response = self.get(&url, &accept).await?;
        let announced = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or_default().trim().to_owned());
        let bytes = self.read_document(response).await?;
        let actual = format!("sha256:{:x}", Sha256::digest(&bytes));
        let protocol = |reason: String| PullError::Protocol {
            reference: self.reference.clone(),
            reason,
        };
        if let Some(expected) = digest.or(announced.as_deref())
            && expected != actual
        {
            return Err(protocol(format!(
                "manifest {wanted} hashes to {actual}, not {expected}"
            )));
        }
        let media_type = match content_type {
            Some(t) if !t.is_empty() && t != "application/json" => t,
            _ => serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["mediaType"].as_str().map(str::to_owned))
                .unwrap_or_default(),
        };
        Ok(Document {
            media_type,
            digest: actual,
            bytes,
        })
    }

    /// Streams the blob `descriptor` names into `store`.
    async fn blob(
        &mut self,
        store: &ImageStore,
        path: &str,
        descriptor: &Descriptor,
    ) -> Result<(), PullError> {
        let url = format!("{}/v2/{path}/blobs/{}", self.base(), descriptor.digest());
        let response = self.get(&url, "*/*").await?;
        let mut writer = store.blob_writer(descriptor)?;
        let mut body = response.into_body();
        while let Some(frame) = self.idle(body.frame()).await? {
            let frame = frame.map_err(|source| self.http_error(source))?;
            if let Ok(data) = frame.into_data() {
                writer.write_all(&data).map_err(|source| ImageError::Io {
                    op: "writing",
                    path: format!("blob {}", descriptor.digest()).into(),
                    source,
                })?;
            }
        }
        tokio::task::spawn_blocking(move || writer.commit())
            .await
            .map_err(|e| {
                PullError::Image(ImageError::Io {
                    op: "storing",
                    path: "a blob".into(),
                    source: io::Error::other(e),
                })
            })??;
        Ok(())
    }

    /// A small answer's body.
    async fn read_document(&self, response: Response<Incoming>) -> Result<Vec<u8>, PullError> {
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        while let Some(frame) = self.idle(body.frame()).await? {
            let frame = frame.map_err(|source| self.http_error(source))?;
            if let Ok(data) = frame.into_data() {
                bytes.extend_from_slice(&data);
                if bytes.len() > MAX_DOCUMENT_BYTES {
                    return Err(PullError::Protocol {
                        reference: self.reference.clone(),
                        reason: format!("an answer is larger than {MAX_DOCUMENT_BYTES} bytes"),
                    });
                }
            }
        }
        Ok(bytes)
    }

    async fn idle<T>(&self, future: impl Future<Output = T>) -> Result<T, PullError> {
        tokio::time::timeout(IDLE_TIMEOUT, future)
            .await
            .map_err(|_| PullError::Timeout {
                registry: self.registry.clone(),
                seconds: IDLE_TIMEOUT.as_secs(),
            })
    }

    fn http_error(&self, source: hyper::Error) -> PullError {
        PullError::Http {
            registry: self.registry.clone(),
            source,
        }
    }

    /// `GET url`, answering one bearer challenge and following redirects;
    /// a non-2xx answer becomes an error.
    async fn get(&mut self, url: &str, accept: &str) -> Result<Response<Incoming>, PullError> {
        let mut uri = parse_uri(url, &self.reference)?;
        let mut challenged = false;
        for _ in 0..=MAX_REDIRECTS {
            let same_host = uri.authority().map(hyper::http::uri::Authority::as_str)
                == Some(self.registry.as_str());
            let token = self.token.clone().filter(|_| same_host);
            let response = self.send(&uri, accept, token.as_deref()).await?;
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            if status.is_redirection()
                && let Some(location) = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
            {
                uri = resolve(&uri, location, &self.reference)?;
                continue;
            }
            if status == StatusCode::UNAUTHORIZED && same_host && !challenged {
                challenged = true;
                let challenge = response
                    .headers()
                    .get(header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
                    .unwrap_or_default();
                self.token = Some(self.fetch_token(&challenge).await?);
                continue;
            }
            let message = error_message(&self.read_document(response).await.unwrap_or_default());
            return Err(match status {
                StatusCode::NOT_FOUND if url.contains("/manifests/") => PullError::NotFound {
                    reference: self.reference.clone(),
                    message,
                },
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => PullError::Unauthorized {
                    reference: self.reference.clone(),
                    message,
                },
                _ => PullError::Status {
                    registry: self.registry.clone(),
                    status,
                    what: uri.path().to_owned(),
                    message,
                },
            });
        }
        Err(PullError::Protocol {
            reference: self.reference.clone(),
            reason: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }

    /// Answers a `Bearer` challenge with an anonymous token from its realm.
    async fn fetch_token(&mut self, challenge: &str) -> Result<String, PullError> {
        let unauthorized = |message: String| PullError::Unauthorized {
            reference: self.reference.clone(),
            message,
        };
        let Some(params) = parse_bearer_challenge(challenge) else {
            return Err(unauthorized(format!(
                "unsupported challenge {challenge:?} (shoal answers Bearer challenges anonymously)"
            )));
        };
        let realm = params
            .iter()
            .find(|(k, _)| k == "realm")
            .map(|(_, v)| v.clone())
            .ok_or_else(|| unauthorized("Bearer challenge without a realm".into()))?;
        let query: Vec<String> = params
            .iter()
            .filter(|(k, _)| k == "service" || k == "scope")
            .map(|(k, v)| format!("{k}={}", query_value(v)))
            .collect();
        let separator = if realm.contains('?') { '&' } else { '?' };
        let url = format!("{realm}{separator}{}", query.join("&"));
        let uri = parse_uri(&url, &self.reference)?;
        let response = self.send(&uri, "application/json", None).await?;
        let status = response.status();
        let body = self.read_document(response).await?;
        if !status.is_success() {
            return Err(unauthorized(format!(
                "token service answered {status}: {}",
                error_message(&body)
            )));
        }
        let answer: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| unauthorized(format!("unreadable token answer: {e}")))?;
        answer["token"]
            .as_str()
            .or_else(|| answer["access_token"].as_str())
            .map(str::to_owned)
            .ok_or_else(|| unauthorized("the token answer has no token".into()))
    }

    /// One request on a fresh connection.
    async fn send(
        &self,
        uri: &Uri,
        accept: &str,
        token: Option<&str>,
    ) -> Result<Response<Incoming>, PullError> {
        let authority = uri.authority().map(ToString::to_string).unwrap_or_default();
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") if self.is_insecure(&authority) => false,
            _ => return Err(PullError::InsecureUrl { authority }),
        };
        let host = uri.host().unwrap_or_default().to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let connect_error = |source| PullError::Connect {
            registry: authority.clone(),
            source,
        };
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host.as_str(), port)))
            .await
            .map_err(|_| {
                connect_error(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no connection within {} s", CONNECT_TIMEOUT.as_secs()),
                ))
            })?
            .map_err(connect_error)?;
        let mut request = Request::get(uri.path_and_query().map_or("/", |p| p.as_str()))
            .header(header::HOST, &authority)
            .header(header::ACCEPT, accept)
            .header(
                header::USER_AGENT,
                concat!("shoal/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(Empty::<Bytes>::new())
            .map_err(|e| PullError::Protocol {
                reference: self.reference.clone(),
                reason: format!("building the request for {uri}: {e}"),
            })?;
        if !https {
            return self.exchange(tcp, request, &authority).await;
        }
        let saw_http = Arc::new(AtomicBool::new(false));
        let sniffed = Sniff {
            inner: tcp,
            head: Vec::new(),
            saw_http: Arc::clone(&saw_http),
        };
        let server_name =
            rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| PullError::Tls {
                registry: authority.clone(),
                source: io::Error::new(io::ErrorKind::InvalidInput, e),
            })?;
        let config = tls_config().map_err(|e| PullError::Tls {
            registry: authority.clone(),
            source: io::Error::other(e),
        })?;
        let connector = tokio_rustls::TlsConnector::from(config);
        let tls = self
            .idle(connector.connect(server_name, sniffed))
            .await?
            .map_err(|source| {
                if saw_http.load(Ordering::Relaxed) {
                    PullError::PlainHttp {
                        registry: authority.clone(),
                    }
                } else {
                    PullError::Tls {
                        registry: authority.clone(),
                        source,
                    }
                }
            })?;
        self.exchange(tls, request, &authority).await
    }

    async fn exchange<S>(
        &self,
        stream: S,
        request: Request<Empty<Bytes>>,
        authority: &str,
    ) -> Result<Response<Incoming>, PullError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let http_error = |source| PullError::Http {
            registry: authority.to_owned(),
            source,
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(http_error)?;
        // Drives the connection until the body is read or dropped.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        self.idle(sender.send_request(request))
            .await?
            .map_err(http_error)
    }
}

/// The TLS client configuration: the system's root certificates, loaded
/// once.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, rustls::Error>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            let native = rustls_native_certs::load_native_certs();
            for error in &native.errors {
                tracing::warn!(%error, "loading the system's root certificates");
            }
            let (added, ignored) = roots.add_parsable_certificates(native.certs);
            tracing::debug!(added, ignored, "root certificates for registries");
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Ok(Arc::new(config))
        })
        .clone()
}

/// A stream that remembers whether the peer's first bytes were `HTTP/`:
/// a plain HTTP server answering a TLS client hello.
struct Sniff<S> {
    inner: S,
    head: Vec<u8>,
    saw_http: Arc<AtomicBool>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Sniff<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if self.head.len() < 5 {
            let new = &buf.filled()[before..];
            let take = new.len().min(5 - self.head.len());
            let new = new[..take].to_vec();
            self.head.extend_from_slice(&new);
            if self.head == b"HTTP/" {
                self.saw_http.store(true, Ordering::Relaxed);
            }
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Sniff<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

fn parse_uri(url: &str, reference: &str) -> Result<Uri, PullError> {
    let uri: Uri = url.parse().map_err(|e| PullError::Protocol {
        reference: reference.to_owned(),
        reason: format!("invalid URL {url:?}: {e}"),
    })?;
    if uri.scheme().is_none() || uri.authority().is_none() {
        return Err(PullError::Protocol {
            reference: reference.to_owned(),
            reason: format!("not an absolute URL: {url:?}"),
        });
    }
    Ok(uri)
}

/// `location` (a redirect's, absolute or absolute-path) against `base`.
fn resolve(base: &Uri, location: &str, reference: &str) -> Result<Uri, PullError> {
    if location.starts_with('/') && !location.starts_with("//") {
        let scheme = base.scheme_str().unwrap_or("https");
        let authority = base
            .authority()
            .map(ToString::to_string)
            .unwrap_or_default();
        return parse_uri(&format!("{scheme}://{authority}{location}"), reference);
    }
    parse_uri(location, reference)
}

/// The parameters of a `Bearer` challenge (`Bearer realm="…",service="…"`);
/// `None` for other schemes.
fn parse_bearer_challenge(challenge: &str) -> Option<Vec<(String, String)>> {
    let (scheme, rest) = challenge.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = Vec::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let key = key.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            after.split_once(',').map_or((after, ""), |(v, r)| (v, r))
        };
        params.push((key, value.trim().to_owned()));
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    Some(params)
}

/// The messages of a registry's error body (`{"errors":[{"code","message"}]}`),
/// or the body itself.
fn error_message(body: &[u8]) -> String {
    let parsed: Option<Vec<String>> = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v["errors"].as_array().map(|errors| {
                errors
                    .iter()
                    .map(|e| {
                        let code = e["code"].as_str().unwrap_or_default().to_ascii_lowercase();
                        let message = e["message"].as_str().unwrap_or_default();
                        if code.replace('_', " ") == message || code.is_empty() {
                            message.to_owned()
                        } else {
                            format!("{}: {message}", code.replace('_', " "))
                        }
                    })
                    .collect()
            })
        });
    match parsed {
        Some(messages) if !messages.is_empty() => messages.join("; "),
        _ => String::from_utf8_lossy(body)
            .trim()
            .chars()
            .take(200)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_parse() {
        let params = parse_bearer_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull""#,
        )
        .expect("a bearer challenge");
        assert_eq!(
            params,
            [
                ("realm".into(), "https://auth.example/token".into()),
                ("service".into(), "registry.example".into()),
                ("scope".into(), "repository:a/b:pull".into()),
            ]
        );
        assert_eq!(
            parse_bearer_challenge("bearer realm=https://t.example/x, service=r"),
            Some(vec![
                ("realm".into(), "https://t.example/x".into()),
                ("service".into(), "r".into())
            ])
        );
        assert_eq!(parse_bearer_challenge(r#"Basic realm="registry""#), None);
        assert_eq!(parse_bearer_challenge(r#"Bearer realm="unclosed"#), None);
    }

    #[test]
    fn registry_errors_read_like_docker() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"nope"}}]}"#;
        assert_eq!(error_message(body), "manifest unknown");
        let body = br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#;
        assert_eq!(
            error_message(body),
            "name unknown: repository name not known to registry"
        );
        assert_eq!(error_message(b"404 page not found\n"), "404 page not found");
    }

    #[test]
    fn redirects_resolve_against_the_registry() {
        let base: Uri = "http://198.18.0.1:5000/v2/a/blobs/sha256:00"
            .parse()
            .expect("uri");
        assert_eq!(
            resolve(&base, "/storage/x?sig=1", "r")
                .expect("relative")
                .to_string(),
            "http://198.18.0.1:5000/storage/x?sig=1"
        );
        assert_eq!(
            resolve(&base, "https://cdn.example/blob", "r")
                .expect("absolute")
                .to_string(),
            "https://cdn.example/blob"
        );
        assert!(resolve(&base, "relative/path", "r").is_err());
    }

    #[tokio::test]
    async fn pulls_need_a_registry_and_refuse_plain_http_elsewhere() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ImageStore::new(dir.path());
        let error = pull(&store, "whoami:latest", &[])
            .await
            .expect_err("no registry");
        assert!(matches!(error, PullError::NoRegistry { .. }), "{error}");
        let error = pull(&store, "Bad Name", &[]).await.expect_err("invalid");
        assert!(
            error.to_string().starts_with("invalid reference format"),
            "{error}"
        );
        // A redirect to plain HTTP on a host that is not listed.
        let client = Client {
            registry: "registry.example".into(),
            insecure: vec!["198.18.0.1:5000".into()],
            token: None,
            reference: "registry.example/a:latest".into(),
        };
        let uri: Uri = "http://cdn.example/blob".parse().expect("uri");
        let error = client
            .send(&uri, "*/*", None)
            .await
            .expect_err("plain HTTP");
        assert_eq!(
            error.to_string(),
            "refusing plain HTTP to cdn.example (not an --insecure-registry)"
        );
        assert_eq!(client.base(), "https://registry.example");
    }

    #[tokio::test]
    async fn a_plain_http_server_is_told_to_be_marked_insecure() {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen on loopback");
        let addr = listener.local_addr().expect("addr");
        let server = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().expect("accept");
            let mut hello = [0u8; 512];
            let _ = socket.read(&mut hello);
            let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ImageStore::new(dir.path());
        let error = pull(&store, &format!("{addr}/whoami"), &[])
            .await
            .expect_err("plain HTTP");
        assert!(matches!(error, PullError::PlainHttp { .. }), "{error}");
        assert!(
            error
                .to_string()
                .contains(&format!("start shoald with --insecure-registry {addr}")),
            "{error}"
        );
        server.join().expect("server");
        assert!(store.list().expect("list").is_empty());
    }
}
