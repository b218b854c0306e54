//! HTTP/1.1 client for `shoald`'s unix socket.

use std::path::PathBuf;

use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode, body::Bytes};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tokio::net::UnixStream;

/// Talks to one `shoald` over its unix socket.
#[derive(Clone, Debug)]
pub struct Client {
    socket: PathBuf,
}

/// Why a request to shoald failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket could not be reached.
    #[error("cannot connect to shoald at {socket}: {source} (is shoald running?)")]
    Connect {
        /// The socket path.
        socket: PathBuf,
        /// The connect error.
        source: std::io::Error,
    },
    /// The HTTP exchange failed.
    #[error("request {path} to shoald at {socket} failed: {source}")]
    Http {
        /// The socket path.
        socket: PathBuf,
        /// The request path.
        path: String,
        /// The transport error.
        source: hyper::Error,
    },
    /// shoald answered with an error status; `message` is Docker's error body.
    #[error("shoald answered {status} for {path}: {message}")]
    Status {
        /// The request path.
        path: String,
        /// HTTP status.
        status: StatusCode,
        /// The `message` of the error body, or the raw body.
        message: String,
    },
    /// The body was not the expected JSON.
    #[error("unexpected answer from shoald for {path}: {source}")]
    Decode {
        /// The request path.
        path: String,
        /// The JSON error.
        source: serde_json::Error,
    },
}

/// Docker's error body: `{"message": "..."}`.
#[derive(Deserialize)]
struct ErrorBody {
    message: String,
}

impl Client {
    /// A client for the socket at `socket`.
    #[must_use]
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
        }
    }

    /// `GET path` and decode the JSON answer.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let body = self.get(path).await?;
        decode(path, &body)
    }

    /// `POST path` with `body` as JSON, and decode the JSON answer.
    pub async fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let answer = self.post(path, body).await?;
        decode(path, &answer)
    }

    /// `GET path` and return the body of a 2xx answer.
    pub async fn get(&self, path: &str) -> Result<Bytes, ClientError> {
        self.send(Method::GET, path, None).await
    }

    /// `POST path` with `body` as JSON; the body of a 2xx answer.
    pub async fn post<B: Serialize>(&self, path: &str, body: &B) -> Result<Bytes, ClientError> {
        let json = serde_json::to_vec(body).map_err(|source| ClientError::Decode {
            path: path.to_owned(),
            source,
        })?;
        self.send(Method::POST, path, Some((json, "application/json")))
            .await
    }

    /// `POST path` with raw `body` of `content_type`; the body of a 2xx answer.
    pub async fn post_bytes(
        &self,
        path: &str,
        body: Vec<u8>,
        content_type: &'static str,
    ) -> Result<Bytes, ClientError> {
        self.send(Method::POST, path, Some((body, content_type)))
            .await
    }

    /// `DELETE path`; the body of a 2xx answer.
    pub async fn delete(&self, path: &str) -> Result<Bytes, ClientError> {
        self.send(Method::DELETE, path, None).await
    }

    /// A `GET` whose answer is a stream (logs): calls `on_chunk` with each
    /// piece of the body as it arrives, until the server ends it or
    /// `on_chunk` returns `false`.
    pub async fn get_stream(
        &self,
        path: &str,
        on_chunk: &mut (dyn FnMut(&[u8]) -> bool + Send),
    ) -> Result<(), ClientError> {
        let (response, driver) = self.request(Method::GET, path, None).await?;
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|source| ClientError::Http {
                socket: self.socket.clone(),
                path: path.to_owned(),
                source,
            })?;
            if let Some(data) = frame.data_ref()
                && !on_chunk(data)
            {
                break;
            }
        }
        driver.abort();
        Ok(())
    }

    /// One request on a fresh connection; a non-2xx answer becomes
    /// [`ClientError::Status`] with Docker's error message.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(Vec<u8>, &'static str)>,
    ) -> Result<Bytes, ClientError> {
        let (response, driver) = self.request(method, path, body).await?;
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|source| ClientError::Http {
                socket: self.socket.clone(),
                path: path.to_owned(),
                source,
            })?
            .to_bytes();
        driver.abort();
        Ok(body)
    }

    /// Sends a request on a fresh connection and returns the successful
    /// response (its body unread) and the connection's driver; a non-2xx
    /// answer becomes [`ClientError::Status`] with Docker's error message.
    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<(Vec<u8>, &'static str)>,
    ) -> Result<
        (
            hyper::Response<hyper::body::Incoming>,
            tokio::task::JoinHandle<()>,
        ),
        ClientError,
    > {
        let stream =
            UnixStream::connect(&self.socket)
                .await
                .map_err(|source| ClientError::Connect {
                    socket: self.socket.clone(),
                    source,
                })?;
        let http_err = |source| ClientError::Http {
            socket: self.socket.clone(),
            path: path.to_owned(),
            source,
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(http_err)?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "shoald");
        let body = match body {
            Some((bytes, content_type)) => {
                builder = builder.header(hyper::header::CONTENT_TYPE, content_type);
                bytes
            }
            None => Vec::new(),
        };
        let request =
            builder
                .body(Full::new(Bytes::from(body)))
                .map_err(|e| ClientError::Status {
                    path: path.to_owned(),
                    status: StatusCode::BAD_REQUEST,
                    message: e.to_string(),
                })?;
        let response = sender.send_request(request).await.map_err(http_err)?;
        let status = response.status();
        if status.is_success() {
            Ok((response, driver))
        } else {
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(http_err)?
                .to_bytes();
            driver.abort();
            let message = serde_json::from_slice::<ErrorBody>(&body).map_or_else(
                |_| String::from_utf8_lossy(&body).into_owned(),
                |e| e.message,
            );
            Err(ClientError::Status {
                path: path.to_owned(),
                status,
                message,
            })
        }
    }
}

fn decode<T: DeserializeOwned>(path: &str, body: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(body).map_err(|source| ClientError::Decode {
        path: path.to_owned(),
        source,
    })
}

/// Percent-encodes `text` for a query string value (RFC 3986 unreserved
/// characters stay), e.g. Docker's JSON `filters`.
#[must_use]
pub fn query_value(text: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}
