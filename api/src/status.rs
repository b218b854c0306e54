//! `GET /shoal/v1/status`: what a node reports about itself and its data plane.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A node's own view of itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The node's identifier, kept in its data dir across restarts.
    pub node_id: String,
    /// The node's hostname.
    pub hostname: String,
    /// Address other nodes reach this one at.
    pub advertise_addr: String,
    /// Interface carrying node-to-node traffic; the XDP program sits on it.
    pub underlay_iface: String,
    /// shoald's version.
    pub version: String,
    /// Programs, pins and counters.
    pub dataplane: DataplaneStatus,
    /// The routing mesh on this node: its published ports' counters.
    #[serde(default)]
    pub mesh: MeshStatus,
}

/// The routing mesh's counters on one node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeshStatus {
    /// Packets of no published port (passed on, or dropped as truncated)
    /// and replies translated or tunnelled back, per reason (only those
    /// counted at least once).
    pub node: BTreeMap<String, u64>,
    /// Each published port this node answers on.
    pub ports: Vec<PublishedPortCounters>,
}

/// One published port's counters on one node (also under `MeshCounters`
/// in shoald's `service inspect`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublishedPortCounters {
    /// The service publishing it.
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    /// Its name.
    pub service_name: String,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// The port on the node.
    pub published_port: u16,
    /// The port in the tasks.
    pub target_port: u16,
    /// `ingress` or `host`.
    pub publish_mode: String,
    /// Packets per reason (`new_flow`, `forward`, `drop_no_backend` …),
    /// the same reasons as the hooks'; only those counted at least once
    /// are listed.
    pub verdicts: BTreeMap<String, u64>,
}

/// How the data plane came up when shoald started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataplaneStart {
    /// Nothing was pinned: programs loaded, attached and pinned.
    Fresh,
    /// Programs were still attached through their pinned links: reused as
    /// they were, nothing reloaded, no gap in processing.
    Reused,
    /// Pins existed from another build of the programs: maps were reused and
    /// the new programs replaced the old ones atomically in the same links.
    Upgraded,
}

/// The loaded programs, where they are pinned, and what they counted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataplaneStatus {
    /// Directory on bpffs holding this node's pins.
    pub pin_dir: String,
    /// How this run of shoald brought the data plane up.
    pub start: DataplaneStart,
    /// Attached programs.
    pub programs: Vec<ProgramStatus>,
    /// Counters per hook, keyed by its program name (`xdp_underlay`,
    /// `tc_underlay_ingress`, `tc_underlay_egress`, `tc_endpoint_ingress`,
    /// `tc_vxlan_ingress`); every hook is listed.
    pub counters: BTreeMap<String, HookCounters>,
}

/// One attached program.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramStatus {
    /// Function name in the eBPF object.
    pub name: String,
    /// Where it is attached, e.g. `xdp/eth0 (native)` or `tcx-egress/eth0`.
    pub attach: String,
    /// Kernel program ID (as `bpftool prog show` lists it).
    pub program_id: u32,
    /// Kernel link ID.
    pub link_id: u32,
}

/// What one hook counted, summed over CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookCounters {
    /// Per IP protocol (`tcp`, `udp`, `icmp`, …, or `proto-N`); only
    /// protocols seen at least once are listed.
    pub protocols: BTreeMap<String, PacketCount>,
    /// Packets per reason the hook counted them under (`pass_ip`,
    /// `redirect_local`, `drop_short_frame`, …; the drops' start with
    /// `drop_`); only reasons counted at least once are listed.
    pub verdicts: BTreeMap<String, u64>,
}

/// Packets and bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PacketCount {
    /// Packets.
    pub packets: u64,
    /// Bytes, from the Ethernet header on.
    pub bytes: u64,
}

/// Name of an IP protocol number as status output shows it.
#[must_use]
pub fn protocol_name(protocol: u8) -> String {
    match protocol {
        0 => "ipv6-hop-by-hop".into(),
        1 => "icmp".into(),
        2 => "igmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        41 => "ipv6-in-ipv4".into(),
        47 => "gre".into(),
        50 => "esp".into(),
        58 => "icmpv6".into(),
        112 => "vrrp".into(),
        132 => "sctp".into(),
        other => format!("proto-{other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_names() {
        assert_eq!(protocol_name(17), "udp");
        assert_eq!(protocol_name(58), "icmpv6");
        assert_eq!(protocol_name(200), "proto-200");
    }

    #[test]
    fn status_round_trips_through_json() {
        let mut counters = BTreeMap::new();
        counters.insert("xdp_underlay".to_owned(), HookCounters::default());
        let status = NodeStatus {
            node_id: "n".into(),
            hostname: "h".into(),
            advertise_addr: "198.18.0.1".into(),
            underlay_iface: "eth0".into(),
            version: "0.1.0".into(),
            dataplane: DataplaneStatus {
                pin_dir: "/sys/fs/bpf/shoal/n".into(),
                start: DataplaneStart::Reused,
                programs: vec![],
                counters,
            },
            mesh: MeshStatus {
                node: BTreeMap::from([("reply".to_owned(), 3)]),
                ports: vec![PublishedPortCounters {
                    service_id: "s".into(),
                    service_name: "web".into(),
                    protocol: "tcp".into(),
                    published_port: 8080,
                    target_port: 80,
                    publish_mode: "ingress".into(),
                    verdicts: BTreeMap::from([("new_flow".to_owned(), 1)]),
                }],
            },
        };
        let json = serde_json::to_string(&status).expect("serialize");
        assert!(json.contains("\"start\":\"reused\""));
        assert!(json.contains("\"PublishedPort\":8080"));
        let back: NodeStatus = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, status);
    }
}
