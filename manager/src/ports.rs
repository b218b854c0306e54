//! Published port allocation (DESIGN.md §3, "Allocator"): a pure function
//! over what the other services hold, so `apply` can call it and every
//! manager resolves a spec's ports the same way; and the swarm's range of
//! published ports ([`PortRange`]). A leaf: the state machine calls it.
//!
//! Rules, as swarmkit's `checkPortConflicts` and port allocator:
//! - a published port is taken per protocol across every service: a port
//!   another service publishes in `ingress` mode is refused to anyone
//!   ("… as an ingress port"); one published in `host` mode is refused to
//!   an `ingress` port ("… as a host-published port") but may be shared by
//!   other `host` ports (the scheduler keeps them on different nodes);
//! - a port without a number (`ingress` mode) gets the lowest port of the
//!   swarm's range that nobody publishes, unless the service already held
//!   one for the same target, protocol and mode, which it keeps.
//!
//! - the swarm's own ports ([`RESERVED`]) are never allocated, and
//!   refused when asked for (`state::validate::endpoint_spec`): the mesh
//!   would take the nodes' control and overlay traffic.
//!
//! The spec's ports are expected validated (`state::validate::endpoint_spec`).

use std::{collections::BTreeSet, fmt};

use serde::{Deserialize, Serialize};
use shoal_api::{
    grpc::{MANAGER_PORT, VXLAN_PORT},
    service::PortConfig,
};

/// Ports the nodes use themselves on their underlay address, which the
/// routing mesh would otherwise take: the managers' gRPC and the overlay's
/// VXLAN.
pub const RESERVED: [(&str, u16); 2] = [("tcp", MANAGER_PORT), ("udp", VXLAN_PORT)];

/// Docker's range of published ports given when the spec has none
/// (swarmkit's `dynamicPortStart`–`dynamicPortEnd`).
pub const DEFAULT_PUBLISHED_PORT_RANGE: PortRange = PortRange {
    start: 30_000,
    end: 32_767,
};

/// An inclusive range of ports, `START-END`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRange {
    /// The first port.
    pub start: u16,
    /// The last port.
    pub end: u16,
}

impl Default for PortRange {
    /// Docker's 30000–32767.
    fn default() -> Self {
        DEFAULT_PUBLISHED_PORT_RANGE
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

impl std::str::FromStr for PortRange {
    type Err = String;

    /// `START-END`, both 1–65535, `START <= END`.
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("invalid port range {text:?}: expected START-END, 1-65535");
        let (start, end) = text.split_once('-').ok_or_else(bad)?;
        let start: u16 = start.trim().parse().map_err(|_| bad())?;
        let end: u16 = end.trim().parse().map_err(|_| bad())?;
        if start == 0 || end < start {
            return Err(bad());
        }
        Ok(Self { start, end })
    }
}

/// The ports another service holds.
#[derive(Clone, Copy, Debug)]
pub struct Holder<'a> {
    /// Its ID.
    pub service_id: &'a str,
    /// Its name.
    pub service_name: &'a str,
    /// Its resolved ports.
    pub ports: &'a [PortConfig],
}

/// Why a spec's ports cannot be resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortError {
    /// The published port is another service's.
    InUse {
        /// The port.
        port: u16,
        /// The holder's ID.
        service_id: String,
        /// The holder's name.
        service_name: String,
        /// Whether the holder publishes it in `host` mode.
        host_mode: bool,
    },
    /// No port of the range is free for the protocol.
    Exhausted {
        /// The range.
        range: PortRange,
        /// `tcp` or `udp`.
        protocol: String,
    },
}

/// Resolves `wanted` (a spec's ports) for a service that holds `held`
/// (its resolved ports before this change; empty for a new service),
/// against the ports of `others`, allocating from `range`.
///
/// Returns the resolved ports in the spec's order, protocol and mode
/// spelled out and every published number filled in; or the first
/// conflict, or exhaustion of the range.
pub fn resolve(
    wanted: &[PortConfig],
    held: &[PortConfig],
    others: &[Holder<'_>],
    range: PortRange,
) -> Result<Vec<PortConfig>, PortError> {
    let wanted: Vec<PortConfig> = wanted.iter().map(PortConfig::with_defaults).collect();
    for port in wanted.iter().filter(|p| p.published_port != 0) {
        for holder in others {
            let clash = holder.ports.iter().find(|h| {
                h.published_port == port.published_port
                    && h.protocol() == port.protocol()
                    && (!h.is_host_mode() || !port.is_host_mode())
            });
            if let Some(clash) = clash {
                return Err(PortError::InUse {
                    port: port.published_port,
                    service_id: holder.service_id.to_owned(),
                    service_name: holder.service_name.to_owned(),
                    host_mode: clash.is_host_mode(),
                });
            }
        }
    }
    // Taken for new numbers: everything others publish, and this spec's
    // explicit ports.
    let mut taken: BTreeSet<(String, u16)> = others
        .iter()
        .flat_map(|h| h.ports.iter())
        .chain(wanted.iter().filter(|p| p.published_port != 0))
        .map(|p| (p.protocol().to_owned(), p.published_port))
        .chain(RESERVED.map(|(protocol, port)| (protocol.to_owned(), port)))
        .collect();
    // First, held numbers the spec does not name explicitly are kept by
    // the ports that still ask for them (same target, protocol and mode);
    // the others are freed.
    let mut keepable: Vec<&PortConfig> = held
        .iter()
        .filter(|h| !taken.contains(&(h.protocol().to_owned(), h.published_port)))
        .collect();
    let mut resolved = wanted;
    for port in resolved.iter_mut().filter(|p| p.published_port == 0) {
        if let Some(i) = keepable.iter().position(|h| {
            h.target_port == port.target_port
                && h.protocol() == port.protocol()
                && h.publish_mode() == port.publish_mode()
        }) {
            port.published_port = keepable.remove(i).published_port;
            taken.insert((port.protocol().to_owned(), port.published_port));
        }
    }
    // Then the lowest free number of the range for each port left.
    for port in resolved.iter_mut().filter(|p| p.published_port == 0) {
        let protocol = port.protocol().to_owned();
        port.published_port = (range.start..=range.end)
            .find(|n| !taken.contains(&(protocol.clone(), *n)))
            .ok_or_else(|| PortError::Exhausted {
                range,
                protocol: protocol.clone(),
            })?;
        taken.insert((protocol, port.published_port));
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_swarms_own_ports_are_never_allocated() {
        let range = PortRange {
            start: 2377,
            end: 2378,
        };
        let resolved = resolve(&[port(0, 80, "tcp", "ingress")], &[], &[], range).expect("a port");
        assert_eq!(resolved[0].published_port, 2378);
        let udp = PortRange {
            start: 4789,
            end: 4789,
        };
        assert!(matches!(
            resolve(&[port(0, 53, "udp", "ingress")], &[], &[], udp),
            Err(PortError::Exhausted { .. })
        ));
    }

    fn port(published: u16, target: u16, protocol: &str, mode: &str) -> PortConfig {
        PortConfig {
            protocol: protocol.to_owned(),
            target_port: target,
            published_port: published,
            publish_mode: mode.to_owned(),
            ..PortConfig::default()
        }
    }

    fn range(start: u16, end: u16) -> PortRange {
        PortRange { start, end }
    }

    #[test]
    fn omitted_ports_get_the_lowest_free_of_the_range() {
        let web = [
            port(30000, 80, "tcp", "ingress"),
            port(30002, 81, "tcp", "ingress"),
        ];
        let others = [Holder {
            service_id: "s1",
            service_name: "web",
            ports: &web,
        }];
        let wanted = [
            port(0, 8080, "", ""),
            port(0, 8081, "tcp", "ingress"),
            port(0, 8082, "tcp", "ingress"),
            port(0, 53, "udp", "ingress"),
        ];
        let resolved = resolve(&wanted, &[], &others, range(30000, 32767)).expect("allocates");
        let numbers: Vec<u16> = resolved.iter().map(|p| p.published_port).collect();
        assert_eq!(
            numbers,
            [30001, 30003, 30004, 30000],
            "udp has its own ports"
        );
        assert_eq!(
            resolved[0],
            port(30001, 8080, "tcp", "ingress"),
            "defaults spelled out"
        );
    }

    #[test]
    fn the_range_is_configurable_and_runs_out() {
        let wanted = [port(0, 80, "", ""), port(0, 81, "", "")];
        let resolved = resolve(&wanted, &[], &[], range(8000, 8001)).expect("two fit");
        assert_eq!(resolved[1].published_port, 8001);
        let three = [
            port(0, 80, "", ""),
            port(0, 81, "", ""),
            port(0, 82, "", ""),
        ];
        assert_eq!(
            resolve(&three, &[], &[], range(8000, 8001)),
            Err(PortError::Exhausted {
                range: range(8000, 8001),
                protocol: "tcp".into()
            })
        );
        // An explicit port inside the range is not handed out again.
        let mixed = [port(0, 80, "", ""), port(8000, 81, "", "")];
        let resolved = resolve(&mixed, &[], &[], range(8000, 8001)).expect("fits");
        assert_eq!(resolved[0].published_port, 8001);
    }

    #[test]
    fn conflicts_name_the_holder_and_its_mode() {
        let web = [
            port(8080, 80, "tcp", "ingress"),
            port(9090, 90, "tcp", "host"),
        ];
        let others = [Holder {
            service_id: "id1",
            service_name: "web",
            ports: &web,
        }];
        let err = resolve(&[port(8080, 80, "", "")], &[], &others, range(30000, 32767));
        assert_eq!(
            err,
            Err(PortError::InUse {
                port: 8080,
                service_id: "id1".into(),
                service_name: "web".into(),
                host_mode: false
            })
        );
        // Host mode against an ingress holder conflicts too.
        assert!(resolve(&[port(8080, 80, "tcp", "host")], &[], &others, range(1, 2)).is_err());
        // An ingress port against a host holder.
        let err = resolve(&[port(9090, 80, "", "")], &[], &others, range(1, 2));
        assert!(matches!(
            err,
            Err(PortError::InUse {
                host_mode: true,
                ..
            })
        ));
        // Host against host is the scheduler's business; other protocols
        // do not clash.
        assert!(resolve(&[port(9090, 80, "tcp", "host")], &[], &others, range(1, 2)).is_ok());
        assert!(resolve(&[port(8080, 80, "udp", "")], &[], &others, range(1, 2)).is_ok());
    }

    #[test]
    fn an_update_keeps_held_ports_and_frees_removed_ones() {
        let held = [
            port(30000, 80, "tcp", "ingress"),
            port(30001, 81, "tcp", "ingress"),
            port(8080, 82, "tcp", "ingress"),
        ];
        // 81 is removed; 80 still asked for; a new 83.
        let wanted = [
            port(0, 83, "", ""),
            port(0, 80, "", ""),
            port(8080, 82, "", ""),
        ];
        let resolved = resolve(&wanted, &held, &[], range(30000, 32767)).expect("resolves");
        let numbers: Vec<u16> = resolved.iter().map(|p| p.published_port).collect();
        assert_eq!(numbers, [30001, 30000, 8080], "83 takes the freed 30001");
    }
}
