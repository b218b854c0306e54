//! Task logs (`docker service logs`): on the leader, a subscription through
//! its [`LogBroker`] to the nodes that ran the tasks; on a follower, the
//! leader's stream relayed.

use std::{collections::BTreeMap, time::Duration};

use shoal_api::grpc::proto::{LogMessage, LogSubscription};
use tokio::sync::mpsc;

use super::{Manager, ManagerError};
use crate::logs::LogBroker;

impl Manager {
    /// The log broker nodes listen to (used on the leader).
    pub(super) fn log_broker(&self) -> &LogBroker {
        &self.inner.log_broker
    }

    /// The logs of `request.task_ids`, from the nodes that ran them: on the
    /// leader through its broker, on a follower by asking the leader. The
    /// stream carries log lines only; it ends (without `follow`) once every
    /// node has sent all it has.
    pub async fn task_logs(
        &self,
        request: LogSubscription,
    ) -> Result<mpsc::Receiver<LogMessage>, ManagerError> {
        let (tx, rx) = mpsc::channel(256);
        if self.is_leader() {
            let tasks_by_node = self
                .read(|s| {
                    let mut by_node: BTreeMap<String, Vec<String>> = BTreeMap::new();
                    for id in &request.task_ids {
                        if let Some(task) = s.tasks.get(id).filter(|t| !t.node_id.is_empty()) {
                            by_node
                                .entry(task.node_id.clone())
                                .or_default()
                                .push(id.clone());
                        }
                    }
                    by_node
                })
                .await;
            let manager = self.clone();
            let mut subscribed =
                self.inner
                    .log_broker
                    .subscribe(tasks_by_node, request.follow, request.tail);
            tokio::spawn(async move {
                let mut done = 0;
                while done < subscribed.nodes || request.follow {
                    let Some(message) = subscribed.messages.recv().await else {
                        break;
                    };
                    if message.done {
                        done += 1;
                    } else if tx.send(message).await.is_err() {
                        break;
                    }
                }
                manager.inner.log_broker.unsubscribe(&subscribed.id);
            });
            return Ok(rx);
        }
        let leader = self
            .manager_addrs()
            .into_iter()
            .next()
            .filter(|_| self.leader().is_some())
            .ok_or(ManagerError::NoLeader)?;
        let mut stream = self
            .control_client(&leader, Duration::from_hours(1))?
            .task_logs(request)
            .await
            .map_err(|status| ManagerError::remote(&leader, status))?
            .into_inner();
        tokio::spawn(async move {
            while let Ok(Some(message)) = stream.message().await {
                if tx.send(message).await.is_err() {
                    break;
                }
            }
        });
        Ok(rx)
    }
}
