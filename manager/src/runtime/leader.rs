//! The loops a manager runs while it leads: the duties (marking silent
//! nodes Down, manager reachability, Raft membership following the roles)
//! and the orchestration rounds, whose plans it proposes.

use std::time::{Duration, Instant};

use shoal_api::id::ObjectId;
use tracing::{debug, warn};

use super::{
    Manager,
    liveness::mark_down_nodes,
    membership::{reconcile_roles, update_reachability},
};
use crate::{ca::now_unix_ms, orchestrator};

/// While this manager leads: marks nodes whose heartbeats stopped Down,
/// keeps the managers' reachability current and makes Raft membership
/// follow the nodes' roles.
pub(super) async fn leader_duties(manager: Manager) {
    let mut shutdown = manager.inner.shutdown.subscribe();
    let mut leading_since: Option<Instant> = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = shutdown.changed() => return,
        }
        if !manager.is_leader() {
            leading_since = None;
            continue;
        }
        let since = *leading_since.get_or_insert_with(Instant::now);
        if let Err(error) = mark_down_nodes(&manager, since).await {
            warn!(%error, "marking silent nodes down");
        }
        if let Err(error) = update_reachability(&manager).await {
            warn!(%error, "updating manager reachability");
        }
        if let Err(error) = reconcile_roles(&manager).await {
            warn!(%error, "reconciling node roles with Raft membership");
        }
    }
}

/// Pause between orchestration rounds when nothing was applied: restart
/// delays are counted against the clock.
const ORCHESTRATION_TICK: Duration = Duration::from_millis(250);

/// While this manager leads: runs the orchestrator and scheduler after every
/// applied entry (and on a tick, for restart delays) and proposes their plan.
pub(super) async fn orchestrate(manager: Manager) {
    let mut shutdown = manager.inner.shutdown.subscribe();
    let mut metrics = manager.inner.raft.metrics();
    loop {
        let applied = metrics.borrow().last_applied;
        tokio::select! {
            () = tokio::time::sleep(ORCHESTRATION_TICK) => {}
            changed = metrics.wait_for(|m| m.last_applied != applied) => if changed.is_err() { return },
            _ = shutdown.changed() => return,
        }
        if !manager.is_leader() {
            continue;
        }
        let now = now_unix_ms();
        let plan = manager
            .read(|state| orchestrator::plan(state, now, &mut || ObjectId::generate().into()))
            .await;
        if let Some(command) = plan {
            match manager.propose(command).await {
                Ok(response) => debug!(?response, "orchestration round applied"),
                Err(error) => warn!(%error, "orchestration round"),
            }
        }
    }
}
