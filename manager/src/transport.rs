//! Serving gRPC over TLS: a TCP accept loop that performs each TLS handshake
//! on its own task (a slow or hostile client cannot stall the others) and
//! hands the connections to tonic. tonic then exposes the peer's
//! certificate chain to every handler ([`peer_certificate`]).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::{net::TcpListener, sync::mpsc};
use tokio_rustls::TlsAcceptor;
use tonic::transport::server::Router;
use tracing::debug;

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` with `tls` until `shutdown` resolves.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let (connections, incoming) = mpsc::channel(64);
    let acceptor = TlsAcceptor::from(tls);
    let accept_loop = tokio::spawn(async move {
        loop {
            let (tcp, peer): (_, SocketAddr) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    debug!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let connections = connections.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = connections.send(Ok::<_, std::io::Error>(stream)).await;
                    }
                    Ok(Err(error)) => debug!(%peer, %error, "TLS handshake refused"),
                    Err(_) => debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    let result = router
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::ReceiverStream::new(incoming),
            shutdown,
        )
        .await;
    accept_loop.abort();
    result
}

/// The DER certificate the client presented, if any (end entity first).
pub fn peer_certificate<T>(request: &tonic::Request<T>) -> Option<Vec<u8>> {
    request
        .peer_certs()
        .and_then(|chain| chain.first().map(|cert| cert.as_ref().to_vec()))
}
