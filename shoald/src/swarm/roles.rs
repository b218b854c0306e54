//! The node's role kept in line with what the managers want: promotion
//! (a manager certificate, the manager role started, Raft joined),
//! demotion, and certificate renewal past half its lifetime.

use std::{sync::Arc, time::Duration};

use shoal_api::grpc::{
    MANAGER_SERVER_NAME, channel,
    proto::{RenewRequest, ca_client::CaClient},
};
use shoal_manager::{
    ca::{self, NodeCredentials, NodeKeyPair, TrustRoot},
    runtime::{Manager, ManagerConfig},
};
use tracing::{info, warn};

use super::{Membership, Swarm, SwarmError, stop};

impl Swarm {
    pub(super) async fn start_manager(
        &self,
        membership: &Membership,
        creds: &NodeCredentials,
        trust: &TrustRoot,
    ) -> Result<Manager, SwarmError> {
        Ok(Manager::start(
            ManagerConfig {
                dir: self.facts.dir.join("manager"),
                node_id: self.facts.node_id.clone(),
                raft_id: membership.raft_id,
                listen_addr: membership.listen_addr,
                advertise_addr: membership.manager_addr.clone(),
                timing: self.facts.timing,
            },
            ca::server_config(creds, trust)?,
            ca::client_config(creds, trust)?,
        )
        .await?)
    }

    /// Brings the node in line with what the managers want; the node daemon
    /// calls it periodically.
    ///
    /// - Promotion: once the leader has given the node a Raft ID, renew the
    ///   certificate as a manager, start the manager role, join Raft.
    /// - Demotion: once the leader has removed the node from Raft, renew the
    ///   certificate as a worker and stop the manager role.
    /// - Renewal: past half of the certificate's lifetime, renew it.
    pub async fn reconcile(&self) -> Result<(), SwarmError> {
        let mut active = self.active.lock().await;
        let Some(current) = active.as_ref() else {
            return Ok(());
        };
        let session = current.agent.session();
        let is_manager = current.manager.is_some();
        let wants_manager = match session.desired_role.as_str() {
            "manager" => session.raft_id != 0,
            "worker" => session.raft_id != 0 && is_manager,
            _ => is_manager,
        };
        let identity = &current.identity;
        let renewal_due = ca::renewal_due(
            identity.not_before_unix_ms,
            identity.not_after_unix_ms,
            ca::now_unix_ms(),
        );
        if wants_manager == is_manager && !renewal_due {
            return Ok(());
        }
        let key = NodeKeyPair::generate()?;
        let cert_pem = renew(&session.managers, &current.creds, &current.trust, &key).await?;
        let creds = NodeCredentials {
            cert_pem,
            key_pem: key.key_pem(),
        };
        if (creds.identity()?.role == ca::NodeRole::Manager) != wants_manager {
            // The manager that answered has not seen the role change yet.
            return Ok(());
        }
        let trust = current.trust.clone();
        let mut membership = current.membership.clone();
        membership.role = if wants_manager { "manager" } else { "worker" }.into();
        membership.raft_id = if wants_manager { session.raft_id } else { 0 };
        if !session.managers.is_empty() {
            membership.managers.clone_from(&session.managers);
        }
        if let Some(previous) = active.take() {
            stop(previous).await;
        }
        self.persist(&membership, &creds, trust.cert_pem())?;
        let manager = if wants_manager {
            match self.promote(&membership, &creds, &trust).await {
                Ok(manager) => Some(manager),
                Err(error) => {
                    warn!(%error, "starting the manager role failed; staying a worker for now");
                    membership.role = "worker".into();
                    self.persist(&membership, &creds, trust.cert_pem())?;
                    None
                }
            }
        } else {
            let dir = self.facts.dir.join("manager");
            if let Err(error) = std::fs::remove_dir_all(&dir)
                && error.kind() != std::io::ErrorKind::NotFound
            {
                warn!(%error, dir = %dir.display(), "removing the former manager's Raft data");
            }
            None
        };
        info!(role = %membership.role, renewed = renewal_due, "node role reconciled");
        *active = Some(self.activate(membership, manager, &creds, &trust)?);
        Ok(())
    }

    /// Starts the manager role of a promoted node and joins Raft.
    async fn promote(
        &self,
        membership: &Membership,
        creds: &NodeCredentials,
        trust: &TrustRoot,
    ) -> Result<Manager, SwarmError> {
        let manager = self.start_manager(membership, creds, trust).await?;
        if let Err(error) = manager.join_raft(&membership.managers).await {
            manager.shutdown().await;
            return Err(error.into());
        }
        Ok(manager)
    }
}

/// A new certificate for `key` from the first manager that answers; the
/// managers certify the role the node has in the cluster state.
async fn renew(
    managers: &[String],
    creds: &NodeCredentials,
    trust: &TrustRoot,
    key: &NodeKeyPair,
) -> Result<String, SwarmError> {
    let tls = ca::client_config(creds, trust)?;
    let csr_pem = key.csr_pem()?;
    let mut last = String::from("no manager known");
    for addr in managers {
        let channel = channel(
            addr,
            Arc::clone(&tls),
            MANAGER_SERVER_NAME,
            Duration::from_secs(10),
        )
        .map_err(|e| SwarmError::InvalidRequest(e.to_string()))?;
        match CaClient::new(channel)
            .renew(RenewRequest {
                csr_pem: csr_pem.clone(),
            })
            .await
        {
            Ok(answer) => return Ok(answer.into_inner().cert_pem),
            Err(status) => last = format!("{addr}: {}", status.message()),
        }
    }
    Err(SwarmError::Join(format!(
        "renewing the node certificate: {last}"
    )))
}
