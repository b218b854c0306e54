//! The rustls configurations of node-to-node connections (port 2377 and the
//! Raft transport): TLS 1.3 only, the aws-lc-rs provider named explicitly
//! (never the process default), ALPN `h2` for gRPC.
//!
//! - [`server_config`]: presents the node certificate followed by the CA
//!   certificate; verifies client certificates against the CA but does not
//!   require one, because the join RPC is called by nodes that have no
//!   certificate yet. Every other RPC checks the peer with
//!   [`peer_identity`] and refuses anonymous or wrongly-roled callers.
//! - [`client_config`]: mutual TLS, the server verified against the CA.
//!   Connect with server name `swarm-manager` (the role SAN), so that only a
//!   manager certificate is accepted as a server.
//! - [`join_client_config`]: no client certificate, no trust root yet; the
//!   server is trusted only if its chain holds the CA whose digest the join
//!   token pins, and the CA is recorded for the joining node to keep.

use std::sync::{Arc, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore, ServerConfig,
    SignatureScheme,
};

use super::root::is_well_formed_digest;
use super::{CaError, NodeCredentials, NodeIdentity, TrustRoot, ca_digest};

/// The ALPN protocol every configuration offers: HTTP/2, for gRPC.
pub const ALPN_H2: &[u8] = b"h2";

/// The only protocol version offered: both ends are shoal, so TLS 1.2 is
/// never needed.
static VERSIONS: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn tls_error(op: &'static str) -> impl FnOnce(rustls::Error) -> CaError {
    move |source| CaError::Tls { op, source }
}

fn root_store(ca_der: &[u8]) -> Result<RootCertStore, rustls::Error> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(ca_der.to_vec()))?;
    Ok(roots)
}

/// The server side of node-to-node TLS.
///
/// Presents `node`'s certificate followed by `trust`'s CA certificate (so
/// a joining node can pin the CA), offers client authentication and verifies
/// any client certificate against `trust`, but accepts clients without one.
/// TLS 1.3 only, ALPN `h2`.
///
/// Fails if the key does not match the certificate or either does not parse.
pub fn server_config(
    node: &NodeCredentials,
    trust: &TrustRoot,
) -> Result<Arc<ServerConfig>, CaError> {
    let provider = provider();
    let roots = root_store(trust.cert_der()).map_err(tls_error("load the trust root"))?;
    let client_verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .allow_unauthenticated()
            .build()
            .map_err(|source| CaError::Verifier {
                what: "client",
                source,
            })?;
    let chain = vec![
        node.cert_der()?,
        CertificateDer::from(trust.cert_der().to_vec()),
    ];
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(VERSIONS)
        .map_err(tls_error("select TLS 1.3 for the server"))?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(chain, node.key_der()?)
        .map_err(tls_error(
            "load the node certificate and key into the server configuration",
        ))?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

/// The client side of node-to-node TLS: presents `node`'s certificate,
/// verifies the server against `trust` and the server name the caller
/// connects with (`swarm-manager` for managers). TLS 1.3 only, ALPN `h2`.
pub fn client_config(
    node: &NodeCredentials,
    trust: &TrustRoot,
) -> Result<Arc<ClientConfig>, CaError> {
    let roots = root_store(trust.cert_der()).map_err(tls_error("load the trust root"))?;
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(tls_error("select TLS 1.3 for the client"))?
        .with_root_certificates(roots)
        .with_client_auth_cert(vec![node.cert_der()?], node.key_der()?)
        .map_err(tls_error(
            "load the node certificate and key into the client configuration",
        ))?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

/// The client configuration of a node joining with a token, and the
/// observer that yields the CA certificate the server proved.
///
/// The server is accepted only if the certificates it sends after its own
/// include one whose [`ca_digest`] is `pinned_ca_digest`, **and** its own
/// certificate verifies against that CA alone (signature, validity, usage,
/// and the server name the caller connects with, normally
/// `swarm-manager`). A wrong digest fails the handshake with
/// `rustls::Error::InvalidCertificate(CertificateError::Other(..))` holding
/// a [`CaError::PinnedCaMismatch`]. No client certificate is sent. TLS 1.3
/// only, ALPN `h2`.
///
/// Fails with [`CaError::MalformedDigest`] unless the digest is 50
/// characters of `[0-9a-z]`.
pub fn join_client_config(
    pinned_ca_digest: &str,
) -> Result<(Arc<ClientConfig>, PinnedCaObserver), CaError> {
    if !is_well_formed_digest(pinned_ca_digest) {
        return Err(CaError::MalformedDigest {
            digest: pinned_ca_digest.to_owned(),
        });
    }
    let provider = provider();
    let observer = PinnedCaObserver::default();
    let verifier = PinnedCaVerifier {
        pinned_digest: pinned_ca_digest.to_owned(),
        provider: provider.clone(),
        seen: observer.clone(),
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(VERSIONS)
        .map_err(tls_error("select TLS 1.3 for the joining client"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok((Arc::new(config), observer))
}

/// What a [`join_client_config`] handshake learnt: the CA certificate whose
/// digest matched the pin. Clones share the same record.
#[derive(Clone, Debug, Default)]
pub struct PinnedCaObserver {
    ca_der: Arc<OnceLock<Vec<u8>>>,
}

impl PinnedCaObserver {
    /// The pinned CA certificate (DER) once a server proved it, `None`
    /// before. Every match has the same bytes: the digest is a hash of them.
    #[must_use]
    pub fn ca_cert_der(&self) -> Option<Vec<u8>> {
        self.ca_der.get().cloned()
    }

    /// The pinned CA as a [`TrustRoot`], once a server proved it.
    pub fn trust_root(&self) -> Result<Option<TrustRoot>, CaError> {
        self.ca_der
            .get()
            .map(|der| TrustRoot::from_der(der))
            .transpose()
    }
}

/// The verifier behind [`join_client_config`].
#[derive(Debug)]
struct PinnedCaVerifier {
    pinned_digest: String,
    provider: Arc<CryptoProvider>,
    seen: PinnedCaObserver,
}

impl PinnedCaVerifier {
    fn reject(error: CaError) -> rustls::Error {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(error))))
    }
}

impl ServerCertVerifier for PinnedCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(ca) = intermediates
            .iter()
            .find(|cert| ca_digest(cert) == self.pinned_digest)
        else {
            return Err(Self::reject(CaError::PinnedCaMismatch {
                expected: self.pinned_digest.clone(),
                presented: intermediates.iter().map(|c| ca_digest(c)).collect(),
            }));
        };
        let roots = root_store(ca)?;
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
                .map_err(|source| {
                    Self::reject(CaError::Verifier {
                        what: "pinned server",
                        source,
                    })
                })?;
        let accepted =
            verifier.verify_server_cert(end_entity, &[], server_name, ocsp_response, now)?;
        // Only a CA that verified the server is recorded.
        let _ = self.seen.ca_der.set(ca.to_vec());
        Ok(accepted)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The identity of the peer of a TLS connection, from rustls's
/// `peer_certificates()` (end-entity first), which rustls has already
/// verified against the CA. `None` when the peer sent no certificate (a
/// joining node on [`server_config`]'s optional client authentication).
pub fn peer_identity(
    peer_certificates: Option<&[CertificateDer<'_>]>,
) -> Result<Option<NodeIdentity>, CaError> {
    peer_certificates
        .and_then(<[_]>::first)
        .map(|leaf| NodeIdentity::from_der(leaf))
        .transpose()
}

/// The [`CaError`] behind a failed handshake, if shoal's own verifier
/// caused it — e.g. [`CaError::PinnedCaMismatch`] when a join token pins
/// another cluster's CA. rustls prints such errors with `Debug`
/// (`invalid peer certificate: Other(..)`); callers show this one instead.
///
/// Looks through `io::Error` (as tokio-rustls returns), the `source()`
/// chain, and `rustls::Error::InvalidCertificate(CertificateError::Other)`.
#[must_use]
pub fn handshake_ca_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a CaError> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(ca) = e.downcast_ref::<CaError>() {
            return Some(ca);
        }
        if let Some(rustls::Error::InvalidCertificate(CertificateError::Other(other))) =
            e.downcast_ref::<rustls::Error>()
        {
            return other.0.downcast_ref::<CaError>();
        }
        // `io::Error::source` skips the wrapped error itself: unwrap it.
        current = match e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(inner) => Some(inner),
            None => e.source(),
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use std::io;

    use rustls::pki_types::ServerName;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream};
    use tokio_rustls::{TlsAcceptor, TlsConnector, client, server};

    use super::*;
    use crate::ca::{
        DEFAULT_NODE_CERT_VALIDITY, DEFAULT_ROOT_CA_VALIDITY, NodeKeyPair, NodeRole, RootCa,
    };

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn node(ca: &RootCa, node_id: &str, role: NodeRole) -> Result<NodeCredentials, CaError> {
        let key = NodeKeyPair::generate()?;
        let issued = ca.issue_node_certificate(
            &key.csr_pem()?,
            node_id,
            role,
            "cluster1",
            DEFAULT_NODE_CERT_VALIDITY,
        )?;
        Ok(NodeCredentials::new(&key, &issued))
    }

    /// Runs both ends of a handshake over an in-memory pipe, connecting to
    /// `server_name`.
    async fn handshake(
        server: Arc<ServerConfig>,
        client: Arc<ClientConfig>,
        server_name: &'static str,
    ) -> (
        io::Result<server::TlsStream<DuplexStream>>,
        io::Result<client::TlsStream<DuplexStream>>,
    ) {
        let (server_io, client_io) = tokio::io::duplex(64 * 1024);
        let name = match ServerName::try_from(server_name) {
            Ok(name) => name,
            Err(e) => return (Err(io::Error::other(e)), Err(io::Error::other("bad name"))),
        };
        tokio::join!(
            TlsAcceptor::from(server).accept(server_io),
            TlsConnector::from(client).connect(name, client_io)
        )
    }

    /// One byte each way, proving the session works end to end.
    async fn ping(
        server: &mut server::TlsStream<DuplexStream>,
        client: &mut client::TlsStream<DuplexStream>,
    ) -> io::Result<()> {
        client.write_all(b"?").await?;
        client.flush().await?;
        let mut byte = [0u8; 1];
        server.read_exact(&mut byte).await?;
        server.write_all(b"!").await?;
        server.flush().await?;
        client.read_exact(&mut byte).await?;
        assert_eq!(&byte, b"!");
        Ok(())
    }

    /// Whether a handshake failed because the peer's certificate does not
    /// chain to the trusted CA. Both CAs of a test share the subject
    /// `CN=swarm-ca, O=cluster1`, so webpki may find the anchor by name and
    /// then fail on the signature.
    fn is_foreign_issuer(err: &io::Error) -> bool {
        matches!(
            err.get_ref()
                .and_then(|e| e.downcast_ref::<rustls::Error>()),
            Some(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer | CertificateError::BadSignature
            ))
        )
    }

    #[tokio::test]
    async fn mutual_tls_shows_the_client_node_id() -> TestResult {
        let ca = RootCa::generate("cluster1", DEFAULT_ROOT_CA_VALIDITY)?;
        let trust = ca.trust_root();
        let manager = node(&ca, "manager1", NodeRole::Manager)?;
        let worker = node(&ca, "worker1", NodeRole::Worker)?;
        let (server, client) = handshake(
            server_config(&manager, &trust)?,
            client_config(&worker, &trust)?,
            "swarm-manager",
        )
        .await;
        let (mut server, mut client) = (server?, client?);
        ping(&mut server, &mut client).await?;

        let (_, conn) = server.get_ref();
        assert_eq!(conn.alpn_protocol(), Some(ALPN_H2));
        let peer = peer_identity(conn.peer_certificates())?.ok_or("no client certificate")?;
        assert_eq!(peer.node_id, "worker1");
        assert_eq!(peer.role, NodeRole::Worker);
        assert_eq!(peer.cluster_id, "cluster1");

        // The server sent its certificate followed by the CA certificate.
        let (_, conn) = client.get_ref();
        let chain = conn.peer_certificates().ok_or("no server chain")?;
        assert_eq!(chain.len(), 2);
        assert_eq!(chain[1].as_ref(), ca.cert_der());
        let server_id = peer_identity(Some(chain))?.ok_or("no server certificate")?;
        assert_eq!(server_id.node_id, "manager1");
        assert_eq!(server_id.role, NodeRole::Manager);
        Ok(())
    }

    #[tokio::test]
    async fn a_worker_certificate_cannot_serve_as_a_manager() -> TestResult {
        let ca = RootCa::generate("cluster1", DEFAULT_ROOT_CA_VALIDITY)?;
        let trust = ca.trust_root();
        let worker = node(&ca, "worker1", NodeRole::Worker)?;
        let other = node(&ca, "worker2", NodeRole::Worker)?;
        let (_, client) = handshake(
            server_config(&worker, &trust)?,
            client_config(&other, &trust)?,
            "swarm-manager",
        )
        .await;
        let err = client
            .err()
            .ok_or("a worker was accepted as swarm-manager")?;
        let rustls_err = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
            .ok_or("not a rustls error")?;
        assert!(
            matches!(
                rustls_err,
                rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. })
            ),
            "{rustls_err:?}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_client_without_certificate_is_anonymous() -> TestResult {
        let ca = RootCa::generate("cluster1", DEFAULT_ROOT_CA_VALIDITY)?;
        let trust = ca.trust_root();
        let manager = node(&ca, "manager1", NodeRole::Manager)?;
        let (join, _) = join_client_config(ca.digest())?;
        let (server, client) =
            handshake(server_config(&manager, &trust)?, join, "swarm-manager").await;
        let (mut server, mut client) = (server?, client?);
        ping(&mut server, &mut client).await?;
        let (_, conn) = server.get_ref();
        assert!(conn.peer_certificates().is_none());
        assert_eq!(peer_identity(conn.peer_certificates())?, None);
        Ok(())
    }

    #[tokio::test]
    async fn a_client_certificate_from_another_ca_is_refused() -> TestResult {
        let ca = RootCa::generate("cluster1", DEFAULT_ROOT_CA_VALIDITY)?;
        let rogue_ca = RootCa::generate("cluster1", DEFAULT_ROOT_CA_VALIDITY)?;
        let manager = node(&ca, "manager1", NodeRole::Manager)?;
        let rogue = node(&rogue_ca, "manager2", NodeRole::Manager)?;
        // The rogue client trusts the real CA, so only the server can refuse.
        let (server, client) = handshake(
            server_config(&manager, &ca.trust_root())?,
            client_config(&rogue, &ca.trust_root())?,
            "swarm-manager",
        )
        .await;
        let err = server
            .err()
            .ok_or("the server accepted a foreign client certificate")?;
        assert!(is_foreign_issuer(&err), "{err}");
        // TLS 1.3: the client may finish first, but gets nothing through.
        if let Ok(mut client) = client {
            let mut byte = [0u8; 1];
            assert!(client.read_exact(&mut byte).await.is_err());
        }
        Ok(())
    }

    #[tokio::test]
    async fn join_with_the_right_digest_observes_the_ca() -> TestResult {
        let ca = RootCa::generate("cluster1", DEFAULT_ROOT_CA_VALIDITY)?;
        let manager = node(&ca, "manager1", NodeRole::Manager)?;
        let (join, observer) = join_client_config(ca.digest())?;
        assert_eq!(observer.ca_cert_der(), None);
        let (server, client) = handshake(
            server_config(&manager, &ca.trust_root())?,
            join,
            "swarm-manager",
        )
        .await;
        let (mut server, mut client) = (server?, client?);
        ping(&mut server, &mut client).await?;
        assert_eq!(observer.ca_cert_der().as_deref(), Some(ca.cert_der()));
        assert_eq!(observer.trust_root()?, Some(ca.trust_root()));
        Ok(())
    }

    #[tokio::test]
    async fn join_with_another_cas_digest_fails() -> TestResult {
        let ca = RootCa::generate("cluster1", DEFAULT_ROOT_CA_VALIDITY)?;
        let other_ca = RootCa::generate("cluster1", DEFAULT_ROOT_CA_VALIDITY)?;
        let manager = node(&ca, "manager1", NodeRole::Manager)?;
        let (join, observer) = join_client_config(other_ca.digest())?;
        let (server, client) = handshake(
            server_config(&manager, &ca.trust_root())?,
            join,
            "swarm-manager",
        )
        .await;
        let err = client
            .err()
            .ok_or("joined a cluster with the wrong digest")?;
        match handshake_ca_error(&err) {
            Some(CaError::PinnedCaMismatch {
                expected,
                presented,
            }) => {
                assert_eq!(expected, other_ca.digest());
                assert_eq!(presented, &[ca.digest().to_owned()]);
            }
            other => panic!("unexpected error {err}: {other:?}"),
        }
        let shown = handshake_ca_error(&err)
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(
            shown.contains("pinned digest") && shown.contains(other_ca.digest()),
            "{shown}"
        );
        assert!(server.is_err());
        assert_eq!(observer.ca_cert_der(), None);
        Ok(())
    }

    #[tokio::test]
    async fn join_refuses_a_server_the_pinned_ca_did_not_sign() -> TestResult {
        // A rogue server replays the real CA certificate after its own
        // certificate from another CA: the digest matches, the chain does not.
        let ca = RootCa::generate("cluster1", DEFAULT_ROOT_CA_VALIDITY)?;
        let rogue_ca = RootCa::generate("cluster1", DEFAULT_ROOT_CA_VALIDITY)?;
        let rogue = node(&rogue_ca, "manager1", NodeRole::Manager)?;
        let (join, observer) = join_client_config(ca.digest())?;
        let (_, client) = handshake(
            server_config(&rogue, &ca.trust_root())?,
            join,
            "swarm-manager",
        )
        .await;
        let err = client
            .err()
            .ok_or("trusted a server the pinned CA did not sign")?;
        assert!(is_foreign_issuer(&err), "{err}");
        assert_eq!(observer.ca_cert_der(), None);
        Ok(())
    }

    #[test]
    fn join_refuses_a_malformed_digest() {
        assert!(matches!(
            join_client_config("abc"),
            Err(CaError::MalformedDigest { .. })
        ));
    }

    #[test]
    fn server_config_refuses_a_key_that_is_not_the_certificates() -> TestResult {
        let ca = RootCa::generate("cluster1", DEFAULT_ROOT_CA_VALIDITY)?;
        let mut creds = node(&ca, "manager1", NodeRole::Manager)?;
        creds.key_pem = NodeKeyPair::generate()?.key_pem();
        assert!(matches!(
            server_config(&creds, &ca.trust_root()),
            Err(CaError::Tls { .. })
        ));
        assert!(matches!(
            client_config(&creds, &ca.trust_root()),
            Err(CaError::Tls { .. })
        ));
        Ok(())
    }
}
