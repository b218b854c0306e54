//! The leader's orchestration rounds on a [`Sim`], for the tests of the
//! orchestrator and of the whole control plane (`crate::scenarios`): plan
//! from the state and the simulated clock, apply the plan at the next log
//! index, repeat until the swarm settles.

use crate::state::{Command, test_support::Sim};

/// Orchestrator rounds on a simulated swarm.
pub(crate) trait Rounds {
    /// The orchestrator's plan for now, with task IDs `task0001`, ….
    fn plan(&mut self) -> Option<Command>;

    /// One round: plans and applies the plan. Whether there was one.
    fn round(&mut self) -> bool;

    /// Runs rounds until the orchestrator has nothing to do; returns how
    /// many changed something. Panics if it does not settle.
    fn settle(&mut self) -> usize;

    /// Rounds and agents until neither has anything to do.
    fn converge(&mut self);
}

impl Rounds for Sim {
    fn plan(&mut self) -> Option<Command> {
        let next = &mut self.next_task;
        super::plan(&self.state, self.now_ms, &mut || {
            *next += 1;
            format!("task{next:04}")
        })
    }

    fn round(&mut self) -> bool {
        match self.plan() {
            Some(command) => {
                self.ok(command);
                true
            }
            None => false,
        }
    }

    fn settle(&mut self) -> usize {
        for rounds in 0..20 {
            if !self.round() {
                return rounds;
            }
        }
        panic!("the orchestrator does not settle: {:#?}", self.plan());
    }

    fn converge(&mut self) {
        for _ in 0..50 {
            let planned = self.round();
            if !planned && self.agents() == 0 {
                return;
            }
        }
        panic!("the cluster does not converge: {:#?}", self.plan());
    }
}
