//! The swarm a suite or a benchmark starts from ([`World::swarm`]): a
//! world whose daemons run, whose node 1 ran `swarm init` with a
//! dispatcher heartbeat of 1 s (lost nodes are seen fast) and whose other
//! nodes joined, with the demo image imported on every node; and
//! [`require_docker_client!`](crate::require_docker_client) for the suites
//! that drive it with the stock docker CLI.

use crate::World;

/// `swarm init`'s flags for every swarm made here.
const INIT_ARGS: [&str; 2] = ["--dispatcher-heartbeat", "1s"];

/// A swarm to form; [`World::swarm`] makes one, [`Self::form`] forms it.
#[derive(Debug)]
#[must_use = "nothing happens until `form`"]
pub struct SwarmSpec<'a> {
    tag: &'a str,
    nodes: usize,
    managers: bool,
    shoald_args: &'a [&'a str],
}

impl World {
    /// A swarm of `nodes` nodes in a world tagged `tag`: node 1 its
    /// manager, the others workers, `shoald` without extra flags.
    pub fn swarm(tag: &str, nodes: usize) -> SwarmSpec<'_> {
        SwarmSpec {
            tag,
            nodes,
            managers: false,
            shoald_args: &[],
        }
    }
}

impl<'a> SwarmSpec<'a> {
    /// The nodes after the first join as managers instead of workers.
    pub fn managers(self) -> Self {
        Self {
            managers: true,
            ..self
        }
    }

    /// Every `shoald` gets these flags.
    pub fn shoald_args(self, shoald_args: &'a [&'a str]) -> Self {
        Self {
            shoald_args,
            ..self
        }
    }

    /// Builds the world, starts every daemon, forms the swarm (waiting for
    /// it to settle, see [`World::form_swarm`]) and imports the demo image
    /// on every node.
    ///
    /// # Panics
    /// When the world cannot be built, a daemon does not start or the
    /// import fails.
    pub fn form(self) -> Result<World, String> {
        let mut world = World::new(self.tag, self.nodes);
        for n in 1..=self.nodes {
            world.node_mut(n).start_with(self.shoald_args);
        }
        let others: Vec<usize> = (2..=self.nodes).collect();
        let (managers, workers) = if self.managers {
            (&others[..], &[][..])
        } else {
            (&[][..], &others[..])
        };
        world.form_swarm(managers, workers, &INIT_ARGS)?;
        for node in world.nodes() {
            node.import_demo_image();
        }
        Ok(world)
    }
}

/// Returns from the calling test (with `$ret` when given), printing why,
/// when no docker client is installed.
#[macro_export]
macro_rules! require_docker_client {
    ($($ret:expr)?) => {
        if $crate::world::docker_client().is_none() {
            eprintln!("skipping: no docker client");
            return $($ret)?;
        }
    };
}
