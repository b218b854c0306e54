//! The agent's side of the dispatcher's task RPCs: it follows the
//! `Assignments` stream of the manager its session is connected to (a full
//! set, then changes; a new stream and a new full set after any break) and
//! sends the executor's task status changes in batches with
//! `UpdateTaskStatus`, keeping only the latest status per task while the
//! managers cannot be reached.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use shoal_api::{
    grpc::{
        MANAGER_SERVER_NAME, channel,
        proto::{AssignmentsRequest, UpdateTaskStatusRequest, dispatcher_client::DispatcherClient},
    },
    service::{TaskAssignment, TaskStatus},
};
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use crate::{executor::Assignments, session::SessionState};

/// Pause before reconnecting after a broken stream or a failed report.
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// How long a gRPC call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The manager the session talks to, once there is one.
async fn connected_manager(session: &mut watch::Receiver<SessionState>) -> Option<String> {
    session
        .wait_for(|s| s.connected_to.is_some())
        .await
        .ok()
        .and_then(|s| s.connected_to.clone())
}

/// Follows the assignment stream, publishing the node's assignments on
/// `assignments`, until `shutdown`.
pub async fn follow(
    tls: Arc<rustls::ClientConfig>,
    mut session: watch::Receiver<SessionState>,
    assignments: watch::Sender<Assignments>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = follow_once(&tls, &mut session, &assignments) => {}
            _ = shutdown.changed() => return,
        }
        tokio::select! {
            () = tokio::time::sleep(RETRY_PAUSE) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn follow_once(
    tls: &Arc<rustls::ClientConfig>,
    session: &mut watch::Receiver<SessionState>,
    assignments: &watch::Sender<Assignments>,
) {
    let Some(addr) = connected_manager(session).await else {
        return;
    };
    let client = match channel(&addr, Arc::clone(tls), MANAGER_SERVER_NAME, CALL_TIMEOUT) {
        Ok(channel) => DispatcherClient::new(channel),
        Err(error) => {
            warn!(%addr, %error, "unusable manager address");
            return;
        }
    };
    let mut stream = match client.clone().assignments(AssignmentsRequest {}).await {
        Ok(response) => response.into_inner(),
        Err(status) => {
            debug!(%addr, message = status.message(), "assignment stream refused");
            return;
        }
    };
    let mut tasks: Option<BTreeMap<String, TaskAssignment>> = None;
    loop {
        let message = match stream.message().await {
            Ok(Some(message)) => message,
            Ok(None) => return,
            Err(status) => {
                debug!(%addr, message = status.message(), "assignment stream ended");
                return;
            }
        };
        let changed: Vec<TaskAssignment> = match serde_json::from_slice(&message.tasks_json) {
            Ok(changed) => changed,
            Err(error) => {
                warn!(%addr, %error, "unreadable assignments");
                return;
            }
        };
        if message.full {
            tasks = Some(BTreeMap::new());
        }
        let Some(set) = tasks.as_mut() else {
            continue; // a change before any full set: wait for one
        };
        for id in &message.removed {
            set.remove(id);
        }
        for task in changed {
            set.insert(task.id.clone(), task);
        }
        assignments.send_replace(Some(set.clone()));
    }
}

/// Sends the executor's status changes to the managers until `reports`
/// closes, batching what arrived meanwhile and retrying failed batches.
pub async fn report(
    tls: Arc<rustls::ClientConfig>,
    mut session: watch::Receiver<SessionState>,
    mut reports: mpsc::UnboundedReceiver<(String, TaskStatus)>,
) {
    let mut pending: Vec<(String, TaskStatus)> = Vec::new();
    let mut client: Option<(String, DispatcherClient<tonic::transport::Channel>)> = None;
    loop {
        if pending.is_empty() {
            match reports.recv().await {
                Some(update) => pending.push(update),
                None => return,
            }
        }
        while let Ok(update) = reports.try_recv() {
            pending.push(update);
        }
        let Some(addr) = connected_manager(&mut session).await else {
            return;
        };
        if client.as_ref().is_none_or(|(a, _)| *a != addr) {
            client = channel(&addr, Arc::clone(&tls), MANAGER_SERVER_NAME, CALL_TIMEOUT)
                .ok()
                .map(|channel| (addr.clone(), DispatcherClient::new(channel)));
        }
        let sent = match client.as_mut() {
            Some((_, client)) => {
                let updates_json = serde_json::to_vec(&pending).unwrap_or_default();
                client
                    .update_task_status(UpdateTaskStatusRequest { updates_json })
                    .await
            }
            None => Err(tonic::Status::unavailable(format!(
                "unusable manager address {addr}"
            ))),
        };
        match sent {
            Ok(_) => pending.clear(),
            Err(status) => {
                debug!(%addr, message = status.message(), "task status report failed; retrying");
                // Keep the order, drop superseded statuses of the same task.
                let mut latest: Vec<(String, TaskStatus)> = Vec::new();
                for (id, status) in pending.drain(..) {
                    latest.retain(|(other, _)| *other != id);
                    latest.push((id, status));
                }
                pending = latest;
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
}
