//! `shoal status`: the node's identity, attached programs and counters.

use anyhow::Result;
use clap::{Args, ValueEnum};
use shoal_api::{
    Client,
    paths::NODE_STATUS,
    status::{MeshStatus, NodeStatus},
};

use crate::output::Table;

/// Arguments of `shoal status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Pretty)]
    format: Format,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    /// Human-readable tables.
    Pretty,
    /// The JSON document shoald serves.
    Json,
}

/// Fetches and prints the status.
pub async fn run(client: &Client, args: &StatusArgs) -> Result<()> {
    let status: NodeStatus = client.get_json(NODE_STATUS).await?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&status)?),
        Format::Pretty => print!("{}", render(&status)),
    }
    Ok(())
}

fn render(status: &NodeStatus) -> String {
    let dp = &status.dataplane;
    let mut out = format!(
        "Node:        {} ({})\nAdvertise:   {}\nUnderlay:    {}\nVersion:     {}\nData plane:  {} (pins in {})\n\n",
        status.node_id,
        status.hostname,
        status.advertise_addr,
        status.underlay_iface,
        status.version,
        serde_json::to_value(dp.start)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        dp.pin_dir,
    );
    let mut programs = Table::new(["PROGRAM", "ATTACHED TO", "PROG ID", "LINK ID"]);
    for p in &dp.programs {
        programs.row([
            p.name.clone(),
            p.attach.clone(),
            p.program_id.to_string(),
            p.link_id.to_string(),
        ]);
    }
    out.push_str(&programs.render());
    out.push('\n');
    let mut counters = Table::new(["HOOK", "PROTOCOL", "PACKETS", "BYTES"]);
    let mut reasons = Table::new(["HOOK", "REASON", "PACKETS"]);
    for (hook, c) in &dp.counters {
        for (protocol, count) in &c.protocols {
            counters.row([
                hook.clone(),
                protocol.clone(),
                count.packets.to_string(),
                count.bytes.to_string(),
            ]);
        }
        for (reason, packets) in &c.verdicts {
            reasons.row([hook.clone(), reason.clone(), packets.to_string()]);
        }
    }
    out.push_str(&counters.render());
    out.push('\n');
    out.push_str(&reasons.render());
    out.push('\n');
    out.push_str(&render_mesh(&status.mesh));
    out
}

/// The routing mesh's published ports and what they counted.
fn render_mesh(mesh: &MeshStatus) -> String {
    let mut ports = Table::new([
        "SERVICE",
        "PORT",
        "MODE",
        "NEW FLOWS",
        "FORWARDED",
        "DROPPED",
    ]);
    for port in &mesh.ports {
        let count = |reason: &str| port.verdicts.get(reason).copied().unwrap_or(0);
        let dropped: u64 = port
            .verdicts
            .iter()
            .filter(|(reason, _)| reason.starts_with("drop_"))
            .map(|(_, packets)| packets)
            .sum();
        ports.row([
            port.service_name.clone(),
            format!(
                "{}->{}/{}",
                port.published_port, port.target_port, port.protocol
            ),
            port.publish_mode.clone(),
            count("new_flow").to_string(),
            count("forward").to_string(),
            dropped.to_string(),
        ]);
    }
    let mut node = Table::new(["MESH (NODE)", "PACKETS"]);
    for (reason, packets) in &mesh.node {
        node.row([reason.clone(), packets.to_string()]);
    }
    format!("{}\n{}", ports.render(), node.render())
}
