//! The agent's side of the dispatcher's task RPCs: it follows the
//! `Assignments` stream of the manager its session is connected to (a full
//! set, then changes; a new stream and a new full set after any break) for
//! the node's tasks and the swarm's overlay endpoints and service VIPs
//! ([`Directory`]), and
//! sends the executor's task status changes in batches with
//! `UpdateTaskStatus`, keeping only the latest status per task while the
//! managers cannot be reached. It also answers the managers' log
//! subscriptions with its tasks' logs (`serve_logs`).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use shoal_api::{
    grpc::{
        MANAGER_SERVER_NAME, channel,
        convert::try_from_each,
        proto::{
            AssignmentsRequest, LogMessage, LogSubscription, LogSubscriptionsRequest,
            UpdateTaskStatusRequest, dispatcher_client::DispatcherClient,
        },
    },
    service::{OverlayEndpoint, ServiceVip, TaskAssignment, TaskStatus},
};
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use tokio_stream::wrappers::ReceiverStream;

use crate::{
    desired::{Assignments, Directory},
    executor::{logs, runner::TaskPaths},
    session::SessionState,
};

/// Pause before reconnecting after a broken stream or a failed report.
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// How long a gRPC call may take to answer (streams then last as long as
/// they need).
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
    directory: watch::Sender<Directory>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = follow_once(&tls, &mut session, &assignments, &directory) => {}
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
    directory: &watch::Sender<Directory>,
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
    let mut known = Directory::default();
    loop {
        let message = match stream.message().await {
            Ok(Some(message)) => message,
            Ok(None) => return,
            Err(status) => {
                debug!(%addr, message = status.message(), "assignment stream ended");
                return;
            }
        };
        let changed: Vec<TaskAssignment> = match try_from_each(message.tasks) {
            Ok(changed) => changed,
            Err(error) => {
                warn!(%addr, %error, "unreadable assignments");
                return;
            }
        };
        let (changed_endpoints, changed_vips): (Vec<OverlayEndpoint>, Vec<ServiceVip>) = match (
            try_from_each(message.endpoints),
            try_from_each(message.vips),
        ) {
            (Ok(endpoints), Ok(vips)) => (endpoints, vips),
            (Err(error), _) | (_, Err(error)) => {
                warn!(%addr, %error, "unreadable overlay endpoints or VIPs");
                return;
            }
        };
        if message.full {
            tasks = Some(BTreeMap::new());
            known = Directory::default();
        }
        for key in &message.removed_endpoints {
            known.endpoints.remove(key);
        }
        for endpoint in changed_endpoints {
            known.endpoints.insert(endpoint.key(), endpoint);
        }
        for key in &message.removed_vips {
            known.vips.remove(key);
        }
        for vip in changed_vips {
            known.vips.insert(vip.key(), vip);
        }
        directory.send_if_modified(|current| {
            let changed = *current != known;
            if changed {
                current.clone_from(&known);
            }
            changed
        });
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
                let updates = pending.iter().cloned().map(Into::into).collect();
                client
                    .update_task_status(UpdateTaskStatusRequest { updates })
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

/// Answers the managers' log subscriptions with the logs of this node's
/// tasks (under `tasks_dir`), until `shutdown`.
pub async fn serve_logs(
    tls: Arc<rustls::ClientConfig>,
    mut session: watch::Receiver<SessionState>,
    tasks_dir: PathBuf,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = listen_once(&tls, &mut session, &tasks_dir) => {}
            _ = shutdown.changed() => return,
        }
        tokio::select! {
            () = tokio::time::sleep(RETRY_PAUSE) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn listen_once(
    tls: &Arc<rustls::ClientConfig>,
    session: &mut watch::Receiver<SessionState>,
    tasks_dir: &Path,
) {
    let Some(addr) = connected_manager(session).await else {
        return;
    };
    let Ok(channel) = channel(&addr, Arc::clone(tls), MANAGER_SERVER_NAME, CALL_TIMEOUT) else {
        return;
    };
    let client = DispatcherClient::new(channel);
    let mut subscriptions = match client
        .clone()
        .log_subscriptions(LogSubscriptionsRequest {})
        .await
    {
        Ok(response) => response.into_inner(),
        Err(status) => {
            debug!(%addr, message = status.message(), "log subscriptions refused");
            return;
        }
    };
    while let Ok(Some(subscription)) = subscriptions.message().await {
        tokio::spawn(publish(client.clone(), subscription, tasks_dir.to_owned()));
    }
}

/// Sends the logs one subscription asks for, then `done` (unless following).
async fn publish(
    mut client: DispatcherClient<tonic::transport::Channel>,
    subscription: LogSubscription,
    tasks_dir: PathBuf,
) {
    let (tx, rx) = mpsc::channel::<LogMessage>(256);
    let cancelled = Arc::new(AtomicBool::new(false));
    let tail = usize::try_from(subscription.tail).ok();
    let mut readers = Vec::new();
    for task_id in subscription.task_ids.clone() {
        let paths = TaskPaths::new(&tasks_dir, &task_id);
        let tx = tx.clone();
        let cancelled = Arc::clone(&cancelled);
        let id = subscription.id.clone();
        let follow = subscription.follow;
        readers.push(tokio::task::spawn_blocking(move || {
            let keep_following =
                || !cancelled.load(Ordering::Relaxed) && !paths.exit.exists() && paths.dir.exists();
            let _ = logs::read(&paths.log, tail, follow, &keep_following, &mut |entry| {
                tx.blocking_send(LogMessage {
                    subscription_id: id.clone(),
                    task_id: task_id.clone(),
                    stderr: entry.stderr,
                    time_unix_ns: entry.time_unix_ns,
                    data: entry.line.into_bytes(),
                    done: false,
                })
                .is_ok()
            });
        }));
    }
    let done_tx = tx;
    let subscription_id = subscription.id.clone();
    tokio::spawn(async move {
        for reader in readers {
            let _ = reader.await;
        }
        let _ = done_tx
            .send(LogMessage {
                subscription_id,
                done: true,
                ..LogMessage::default()
            })
            .await;
    });
    // The call ends when the manager stops reading (the subscriber left) or
    // after `done`.
    let _ = client.publish_logs(ReceiverStream::new(rx)).await;
    cancelled.store(true, Ordering::Relaxed);
}
