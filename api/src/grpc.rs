//! Node-to-node gRPC: the generated code of `proto/shoal.proto`, its
//! conversions to and from the domain types ([`convert`]) and the TLS
//! channel every client uses. The caller supplies the rustls configuration
//! (mutual TLS with the node's certificate, or CA pinning while joining), so
//! this crate stays free of the PKI.

pub mod convert;

use std::{sync::Arc, time::Duration};

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::transport::{Channel, Endpoint, Uri};

/// Generated messages, clients and servers (package `shoal.v1`).
#[expect(clippy::pedantic, reason = "generated code")]
pub mod proto {
    tonic::include_proto!("shoal.v1");
}

/// The default port managers serve gRPC on, as Docker's 2377.
pub const MANAGER_PORT: u16 = 2377;

/// The overlay's VXLAN UDP port (Docker's default `--data-path-port`).
pub const VXLAN_PORT: u16 = 4789;

/// Server name every manager certificate carries (as in swarmkit).
pub const MANAGER_SERVER_NAME: &str = "swarm-manager";

/// Why a channel could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The address is not `host:port`.
    #[error("invalid manager address {addr:?}: {source}")]
    Address {
        /// The address given.
        addr: String,
        /// The parse error.
        source: tonic::transport::Error,
    },
    /// The server name is not a valid DNS name.
    #[error("invalid TLS server name {0:?}")]
    ServerName(String),
}

/// A channel to `addr` (`host:port`) over TLS with `tls`, verifying the
/// server as `server_name`. It connects lazily and reconnects by itself, so
/// it can be made for a peer that is down; each RPC fails fast (connect
/// timeout 2 s) while it is.
pub fn channel(
    addr: &str,
    tls: Arc<rustls::ClientConfig>,
    server_name: &str,
    request_timeout: Duration,
) -> Result<Channel, ChannelError> {
    let server_name = ServerName::try_from(server_name.to_owned())
        .map_err(|_| ChannelError::ServerName(server_name.to_owned()))?;
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|source| ChannelError::Address {
            addr: addr.to_owned(),
            source,
        })?
        .connect_timeout(Duration::from_secs(2))
        .timeout(request_timeout)
        .tcp_nodelay(true);
    let connector = TlsConnector::from(tls);
    Ok(
        endpoint.connect_with_connector_lazy(tower::service_fn(move |uri: Uri| {
            let connector = connector.clone();
            let server_name = server_name.clone();
            async move {
                let host = uri.host().unwrap_or_default().to_owned();
                let port = uri.port_u16().unwrap_or(MANAGER_PORT);
                let tcp = TcpStream::connect((host.as_str(), port)).await?;
                tcp.set_nodelay(true)?;
                let tls = connector.connect(server_name, tcp).await?;
                Ok::<_, std::io::Error>(TokioIo::new(tls))
            }
        })),
    )
}
