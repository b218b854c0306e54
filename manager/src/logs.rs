//! The log broker (swarmkit's): `service logs` on a manager becomes one
//! subscription per node that ran the service's tasks; each node listens for
//! subscriptions (`Dispatcher.LogSubscriptions`) and answers one with a
//! `PublishLogs` stream, which the broker routes to the subscriber. A
//! subscription without `follow` ends when every node said `done` (or is
//! not listening); a followed one ends when the subscriber goes away.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Mutex,
};

use shoal_api::{
    grpc::proto::{LogMessage, LogSubscription},
    id::ObjectId,
};
use tokio::sync::mpsc;

/// Messages buffered per subscription before publishers wait.
const BUFFER: usize = 1024;

/// Subscriptions and the nodes listening for them.
#[derive(Debug, Default)]
pub struct LogBroker {
    /// Node ID → where its subscriptions go.
    listeners: Mutex<HashMap<String, mpsc::Sender<LogSubscription>>>,
    /// Subscription ID → its subscriber.
    subscribers: Mutex<HashMap<String, mpsc::Sender<LogMessage>>>,
}

/// What a subscriber receives, and how many nodes will say `done`.
#[derive(Debug)]
pub struct Subscribed {
    /// The subscription's ID.
    pub id: String,
    /// Log lines and `done` markers, as the nodes send them.
    pub messages: mpsc::Receiver<LogMessage>,
    /// How many nodes were asked (each ends with a `done`).
    pub nodes: usize,
}

impl LogBroker {
    /// A node starts listening; a previous listener of the node is replaced.
    pub fn listen(&self, node_id: &str) -> mpsc::Receiver<LogSubscription> {
        let (tx, rx) = mpsc::channel(64);
        if let Ok(mut listeners) = self.listeners.lock() {
            listeners.insert(node_id.to_owned(), tx);
        }
        rx
    }

    /// Asks each node for the logs of its tasks in `tasks_by_node`.
    /// Nodes that are not listening are skipped.
    pub fn subscribe(
        &self,
        tasks_by_node: BTreeMap<String, Vec<String>>,
        follow: bool,
        tail: i64,
    ) -> Subscribed {
        let id = ObjectId::generate().to_string();
        let (tx, messages) = mpsc::channel(BUFFER);
        if let Ok(mut subscribers) = self.subscribers.lock() {
            subscribers.insert(id.clone(), tx);
        }
        let mut nodes = 0;
        let listeners = self.listeners.lock().map(|l| l.clone()).unwrap_or_default();
        for (node, task_ids) in tasks_by_node {
            let Some(listener) = listeners.get(&node) else {
                continue;
            };
            let subscription = LogSubscription {
                id: id.clone(),
                task_ids,
                follow,
                tail,
            };
            if listener.try_send(subscription).is_ok() {
                nodes += 1;
            }
        }
        Subscribed {
            id,
            messages,
            nodes,
        }
    }

    /// Where a node's messages for `subscription_id` go, while the
    /// subscriber is there.
    #[must_use]
    pub fn subscriber(&self, subscription_id: &str) -> Option<mpsc::Sender<LogMessage>> {
        let subscribers = self.subscribers.lock().ok()?;
        subscribers
            .get(subscription_id)
            .filter(|tx| !tx.is_closed())
            .cloned()
    }

    /// Forgets a subscription (its subscriber is done).
    pub fn unsubscribe(&self, subscription_id: &str) {
        if let Ok(mut subscribers) = self.subscribers.lock() {
            subscribers.remove(subscription_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscriptions_reach_listening_nodes_and_route_back() {
        let broker = LogBroker::default();
        let mut node1 = broker.listen("n1");
        let tasks = BTreeMap::from([
            ("n1".to_owned(), vec!["t1".to_owned()]),
            ("n2".to_owned(), vec!["t2".to_owned()]),
        ]);
        let mut subscribed = broker.subscribe(tasks, false, 10);
        assert_eq!(subscribed.nodes, 1, "n2 is not listening");
        let subscription = node1.recv().await.expect("n1 asked");
        assert_eq!(subscription.task_ids, ["t1"]);
        assert_eq!(subscription.tail, 10);
        let to_subscriber = broker.subscriber(&subscription.id).expect("subscriber");
        to_subscriber
            .send(LogMessage {
                subscription_id: subscription.id.clone(),
                task_id: "t1".into(),
                data: b"hello\n".to_vec(),
                ..LogMessage::default()
            })
            .await
            .expect("routed");
        let message = subscribed.messages.recv().await.expect("message");
        assert_eq!(message.data, b"hello\n");
        broker.unsubscribe(&subscribed.id);
        assert!(broker.subscriber(&subscribed.id).is_none());
    }
}
