//! Docker's `Network` document (`GET /networks…`, the swarm-scoped overlay
//! networks shoald serves) and the answer to `POST /networks/create`: what
//! shoald serves and what a client reads from shoald or dockerd. Fields
//! Docker may leave out default when read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::nullable;
use crate::network::IpamConfig;

/// `GET /networks` item and `GET /networks/{id}`.
#[expect(
    clippy::struct_excessive_bools,
    reason = "Docker's document: one JSON boolean per field"
)]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Network {
    /// The network's name.
    pub name: String,
    /// The network's ID.
    #[serde(rename = "Id")]
    pub id: String,
    /// RFC 3339.
    pub created: String,
    /// `swarm` for shoal's networks (dockerd: also `local`).
    pub scope: String,
    /// `overlay` for shoal's networks.
    pub driver: String,
    /// IPv4 is on.
    #[serde(rename = "EnableIPv4")]
    pub enable_ipv4: bool,
    /// IPv6 is on (never, in shoal).
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    /// Addressing: the subnet and gateway in use.
    #[serde(rename = "IPAM", deserialize_with = "nullable")]
    pub ipam: NetworkIpam,
    /// No traffic leaves the network.
    pub internal: bool,
    /// Standalone containers may attach.
    pub attachable: bool,
    /// The routing mesh's network.
    pub ingress: bool,
    /// The config-only network this one takes its configuration from.
    #[serde(deserialize_with = "nullable")]
    pub config_from: ConfigReference,
    /// A config-only network.
    pub config_only: bool,
    /// Containers of this node attached, by ID (none in shoal).
    #[serde(deserialize_with = "nullable")]
    pub containers: BTreeMap<String, EndpointResource>,
    /// Driver options, with the VNI (`…overlay.vxlanid_list`).
    #[serde(deserialize_with = "nullable")]
    pub options: BTreeMap<String, String>,
    /// User-defined metadata.
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    /// The nodes with the network (dockerd's overlay networks; shoal lists
    /// none).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<PeerInfo>,
}

/// `Network.IPAM`, the addressing a network has (unlike the spec's, its
/// `Options` is always written, `null` when there are none, as dockerd
/// does).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkIpam {
    /// `default`.
    pub driver: String,
    /// Driver options.
    pub options: Option<BTreeMap<String, String>>,
    /// The subnets.
    #[serde(deserialize_with = "nullable")]
    pub config: Vec<IpamConfig>,
}

/// `Network.ConfigFrom`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ConfigReference {
    /// The config-only network's name; empty for none.
    pub network: String,
}

/// A container's endpoint on a network (`Network.Containers` value).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointResource {
    /// The container's name.
    pub name: String,
    /// The endpoint's ID.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    /// Its MAC address.
    pub mac_address: String,
    /// `addr/prefix`, or empty.
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    /// `addr/prefix`, or empty.
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
}

/// A node with an overlay network (`Network.Peers` item).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PeerInfo {
    /// The node's hostname.
    pub name: String,
    /// The node's underlay address.
    #[serde(rename = "IP")]
    pub ip: String,
}

/// `POST /networks/create` answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkCreateResponse {
    /// The new network's ID.
    #[serde(rename = "Id")]
    pub id: String,
    /// A warning for the user; empty for none.
    pub warning: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerd_network_parses() {
        // `GET /networks/{id}` from dockerd 28 on a swarm manager.
        let network: Network = serde_json::from_str(
            r#"{"Name":"backend","Id":"q1wbyd2nkzvb","Created":"2024-05-02T10:11:12.123456789Z","Scope":"swarm","Driver":"overlay","EnableIPv4":true,"EnableIPv6":false,"IPAM":{"Driver":"default","Options":null,"Config":[{"Subnet":"10.0.1.0/24","Gateway":"10.0.1.1"}]},"Internal":false,"Attachable":true,"Ingress":false,"ConfigFrom":{"Network":""},"ConfigOnly":false,"Containers":{"c0ffee":{"Name":"web.1.abc","EndpointID":"e1","MacAddress":"02:42:0a:00:01:03","IPv4Address":"10.0.1.3/24","IPv6Address":""}},"Options":{"com.docker.network.driver.overlay.vxlanid_list":"4097"},"Labels":{},"Peers":[{"Name":"node-1","IP":"198.18.0.1"}]}"#,
        )
        .expect("network");
        assert_eq!(network.id, "q1wbyd2nkzvb");
        assert!(network.attachable);
        assert_eq!(network.ipam.config[0].gateway, "10.0.1.1");
        assert_eq!(network.containers["c0ffee"].ipv4_address, "10.0.1.3/24");
        assert_eq!(network.peers[0].ip, "198.18.0.1");
        let created: NetworkCreateResponse =
            serde_json::from_str(r#"{"Id":"q1wbyd2nkzvb","Warning":""}"#).expect("created");
        assert_eq!(created.id, "q1wbyd2nkzvb");
        // What shoald always answered.
        assert_eq!(
            serde_json::to_string(&created).expect("json"),
            r#"{"Id":"q1wbyd2nkzvb","Warning":""}"#
        );
    }
}
