//! Docker's network vocabulary for swarm-scoped overlay networks: the body
//! of `POST /networks/create` ([`NetworkSpec`]) and the option names shoal
//! reads, field for field as `reference/docker-engine-api-v1.56.yaml`
//! defines them. Unknown fields are ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::go_json::nullable;

/// The option that sets a network's MTU (`--opt
/// com.docker.network.driver.mtu=N`).
pub const MTU_OPTION: &str = "com.docker.network.driver.mtu";
/// The option that encrypts a network's traffic (`--opt encrypted`).
pub const ENCRYPTED_OPTION: &str = "encrypted";
/// The only driver of swarm-scoped networks shoal serves.
pub const OVERLAY_DRIVER: &str = "overlay";

/// What `docker network create` sends.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkSpec {
    /// The network's name; unique in the swarm.
    pub name: String,
    /// `overlay` (the default here).
    pub driver: String,
    /// Standalone containers may attach (`--attachable`).
    pub attachable: bool,
    /// No traffic leaves the network (`--internal`).
    pub internal: bool,
    /// The routing mesh's network (`--ingress`): services that publish
    /// ports are attached to it implicitly. At most one per swarm; `swarm
    /// init` creates it, named `ingress`.
    pub ingress: bool,
    /// Driver options (`--opt`), e.g. the MTU.
    #[serde(deserialize_with = "nullable")]
    pub options: BTreeMap<String, String>,
    /// User-defined metadata (`--label`).
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    /// Addressing (`--subnet`, `--gateway`).
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
}

/// `{"Driver": "default", "Config": [{"Subnet": …, "Gateway": …}]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ipam {
    /// `default` (the only one).
    pub driver: String,
    /// One entry per subnet; shoal takes at most one IPv4 subnet.
    #[serde(deserialize_with = "nullable")]
    pub config: Vec<IpamConfig>,
}

/// One subnet of a network.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamConfig {
    /// An IPv4 CIDR.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subnet: String,
    /// An address in the subnet (default: its first host).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gateway: String,
}

/// A service's attachment to a network (`TaskTemplate.Networks[]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkAttachmentConfig {
    /// The network's ID (names are resolved to IDs when a spec is stored).
    pub target: String,
    /// Extra DNS names of the service on this network.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

impl NetworkSpec {
    /// The MTU the `com.docker.network.driver.mtu` option asks for.
    pub fn mtu(&self) -> Result<Option<u32>, String> {
        self.options
            .get(MTU_OPTION)
            .map(|v| {
                v.parse::<u32>()
                    .ok()
                    .filter(|mtu| (68..=65_535).contains(mtu))
                    .ok_or_else(|| format!("invalid MTU {v:?}: a number from 68 to 65535"))
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_cli_create_body_parses() {
        let body = r#"{"Name":"backend","CheckDuplicate":true,"Driver":"overlay","Scope":"","EnableIPv6":false,"IPAM":{"Driver":"default","Options":{},"Config":[{"Subnet":"10.10.0.0/24","Gateway":"10.10.0.1"}]},"Internal":false,"Attachable":true,"Ingress":false,"ConfigOnly":false,"ConfigFrom":null,"Options":{"com.docker.network.driver.mtu":"1400"},"Labels":null}"#;
        let spec: NetworkSpec = serde_json::from_str(body).expect("parses");
        assert_eq!(spec.name, "backend");
        assert!(spec.attachable);
        assert_eq!(spec.ipam.config[0].subnet, "10.10.0.0/24");
        assert_eq!(spec.mtu(), Ok(Some(1400)));
        let bad = NetworkSpec {
            options: BTreeMap::from([(MTU_OPTION.to_owned(), "9".to_owned())]),
            ..NetworkSpec::default()
        };
        assert!(bad.mtu().is_err());
    }
}
