//! `shoal network …`: create, ls, inspect, rm for swarm-scoped overlay
//! networks, with the flags, columns and messages of `docker network …`.
//! (The networks of services are `service`'s: its `networks` module.)
//!
//! The pure parts are apart from the requests so they can be tested: the
//! flags → [`NetworkSpec`] translation ([`CreateArgs::spec`], with
//! docker's IPAM checks in [`ipam_config`]) and the `ls` table
//! ([`ls_table`]).

use std::net::IpAddr;

use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::Value;
use shoal_api::{
    Client,
    docker::{Network, NetworkCreateResponse},
    network::{Ipam, IpamConfig, NetworkSpec, OVERLAY_DRIVER},
};

use crate::{
    docker_error::{DockerError, is_not_found},
    filters::{parse_filters, with_filters},
    flag_values::parse_label,
    output::{Table, json_indented, natural_cmp, truncate_id},
};

/// `shoal network` verbs.
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network.
    #[command(override_usage = "shoal network create [OPTIONS] NETWORK")]
    Create(CreateArgs),
    /// List networks.
    #[command(alias = "list")]
    Ls {
        /// Only display network IDs.
        #[arg(short, long)]
        quiet: bool,
        /// Do not truncate the output.
        #[arg(long)]
        no_trunc: bool,
        /// Provide filter values (e.g. 'driver=overlay'; id, name, driver,
        /// scope, label, type).
        #[arg(short, long)]
        filter: Vec<String>,
    },
    /// Display detailed information on one or more networks.
    Inspect {
        /// Networks (ID, ID prefix or name).
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove one or more networks.
    #[command(alias = "remove")]
    Rm {
        /// Do not error if the network does not exist.
        #[arg(short, long)]
        force: bool,
        /// Networks (ID, ID prefix or name).
        #[arg(required = true)]
        networks: Vec<String>,
    },
}

/// `shoal network create` flags, as docker's.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Driver to manage the Network (only "overlay": swarm-scoped overlay
    /// networks).
    #[arg(short, long, default_value = OVERLAY_DRIVER)]
    driver: String,
    /// Subnet in CIDR format that represents a network segment.
    #[arg(long, value_delimiter = ',')]
    subnet: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet.
    #[arg(long, value_delimiter = ',')]
    gateway: Vec<String>,
    /// Enable manual container attachment.
    #[arg(long)]
    attachable: bool,
    /// Restrict external access to the network.
    #[arg(long)]
    internal: bool,
    /// Create swarm routing-mesh network.
    #[arg(long)]
    ingress: bool,
    /// Set driver specific options (`key=value`).
    #[arg(short, long, value_parser = parse_option)]
    opt: Vec<(String, String)>,
    /// Set metadata on a network.
    #[arg(long, value_parser = parse_label)]
    label: Vec<(String, String)>,
    /// The network's name.
    #[arg(value_name = "NETWORK")]
    name: String,
}

/// Runs a `shoal network` verb.
pub async fn run(client: &Client, command: NetworkCommand) -> Result<()> {
    match command {
        NetworkCommand::Create(args) => create(client, &args).await?,
        NetworkCommand::Ls {
            quiet,
            no_trunc,
            filter,
        } => ls(client, quiet, no_trunc, &filter).await?,
        NetworkCommand::Inspect { networks } => inspect(client, &networks).await?,
        NetworkCommand::Rm { force, networks } => rm(client, force, &networks).await?,
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// create

/// `-o key=value` (a bare key has an empty value, as `-o encrypted`).
#[expect(
    clippy::unnecessary_wraps,
    reason = "clap's value parsers return a Result"
)]
fn parse_option(value: &str) -> Result<(String, String), String> {
    let (key, option) = value.split_once('=').unwrap_or((value, ""));
    Ok((key.to_owned(), option.to_owned()))
}

impl CreateArgs {
    /// The body docker's CLI would send for these flags, or why they are
    /// refused.
    pub fn spec(&self) -> Result<NetworkSpec, String> {
        if self.driver != OVERLAY_DRIVER {
            return Err(format!(
                "network driver {:?} is not supported: shoal networks are swarm-scoped overlay networks (-d overlay)",
                self.driver
            ));
        }
        Ok(NetworkSpec {
            name: self.name.clone(),
            driver: self.driver.clone(),
            attachable: self.attachable,
            internal: self.internal,
            ingress: self.ingress,
            options: self.opt.iter().cloned().collect(),
            labels: self.label.iter().cloned().collect(),
            ipam: Ipam {
                driver: "default".into(),
                config: ipam_config(&self.subnet, &self.gateway)?,
            },
        })
    }
}

/// An address and prefix length as Go's `net.ParseCIDR` reads them (the
/// address as written, host bits and all).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn parse(text: &str) -> Result<Self, String> {
        let invalid = || format!("invalid CIDR address: {text}");
        let (addr, prefix) = text.split_once('/').ok_or_else(invalid)?;
        let addr: IpAddr = addr.parse().map_err(|_| invalid())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max && prefix.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(invalid)?;
        Ok(Self { addr, prefix })
    }

    /// Whether `ip` is in this network (never across address families).
    fn contains(self, ip: IpAddr) -> bool {
        let (net, ip, bits) = match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                (u128::from(net.to_bits()), u128::from(ip.to_bits()), 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => (u128::from(net), u128::from(ip), 128),
            _ => return false,
        };
        let host_bits = bits - u32::from(self.prefix);
        host_bits >= 128 || (net >> host_bits) == (ip >> host_bits)
    }
}

/// The address of a `--gateway` value as docker's `subnetMatches` reads
/// it: a CIDR's address (an invalid CIDR is an error), else an address
/// (`None` when it is not one, which matches no subnet).
fn gateway_addr(text: &str) -> Result<Option<IpAddr>, String> {
    if text.contains('/') {
        Cidr::parse(text).map(|cidr| Some(cidr.addr))
    } else {
        Ok(text.parse().ok())
    }
}

/// `--subnet` and `--gateway` as docker's CLI consolidates them: valid,
/// non-overlapping subnets, each gateway in one of them, at most one
/// gateway per subnet. (The daemon takes one IPv4 subnet.)
fn ipam_config(subnets: &[String], gateways: &[String]) -> Result<Vec<IpamConfig>, String> {
    if subnets.len() < gateways.len() {
        return Err("every ip-range or gateway must have a corresponding subnet".into());
    }
    let mut configs: Vec<(Cidr, IpamConfig)> = Vec::new();
    for subnet in subnets {
        let cidr = Cidr::parse(subnet).map_err(|e| format!("invalid subnet: {e}"))?;
        if configs
            .iter()
            .any(|(other, _)| other.contains(cidr.addr) || cidr.contains(other.addr))
        {
            return Err("multiple overlapping subnet configuration is not supported".into());
        }
        configs.push((
            cidr,
            IpamConfig {
                subnet: subnet.clone(),
                gateway: String::new(),
            },
        ));
    }
    for gateway in gateways {
        let addr = gateway_addr(gateway)?;
        let mut matched = false;
        for (cidr, config) in &mut configs {
            if !addr.is_some_and(|addr| cidr.contains(addr)) {
                continue;
            }
            if !config.gateway.is_empty() {
                return Err(format!(
                    "cannot configure multiple gateways ({gateway}, {}) for the same subnet ({})",
                    config.gateway, config.subnet
                ));
            }
            config.gateway.clone_from(gateway);
            matched = true;
        }
        if !matched {
            return Err(format!("no matching subnet for gateway {gateway}"));
        }
    }
    Ok(configs.into_iter().map(|(_, config)| config).collect())
}

async fn create(client: &Client, args: &CreateArgs) -> Result<(), DockerError> {
    let spec = args.spec()?;
    let created: NetworkCreateResponse = client.post_json("/networks/create", &spec).await?;
    println!("{}", created.id);
    Ok(())
}

// ---------------------------------------------------------------------------
// ls, inspect, rm

async fn ls(
    client: &Client,
    quiet: bool,
    no_trunc: bool,
    filter: &[String],
) -> Result<(), DockerError> {
    let filters = parse_filters(filter)?;
    let networks: Vec<Network> = client
        .get_json(&with_filters("/networks", &filters))
        .await?;
    print!("{}", ls_table(networks, quiet, !no_trunc));
    Ok(())
}

/// `docker network ls`: sorted by name, IDs cut to 12 characters when
/// `trunc`; only the IDs when `quiet`.
fn ls_table(mut networks: Vec<Network>, quiet: bool, trunc: bool) -> String {
    networks.sort_by(|a, b| natural_cmp(&a.name, &b.name));
    let id = |network: &Network| {
        if trunc {
            truncate_id(&network.id).to_owned()
        } else {
            network.id.clone()
        }
    };
    if quiet {
        return networks.iter().map(|n| id(n) + "\n").collect();
    }
    let mut table = Table::new(["NETWORK ID", "NAME", "DRIVER", "SCOPE"]);
    for network in &networks {
        table.row([
            id(network),
            network.name.clone(),
            network.driver.clone(),
            network.scope.clone(),
        ]);
    }
    table.render()
}

/// Prints the networks found as a JSON array (`[]` when none is), then
/// the daemon's error for each one not found.
async fn inspect(client: &Client, networks: &[String]) -> Result<(), DockerError> {
    let mut found: Vec<Value> = Vec::new();
    let mut errors = Vec::new();
    for network in networks {
        match client
            .get_json::<Value>(&format!("/networks/{network}"))
            .await
        {
            Ok(value) => found.push(value),
            Err(error) => errors.push(DockerError::from(error).0),
        }
    }
    println!("{}", json_indented(&found));
    if errors.is_empty() {
        Ok(())
    } else {
        Err(DockerError(errors.join("\n")))
    }
}

/// Docker's warning before removing the routing-mesh network.
const INGRESS_WARNING: &str = "WARNING! Before removing the routing-mesh network, make sure all the nodes in your swarm run the same docker engine version. Otherwise, removal may not be effective and functionality of newly create ingress networks will be impaired.\nAre you sure you want to continue?";

/// Whether the answer to a `[y/N]` prompt is yes (docker: `y` or `Y`).
fn confirmed(answer: &str) -> bool {
    matches!(answer.trim(), "y" | "Y")
}

/// Asks, as docker does before removing the ingress network.
fn confirm_ingress_removal() -> Result<(), DockerError> {
    use std::io::{BufRead as _, Write as _};
    print!("{INGRESS_WARNING} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if confirmed(&answer) {
        Ok(())
    } else {
        Err(DockerError("Operation cancelled".into()))
    }
}

/// Removes each network, printing its name; the errors come after, then
/// docker's `exit status 1`. With `force`, a network not found is no
/// error.
async fn rm(client: &Client, force: bool, networks: &[String]) -> Result<(), DockerError> {
    let mut errors = Vec::new();
    for network in networks {
        let inspected: Result<Network, _> = client.get_json(&format!("/networks/{network}")).await;
        if inspected.is_ok_and(|n| n.ingress) {
            confirm_ingress_removal()?;
        }
        match client.delete(&format!("/networks/{network}")).await {
            Ok(_) => println!("{network}"),
            Err(error) if force && is_not_found(&error) => {}
            Err(error) => errors.push(DockerError::from(error).0),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        errors.push("exit status 1".into());
        Err(DockerError(errors.join("\n")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::parse_flags;

    /// The body of `shoal network create <args>`.
    fn create(args: &[&str]) -> Result<NetworkSpec, String> {
        parse_flags::<CreateArgs>("create", args)?.spec()
    }

    #[test]
    fn create_flags_become_dockers_body() {
        let spec = create(&[
            "--subnet",
            "10.20.0.0/24",
            "--gateway",
            "10.20.0.5",
            "--attachable",
            "--internal",
            "-o",
            "com.docker.network.driver.mtu=1400",
            "--opt",
            "encrypted",
            "--label",
            "a=b",
            "--label",
            "c",
            "back",
        ])
        .expect("valid");
        assert_eq!(spec.name, "back");
        assert_eq!(spec.driver, "overlay");
        assert!(spec.attachable && spec.internal);
        assert_eq!(spec.mtu(), Ok(Some(1400)));
        assert_eq!(spec.options.get("encrypted").map(String::as_str), Some(""));
        assert_eq!(spec.labels.get("c").map(String::as_str), Some(""));
        assert_eq!(spec.ipam.driver, "default");
        assert_eq!(
            spec.ipam.config,
            [IpamConfig {
                subnet: "10.20.0.0/24".into(),
                gateway: "10.20.0.5".into()
            }]
        );
        let plain = create(&["-d", "overlay", "front"]).expect("valid");
        assert!(plain.ipam.config.is_empty());
        assert_eq!(create(&["front"]).expect("valid").driver, "overlay");
    }

    #[test]
    fn create_refuses_what_docker_refuses() {
        let refused = |args: &[&str], wanted: &str| {
            let error = create(args).expect_err("refused");
            assert!(error.contains(wanted), "{args:?}: {error}");
        };
        refused(&["-d", "bridge", "n"], "driver \"bridge\" is not supported");
        refused(
            &["--subnet", "10.0.0.0/33", "n"],
            "invalid subnet: invalid CIDR address: 10.0.0.0/33",
        );
        refused(
            &["--subnet", "nonsense", "n"],
            "invalid subnet: invalid CIDR address: nonsense",
        );
        refused(
            &["--gateway", "10.0.0.1", "n"],
            "every ip-range or gateway must have a corresponding subnet",
        );
        refused(
            &["--subnet", "10.0.0.0/24", "--gateway", "10.0.1.1", "n"],
            "no matching subnet for gateway 10.0.1.1",
        );
        refused(
            &["--subnet", "10.0.0.0/24", "--gateway", "bogus", "n"],
            "no matching subnet for gateway bogus",
        );
        refused(
            &["--subnet", "10.0.0.0/16,10.0.1.0/24", "n"],
            "multiple overlapping subnet configuration is not supported",
        );
        refused(
            &[
                "--subnet",
                "10.0.0.0/24",
                "--subnet",
                "10.1.0.0/24",
                "--gateway",
                "10.0.0.2,10.0.0.3",
                "n",
            ],
            "cannot configure multiple gateways (10.0.0.3, 10.0.0.2) for the same subnet (10.0.0.0/24)",
        );
        refused(&["--label", "=x", "n"], "invalid label '=x': empty name");
        refused(&[], "<NETWORK>");
    }

    #[test]
    fn cidrs_contain_like_go() {
        let cidr = Cidr::parse("10.0.0.7/24").expect("valid");
        assert!(cidr.contains("10.0.0.255".parse().expect("ip")));
        assert!(!cidr.contains("10.0.1.0".parse().expect("ip")));
        assert!(!cidr.contains("::1".parse().expect("ip")));
        let all = Cidr::parse("0.0.0.0/0").expect("valid");
        assert!(all.contains("192.0.2.1".parse().expect("ip")));
        let v6 = Cidr::parse("fd00::/64").expect("valid");
        assert!(v6.contains("fd00::1".parse().expect("ip")));
        assert!(Cidr::parse("10.0.0.0/+8").is_err());
        assert!(Cidr::parse("10.0.0.0").is_err());
    }

    fn view(id: &str, name: &str) -> Network {
        Network {
            id: id.into(),
            name: name.into(),
            driver: "overlay".into(),
            scope: "swarm".into(),
            ..Network::default()
        }
    }

    #[test]
    fn ls_like_docker() {
        let networks = || {
            vec![
                view("eax7kk3ziysl00kryklknk2vl", "net10"),
                view("67wlt8rxwrsllvu6rqw8hz07y", "net9"),
            ]
        };
        assert_eq!(
            ls_table(networks(), false, true),
            "\
NETWORK ID     NAME      DRIVER    SCOPE
67wlt8rxwrsl   net9      overlay   swarm
eax7kk3ziysl   net10     overlay   swarm
"
        );
        assert_eq!(
            ls_table(networks(), true, true),
            "67wlt8rxwrsl\neax7kk3ziysl\n"
        );
        assert_eq!(
            ls_table(networks(), true, false),
            "67wlt8rxwrsllvu6rqw8hz07y\neax7kk3ziysl00kryklknk2vl\n"
        );
        assert_eq!(
            ls_table(Vec::new(), false, true),
            "NETWORK ID   NAME      DRIVER    SCOPE\n"
        );
    }

    #[test]
    fn ingress_removal_needs_a_yes() {
        assert!(confirmed("y\n") && confirmed("Y"));
        assert!(!confirmed("") && !confirmed("yes") && !confirmed("n"));
        let spec = create(&["--ingress", "mesh"]).expect("valid");
        assert!(spec.ingress);
    }
}
