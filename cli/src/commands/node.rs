//! `shoal node …`: ls, inspect, update, rm, promote, demote, with docker's
//! flags and columns.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use shoal_api::{Client, docker};

use crate::{
    daemon::swarm_info,
    filters::{Filters, with_filters},
    output::Table,
};

/// `shoal node` verbs.
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// List nodes in the swarm.
    Ls {
        /// Only display IDs.
        #[arg(short, long)]
        quiet: bool,
        /// Filter output based on conditions provided (`key=value`: id,
        /// name, role, membership, label, node.label).
        #[arg(short, long)]
        filter: Vec<String>,
    },
    /// Display detailed information on one or more nodes.
    Inspect {
        /// Print the information in a human friendly format.
        #[arg(long)]
        pretty: bool,
        /// Nodes (ID, ID prefix or hostname; `self` for this node).
        #[arg(required = true)]
        nodes: Vec<String>,
    },
    /// Update a node.
    Update(UpdateArgs),
    /// Remove one or more nodes from the swarm.
    Rm {
        /// Force remove a node from the swarm.
        #[arg(short, long)]
        force: bool,
        /// Nodes.
        #[arg(required = true)]
        nodes: Vec<String>,
    },
    /// Promote one or more nodes to manager in the swarm.
    Promote {
        /// Nodes.
        #[arg(required = true)]
        nodes: Vec<String>,
    },
    /// Demote one or more nodes from manager in the swarm.
    Demote {
        /// Nodes.
        #[arg(required = true)]
        nodes: Vec<String>,
    },
}

/// `shoal node update` flags.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Availability of the node ("active", "pause", "drain").
    #[arg(long)]
    availability: Option<String>,
    /// Add or update a node label (`key=value`).
    #[arg(long = "label-add")]
    label_add: Vec<String>,
    /// Remove a node label if exists.
    #[arg(long = "label-rm")]
    label_rm: Vec<String>,
    /// Role of the node ("worker", "manager").
    #[arg(long)]
    role: Option<String>,
    /// The node.
    node: String,
}

/// Runs a `shoal node` verb.
pub async fn run(client: &Client, command: NodeCommand) -> Result<()> {
    match command {
        NodeCommand::Ls { quiet, filter } => ls(client, quiet, &filter).await,
        NodeCommand::Inspect { pretty, nodes } => inspect(client, pretty, &nodes).await,
        NodeCommand::Update(args) => {
            let node = args.node.clone();
            update(client, &node, |spec| {
                if let Some(availability) = &args.availability {
                    spec.availability.clone_from(availability);
                }
                if let Some(role) = &args.role {
                    spec.role.clone_from(role);
                }
                for label in &args.label_add {
                    let (k, v) = label.split_once('=').unwrap_or((label, ""));
                    spec.labels.insert(k.to_owned(), v.to_owned());
                }
                for key in &args.label_rm {
                    spec.labels.remove(key);
                }
            })
            .await?;
            println!("{node}");
            Ok(())
        }
        NodeCommand::Rm { force, nodes } => {
            for node in nodes {
                client
                    .delete(&format!(
                        "/nodes/{}?force={force}",
                        resolve(client, &node).await?
                    ))
                    .await?;
                println!("{node}");
            }
            Ok(())
        }
        NodeCommand::Promote { nodes } => set_role(client, &nodes, "manager").await,
        NodeCommand::Demote { nodes } => set_role(client, &nodes, "worker").await,
    }
}

/// `self` means this node, as in docker.
async fn resolve(client: &Client, node: &str) -> Result<String> {
    if node == "self" {
        Ok(swarm_info(client).await?.node_id)
    } else {
        Ok(node.to_owned())
    }
}

async fn update(
    client: &Client,
    node: &str,
    change: impl FnOnce(&mut docker::NodeSpec),
) -> Result<()> {
    let id = resolve(client, node).await?;
    let current: docker::Node = client.get_json(&format!("/nodes/{id}")).await?;
    let mut spec = current.spec;
    change(&mut spec);
    client
        .post(
            &format!(
                "/nodes/{}/update?version={}",
                current.id, current.version.index
            ),
            &spec,
        )
        .await?;
    Ok(())
}

async fn set_role(client: &Client, nodes: &[String], role: &str) -> Result<()> {
    for node in nodes {
        update(client, node, |spec| role.clone_into(&mut spec.role)).await?;
        if role == "manager" {
            println!("Node {node} promoted to a manager in the swarm.");
        } else {
            println!("Manager {node} demoted in the swarm.");
        }
    }
    Ok(())
}

/// `ready` → `Ready`, as docker prints states.
fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// `-f key=value` flags as filters, keys and values as given.
fn parse_node_filters(flags: &[String]) -> Result<Filters> {
    let mut filters = Filters::new();
    for filter in flags {
        let Some((key, value)) = filter.split_once('=') else {
            bail!("bad format of filter (expected name=value): {filter}");
        };
        filters
            .entry(key.to_owned())
            .or_default()
            .insert(value.to_owned());
    }
    Ok(filters)
}

async fn ls(client: &Client, quiet: bool, filters: &[String]) -> Result<()> {
    let path = with_filters("/nodes", &parse_node_filters(filters)?);
    let mut nodes: Vec<docker::Node> = client.get_json(&path).await?;
    nodes.sort_by(|a, b| (&a.description.hostname, &a.id).cmp(&(&b.description.hostname, &b.id)));
    if quiet {
        for node in nodes {
            println!("{}", node.id);
        }
        return Ok(());
    }
    let me = swarm_info(client).await?.node_id;
    let mut table = Table::new([
        "ID",
        "HOSTNAME",
        "STATUS",
        "AVAILABILITY",
        "MANAGER STATUS",
        "ENGINE VERSION",
    ]);
    for node in nodes {
        let id = if node.id == me {
            format!("{} *", node.id)
        } else {
            node.id.clone()
        };
        let manager_status = node.manager_status.as_ref().map_or_else(String::new, |m| {
            if m.leader {
                "Leader".to_owned()
            } else {
                capitalize(&m.reachability)
            }
        });
        table.row([
            id,
            node.description.hostname.clone(),
            capitalize(&node.status.state),
            capitalize(&node.spec.availability),
            manager_status,
            node.description.engine.engine_version.clone(),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

async fn inspect(client: &Client, pretty: bool, nodes: &[String]) -> Result<()> {
    let mut found = Vec::new();
    for node in nodes {
        let id = resolve(client, node).await?;
        found.push(
            client
                .get_json::<docker::Node>(&format!("/nodes/{id}"))
                .await?,
        );
    }
    if !pretty {
        println!("{}", serde_json::to_string_pretty(&found)?);
        return Ok(());
    }
    for node in &found {
        let labels: BTreeMap<_, _> = node.spec.labels.iter().collect();
        println!("ID:\t\t\t{}", node.id);
        if !node.spec.name.is_empty() {
            println!("Name:\t\t\t{}", node.spec.name);
        }
        if !labels.is_empty() {
            println!("Labels:");
            for (k, v) in labels {
                println!(" - {k}={v}");
            }
        }
        println!("Hostname:\t\t{}", node.description.hostname);
        println!("Joined at:\t\t{}", node.created_at);
        println!("Status:");
        println!(" State:\t\t\t{}", capitalize(&node.status.state));
        println!(" Availability:\t\t{}", capitalize(&node.spec.availability));
        println!(" Address:\t\t{}", node.status.addr);
        if let Some(m) = &node.manager_status {
            println!("Manager Status:");
            println!(" Address:\t\t{}", m.addr);
            println!(" Raft Status:\t\t{}", capitalize(&m.reachability));
            println!(" Leader:\t\t{}", if m.leader { "Yes" } else { "No" });
        }
        println!("Platform:");
        println!(" Operating System:\t{}", node.description.platform.os);
        println!(
            " Architecture:\t\t{}",
            node.description.platform.architecture
        );
        println!(
            "Engine Version:\t\t{}",
            node.description.engine.engine_version
        );
    }
    if found.is_empty() {
        bail!("no such node");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_filters_travel_as_given() {
        let filters =
            parse_node_filters(&["role=manager".into(), "Name= n1 ".into()]).expect("valid");
        assert_eq!(
            with_filters("/nodes", &filters),
            "/nodes?filters=%7B%22Name%22%3A%7B%22%20n1%20%22%3Atrue%7D%2C%22role%22%3A%7B%22manager%22%3Atrue%7D%7D"
        );
        assert_eq!(
            with_filters("/nodes", &parse_node_filters(&[]).expect("valid")),
            "/nodes"
        );
        assert!(parse_node_filters(&["nonsense".into()]).is_err());
    }
}
