//! Field validation for commands, with the bounds it enforces. `apply`
//! calls these before it changes anything; the API layer may call them too,
//! to refuse a request before proposing it.
//!
//! Every function returns [`Rejected::Invalid`] naming the field by its path
//! (`field` is the prefix the caller passes, e.g. `spec` or `node`).

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{IpAddr, Ipv4Addr, SocketAddr},
};

use shoal_api::service::{ContainerSpec, ServiceSpec, UpdateConfig};

use super::{
    error::Rejected,
    types::{JoinTokens, NodeSpec, NodeTlsInfo, Platform, RootCaRecord, SwarmSpec},
};
use crate::{
    constraint,
    ports::{self, PortRange},
};

/// Shortest dispatcher heartbeat period accepted: 1 s. Shorter periods turn
/// heartbeats into load and make nodes flap on a busy host.
pub const MIN_HEARTBEAT_PERIOD_MS: u64 = 1_000;
/// Longest dispatcher heartbeat period accepted: 1 h. Beyond it a dead node
/// would keep its tasks for hours.
pub const MAX_HEARTBEAT_PERIOD_MS: u64 = 60 * 60 * 1_000;
/// Shortest node certificate lifetime accepted: 1 h, as Docker
/// (`ca.MinNodeCertExpiration`).
pub const MIN_NODE_CERT_EXPIRY_MS: u64 = 60 * 60 * 1_000;
/// Longest node certificate lifetime accepted: 100 years (Docker has no
/// limit; this one only keeps expiry arithmetic far from overflow).
pub const MAX_NODE_CERT_EXPIRY_MS: u64 = 100 * 365 * 24 * 60 * 60 * 1_000;
/// Longest label key, in bytes.
pub const MAX_LABEL_KEY_BYTES: usize = 256;
/// Longest label value, in bytes.
pub const MAX_LABEL_VALUE_BYTES: usize = 4_096;
/// Longest name (swarm name, node name), in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// Longest ID (swarm, node), in bytes.
pub const MAX_ID_BYTES: usize = 64;
/// Longest hostname, in bytes (a DNS name).
pub const MAX_HOSTNAME_BYTES: usize = 253;
/// Longest short free text (architecture, OS, engine version, serial), in
/// bytes.
pub const MAX_SHORT_TEXT_BYTES: usize = 128;
/// Longest status message, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 4_096;
/// Longest join token, in bytes.
pub const MAX_TOKEN_BYTES: usize = 256;
/// The prefix of every join token.
pub const JOIN_TOKEN_PREFIX: &str = "SWMTKN-1-";
/// Largest subnet size (prefix length) carved from the address pool, as
/// Docker.
pub const MAX_SUBNET_SIZE: u8 = 29;
/// Lowest data path port accepted, as Docker.
pub const MIN_DATA_PATH_PORT: u16 = 1024;
/// Highest data path port accepted, as Docker.
pub const MAX_DATA_PATH_PORT: u16 = 49151;

type Result<T = ()> = std::result::Result<T, Rejected>;

fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_owned()
    } else {
        format!("{prefix}.{field}")
    }
}

/// An object ID (swarm or node): 1–[`MAX_ID_BYTES`] bytes of
/// `[A-Za-z0-9_.-]`, starting with a letter or digit (IDs name directories
/// and pins, so no `/`, no `..`).
pub fn id(field: &str, value: &str) -> Result {
    let Some(first) = value.chars().next() else {
        return Err(Rejected::invalid(field, "must not be empty"));
    };
    if value.len() > MAX_ID_BYTES {
        return Err(Rejected::invalid(
            field,
            format!("longer than {MAX_ID_BYTES} bytes"),
        ));
    }
    if !first.is_ascii_alphanumeric() {
        return Err(Rejected::invalid(
            field,
            "must start with a letter or a digit",
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(Rejected::invalid(
            field,
            format!("character {c:?} not allowed (only letters, digits, '-', '_', '.')"),
        ));
    }
    Ok(())
}

/// Free text: at most `max` bytes, no control characters; empty only when
/// `allow_empty`.
pub fn text(field: &str, value: &str, max: usize, allow_empty: bool) -> Result {
    if value.is_empty() && !allow_empty {
        return Err(Rejected::invalid(field, "must not be empty"));
    }
    if value.len() > max {
        return Err(Rejected::invalid(field, format!("longer than {max} bytes")));
    }
    if value.chars().any(char::is_control) {
        return Err(Rejected::invalid(field, "contains a control character"));
    }
    Ok(())
}

/// A word: like [`text`], and no whitespace either.
pub fn word(field: &str, value: &str, max: usize, allow_empty: bool) -> Result {
    text(field, value, max, allow_empty)?;
    if value.chars().any(char::is_whitespace) {
        return Err(Rejected::invalid(field, "contains whitespace"));
    }
    Ok(())
}

/// Labels: keys are non-empty, at most [`MAX_LABEL_KEY_BYTES`] bytes, with
/// neither whitespace nor control characters; values may be empty, are at
/// most [`MAX_LABEL_VALUE_BYTES`] bytes and have no control characters.
pub fn labels(field: &str, labels: &BTreeMap<String, String>) -> Result {
    for (key, value) in labels {
        word(field, key, MAX_LABEL_KEY_BYTES, false).map_err(|rejected| match rejected {
            Rejected::Invalid { field, reason } => {
                Rejected::invalid(field, format!("label key {key:?}: {reason}"))
            }
            other => other,
        })?;
        text(
            &format!("{field}.{key}"),
            value,
            MAX_LABEL_VALUE_BYTES,
            true,
        )?;
    }
    Ok(())
}

/// A swarm spec: name, labels, and the bounds documented on this module's
/// constants; Raft's `heartbeat_tick` ≥ 1, `election_tick` >
/// `heartbeat_tick`, `snapshot_interval` ≥ 1. `task_history_retention_limit`
/// may be anything (negative keeps all tasks).
pub fn swarm_spec(field: &str, spec: &SwarmSpec) -> Result {
    text(&join(field, "name"), &spec.name, MAX_NAME_BYTES, false)?;
    labels(&join(field, "labels"), &spec.labels)?;
    port_range(
        &join(field, "published_port_range"),
        spec.published_port_range,
    )?;

    let heartbeat = spec.dispatcher.heartbeat_period_ms;
    if !(MIN_HEARTBEAT_PERIOD_MS..=MAX_HEARTBEAT_PERIOD_MS).contains(&heartbeat) {
        return Err(Rejected::invalid(
            join(field, "dispatcher.heartbeat_period_ms"),
            format!(
                "heartbeat period must be between {MIN_HEARTBEAT_PERIOD_MS} ms and \
                 {MAX_HEARTBEAT_PERIOD_MS} ms, got {heartbeat} ms"
            ),
        ));
    }

    let expiry = spec.ca_config.node_cert_expiry_ms;
    if expiry < MIN_NODE_CERT_EXPIRY_MS {
        return Err(Rejected::invalid(
            join(field, "ca_config.node_cert_expiry_ms"),
            format!("minimum certificate expiry time is 1h, got {expiry} ms"),
        ));
    }
    if expiry > MAX_NODE_CERT_EXPIRY_MS {
        return Err(Rejected::invalid(
            join(field, "ca_config.node_cert_expiry_ms"),
            format!("maximum certificate expiry time is 100 years, got {expiry} ms"),
        ));
    }

    let raft = &spec.raft;
    if raft.heartbeat_tick == 0 {
        return Err(Rejected::invalid(
            join(field, "raft.heartbeat_tick"),
            "must be at least 1",
        ));
    }
    if raft.election_tick <= raft.heartbeat_tick {
        return Err(Rejected::invalid(
            join(field, "raft.election_tick"),
            format!(
                "must be greater than the heartbeat tick ({}), got {}",
                raft.heartbeat_tick, raft.election_tick
            ),
        ));
    }
    if raft.snapshot_interval == 0 {
        return Err(Rejected::invalid(
            join(field, "raft.snapshot_interval"),
            "must be at least 1",
        ));
    }
    Ok(())
}

/// A node spec: the name (may be empty) and the labels.
pub fn node_spec(field: &str, spec: &NodeSpec) -> Result {
    text(&join(field, "name"), &spec.name, MAX_NAME_BYTES, true)?;
    labels(&join(field, "labels"), &spec.labels)
}

/// A hostname: non-empty, at most [`MAX_HOSTNAME_BYTES`] bytes, no
/// whitespace.
pub fn hostname(field: &str, value: &str) -> Result {
    word(field, value, MAX_HOSTNAME_BYTES, false)
}

/// A platform: short texts, which may be empty when unknown.
pub fn platform(field: &str, value: &Platform) -> Result {
    word(
        &join(field, "architecture"),
        &value.architecture,
        MAX_SHORT_TEXT_BYTES,
        true,
    )?;
    word(&join(field, "os"), &value.os, MAX_SHORT_TEXT_BYTES, true)
}

/// A node's certificate info: a PEM trust root and a serial.
pub fn tls(field: &str, value: &NodeTlsInfo) -> Result {
    if !value.trust_root_pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(Rejected::invalid(
            join(field, "trust_root_pem"),
            "not a PEM certificate",
        ));
    }
    word(
        &join(field, "cert_serial"),
        &value.cert_serial,
        MAX_SHORT_TEXT_BYTES,
        false,
    )
}

/// A node's IP address (no port).
pub fn ip_addr(field: &str, value: &str) -> Result {
    value
        .parse::<IpAddr>()
        .map(drop)
        .map_err(|_| Rejected::invalid(field, format!("{value:?} is not an IP address")))
}

/// A manager's address: `ip:port` with a port other than 0.
pub fn socket_addr(field: &str, value: &str) -> Result {
    match value.parse::<SocketAddr>() {
        Ok(addr) if addr.port() != 0 => Ok(()),
        Ok(_) => Err(Rejected::invalid(field, "port must not be 0")),
        Err(_) => Err(Rejected::invalid(
            field,
            format!("{value:?} is not an ip:port address"),
        )),
    }
}

/// A Raft ID: at least 1 (0 is what a forgotten default looks like).
pub fn raft_id(field: &str, value: u64) -> Result {
    if value == 0 {
        return Err(Rejected::invalid(field, "must be at least 1"));
    }
    Ok(())
}

/// A join token: `SWMTKN-1-…`, no whitespace, at most [`MAX_TOKEN_BYTES`].
pub fn join_token(field: &str, value: &str) -> Result {
    word(field, value, MAX_TOKEN_BYTES, false)?;
    if !value.starts_with(JOIN_TOKEN_PREFIX) || value.len() == JOIN_TOKEN_PREFIX.len() {
        return Err(Rejected::invalid(
            field,
            format!("must be {JOIN_TOKEN_PREFIX}<CA digest>-<secret>"),
        ));
    }
    Ok(())
}

/// Both join tokens, which must differ (the token decides the role).
pub fn join_tokens(field: &str, tokens: &JoinTokens) -> Result {
    join_token(&join(field, "worker"), &tokens.worker)?;
    join_token(&join(field, "manager"), &tokens.manager)?;
    if tokens.worker == tokens.manager {
        return Err(Rejected::invalid(
            field,
            "the worker and manager tokens must differ",
        ));
    }
    Ok(())
}

/// A root CA: a PEM certificate, a PEM key and a digest.
pub fn root_ca(field: &str, value: &RootCaRecord) -> Result {
    if !value.cert_pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(Rejected::invalid(
            join(field, "cert_pem"),
            "not a PEM certificate",
        ));
    }
    if !value.key_pem.contains("PRIVATE KEY-----") {
        return Err(Rejected::invalid(
            join(field, "key_pem"),
            "not a PEM private key",
        ));
    }
    word(
        &join(field, "digest"),
        &value.digest,
        MAX_SHORT_TEXT_BYTES,
        false,
    )
}

/// The data path port: [`MIN_DATA_PATH_PORT`]–[`MAX_DATA_PATH_PORT`]. (The
/// API layer turns Docker's `0` into the default, 4789, before proposing.)
pub fn data_path_port(field: &str, value: u16) -> Result {
    if !(MIN_DATA_PATH_PORT..=MAX_DATA_PATH_PORT).contains(&value) {
        return Err(Rejected::invalid(
            field,
            format!(
                "data path port must be between {MIN_DATA_PATH_PORT} and \
                 {MAX_DATA_PATH_PORT}, got {value}"
            ),
        ));
    }
    Ok(())
}

/// An IPv4 CIDR without host bits, as `(first address, prefix length)`.
pub fn ipv4_cidr(field: &str, value: &str) -> Result<(Ipv4Addr, u8)> {
    let bad = || Rejected::invalid(field, format!("{value:?} is not an IPv4 CIDR"));
    let (addr, len) = value.split_once('/').ok_or_else(bad)?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    if len > 32 {
        return Err(bad());
    }
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    let network = Ipv4Addr::from(u32::from(addr) & mask);
    if network != addr {
        return Err(Rejected::invalid(
            field,
            format!("{value} has host bits set; did you mean {network}/{len}?"),
        ));
    }
    Ok((addr, len))
}

/// The default address pool and subnet size: at least one IPv4 CIDR, none
/// overlapping another, each with a prefix no longer than `subnet_size`,
/// which is at most [`MAX_SUBNET_SIZE`].
pub fn addr_pool(pool_field: &str, pool: &[String], size_field: &str, subnet_size: u8) -> Result {
    if subnet_size > MAX_SUBNET_SIZE {
        return Err(Rejected::invalid(
            size_field,
            format!("subnet size must be at most {MAX_SUBNET_SIZE}, got {subnet_size}"),
        ));
    }
    if pool.is_empty() {
        return Err(Rejected::invalid(pool_field, "must not be empty"));
    }
    let mut ranges = Vec::with_capacity(pool.len());
    for cidr in pool {
        let (addr, len) = ipv4_cidr(pool_field, cidr)?;
        if len > subnet_size {
            return Err(Rejected::invalid(
                size_field,
                format!(
                    "invalid subnet size {subnet_size}, must be greater than or equal to \
                     the prefix length of pool {cidr}"
                ),
            ));
        }
        let first = u64::from(u32::from(addr));
        let last = first + (1_u64 << (32 - u32::from(len))) - 1;
        ranges.push((first, last, cidr));
    }
    ranges.sort_unstable();
    for pair in ranges.windows(2) {
        if let [(_, last, a), (first, _, b)] = pair
            && first <= last
        {
            return Err(Rejected::invalid(
                pool_field,
                format!("pools {a} and {b} overlap"),
            ));
        }
    }
    Ok(())
}

/// Longest service name, as Docker (a DNS label).
pub const MAX_SERVICE_NAME_BYTES: usize = 63;
/// Most replicas a replicated service may ask for; beyond it a typo would
/// flood the Raft log with tasks.
pub const MAX_REPLICAS: u64 = 10_000;
/// Highest restart `MaxAttempts` accepted (0, the default, is unlimited).
/// The orchestrator counts restarts from the tasks kept in a slot's
/// history, so a slot keeps up to this many ended tasks while they count.
pub const MAX_RESTART_ATTEMPTS: u64 = 100;

/// A service spec as `docker service create|update` sends it: the name is
/// valid (see [`service_name`]), labels are valid, the image is set,
/// environment entries are `NAME=value` without control characters,
/// durations are not negative, resources are not negative, constraints
/// parse, placement preferences spread over a node label, replicas are at
/// most [`MAX_REPLICAS`], restart attempts at most
/// [`MAX_RESTART_ATTEMPTS`], health check tests are known, update and
/// rollback configs are valid (see [`update_config`]).
pub fn service_spec(field: &str, spec: &ServiceSpec) -> Result {
    service_name(&join(field, "Name"), &spec.name)?;
    labels(&join(field, "Labels"), &spec.labels)?;
    if let Some(replicas) = spec.mode.replicas()
        && replicas > MAX_REPLICAS
    {
        return Err(Rejected::invalid(
            join(field, "Mode.Replicated.Replicas"),
            format!("{replicas} is more than {MAX_REPLICAS}"),
        ));
    }
    let task = &spec.task_template;
    container_spec(
        &join(field, "TaskTemplate.ContainerSpec"),
        &task.container_spec,
    )?;
    for (name, resources) in [
        ("Limits", task.resources.limits),
        ("Reservations", task.resources.reservations),
    ] {
        let resources_field = join(field, &format!("TaskTemplate.Resources.{name}"));
        non_negative(
            &join(&resources_field, "NanoCPUs"),
            Some(resources.nano_cpus),
        )?;
        non_negative(
            &join(&resources_field, "MemoryBytes"),
            Some(resources.memory_bytes),
        )?;
    }
    let restart = &task.restart_policy;
    let restart_field = join(field, "TaskTemplate.RestartPolicy");
    non_negative(&join(&restart_field, "Delay"), restart.delay)?;
    non_negative(&join(&restart_field, "Window"), restart.window)?;
    if let Some(max) = restart.max_attempts
        && max > MAX_RESTART_ATTEMPTS
    {
        return Err(Rejected::invalid(
            join(&restart_field, "MaxAttempts"),
            format!("{max} is more than {MAX_RESTART_ATTEMPTS} (0 means unlimited)"),
        ));
    }
    let placement_field = join(field, "TaskTemplate.Placement");
    constraint::parse_all(&task.placement.constraints)
        .map_err(|e| Rejected::invalid(join(&placement_field, "Constraints"), e.to_string()))?;
    for preference in &task.placement.preferences {
        let descriptor = &preference.spread.spread_descriptor;
        if descriptor
            .strip_prefix("node.labels.")
            .is_none_or(str::is_empty)
        {
            return Err(Rejected::invalid(
                join(&placement_field, "Preferences"),
                format!("spread over {descriptor:?}: expected node.labels.<name>"),
            ));
        }
    }
    for (name, config) in [
        ("UpdateConfig", &spec.update_config),
        ("RollbackConfig", &spec.rollback_config),
    ] {
        if let Some(config) = config {
            update_config(&join(field, name), config)?;
        }
    }
    endpoint_spec(&join(field, "EndpointSpec"), spec)
}

/// An `UpdateConfig` or `RollbackConfig`, as dockerd and swarmkit check
/// it: a failure action and an order Docker knows (empty is the default),
/// durations not negative, a failure ratio from 0 to 1.
pub fn update_config(field: &str, config: &UpdateConfig) -> Result {
    config
        .failure_action()
        .map_err(|reason| Rejected::invalid(join(field, "FailureAction"), reason))?;
    config
        .order()
        .map_err(|reason| Rejected::invalid(join(field, "Order"), reason))?;
    non_negative(&join(field, "Delay"), config.delay)?;
    non_negative(&join(field, "Monitor"), config.monitor)?;
    if let Some(ratio) = config.max_failure_ratio
        && !(0.0..=1.0).contains(&ratio)
    {
        return Err(Rejected::invalid(
            join(field, "MaxFailureRatio"),
            format!("{ratio} is not between 0 and 1"),
        ));
    }
    Ok(())
}

/// A service's `EndpointSpec`: the mode is `vip` or `dnsrr`, every port
/// has a target (1–65535), a protocol shoal's routing mesh carries (`tcp`,
/// `udp`; `sctp` is refused), a mode (`ingress`, `host`), a published
/// number when published in `host` mode (shoal picks none per task), none
/// of the swarm's own ports ([`ports::RESERVED`]), and no published
/// port twice per protocol; `dnsrr` takes no `ingress` port
/// (swarmkit's `validateEndpointSpec`).
pub fn endpoint_spec(field: &str, spec: &ServiceSpec) -> Result {
    let Some(endpoint) = &spec.endpoint_spec else {
        return Ok(());
    };
    if !["", "vip", "dnsrr"].contains(&endpoint.mode.as_str()) {
        return Err(Rejected::invalid(
            join(field, "Mode"),
            format!("{:?}: expected vip or dnsrr", endpoint.mode),
        ));
    }
    let ports = &endpoint.ports;
    let mut published = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let port_field = join(field, &format!("Ports[{i}]"));
        if port.target_port == 0 {
            return Err(Rejected::invalid(
                join(&port_field, "TargetPort"),
                "0: expected a port from 1 to 65535",
            ));
        }
        match port.protocol() {
            "tcp" | "udp" => {}
            "sctp" => {
                return Err(Rejected::invalid(
                    join(&port_field, "Protocol"),
                    "sctp is not supported: shoal's routing mesh carries tcp and udp",
                ));
            }
            other => {
                return Err(Rejected::invalid(
                    join(&port_field, "Protocol"),
                    format!("{other:?}: expected tcp or udp"),
                ));
            }
        }
        match port.publish_mode() {
            "ingress" => {
                if !spec.uses_vip() {
                    return Err(Rejected::IngressPortWithDnsrr);
                }
            }
            "host" => {
                if port.published_port == 0 {
                    return Err(Rejected::invalid(
                        join(&port_field, "PublishedPort"),
                        "a port published in host mode needs its number: shoal does not pick one per task",
                    ));
                }
            }
            other => {
                return Err(Rejected::invalid(
                    join(&port_field, "PublishMode"),
                    format!("{other:?}: expected ingress or host"),
                ));
            }
        }
        if ports::RESERVED.contains(&(port.protocol(), port.published_port)) {
            return Err(Rejected::invalid(
                join(&port_field, "PublishedPort"),
                format!(
                    "{}/{} is reserved: the nodes use it for the swarm itself",
                    port.published_port,
                    port.protocol()
                ),
            ));
        }
        if port.published_port != 0
            && !published.insert((port.protocol().to_owned(), port.published_port))
        {
            return Err(Rejected::DuplicatePublishedPort {
                port: port.published_port,
                protocol: port.protocol().to_owned(),
            });
        }
    }
    Ok(())
}

/// A published port range: `1 <= start <= end`.
pub fn port_range(field: &str, range: PortRange) -> Result {
    if range.start == 0 || range.end < range.start {
        return Err(Rejected::invalid(
            field,
            format!("{range}: expected START-END with 1 <= START <= END <= 65535"),
        ));
    }
    Ok(())
}

/// A container spec: the image is set, labels are valid, environment
/// entries are `NAME=value`, arguments have no NUL, durations are not
/// negative, the health check test is known.
fn container_spec(prefix: &str, container: &ContainerSpec) -> Result {
    let prefix = prefix.to_owned();
    word(
        &join(&prefix, "Image"),
        &container.image,
        MAX_NAME_BYTES,
        false,
    )?;
    labels(&join(&prefix, "Labels"), &container.labels)?;
    for (i, entry) in container.env.iter().enumerate() {
        let name = join(&prefix, &format!("Env[{i}]"));
        text(&name, entry, MAX_LABEL_VALUE_BYTES, false)?;
        if entry.split_once('=').is_none_or(|(k, _)| k.is_empty()) {
            return Err(Rejected::invalid(
                name,
                format!("{entry:?} is not NAME=value"),
            ));
        }
    }
    for (what, args) in [("Command", &container.command), ("Args", &container.args)] {
        for (i, arg) in args.iter().enumerate() {
            if arg.contains('\0') {
                return Err(Rejected::invalid(
                    join(&prefix, &format!("{what}[{i}]")),
                    "contains a NUL byte",
                ));
            }
        }
    }
    text(&join(&prefix, "Dir"), &container.dir, MAX_NAME_BYTES, true)?;
    word(
        &join(&prefix, "User"),
        &container.user,
        MAX_SHORT_TEXT_BYTES,
        true,
    )?;
    if !container.hostname.is_empty() {
        hostname(&join(&prefix, "Hostname"), &container.hostname)?;
    }
    non_negative(
        &join(&prefix, "StopGracePeriod"),
        container.stop_grace_period,
    )?;
    if let Some(health) = &container.healthcheck {
        let health_field = join(&prefix, "Healthcheck");
        match health.test.first().map(String::as_str) {
            None | Some("NONE") => {}
            Some("CMD" | "CMD-SHELL") if health.command().is_some() => {}
            Some(_) => {
                return Err(Rejected::invalid(
                    join(&health_field, "Test"),
                    "expected [], [\"NONE\"], [\"CMD\", args...] or [\"CMD-SHELL\", command]",
                ));
            }
        }
        for (name, value) in [
            ("Interval", health.interval),
            ("Timeout", health.timeout),
            ("Retries", health.retries),
            ("StartPeriod", health.start_period),
        ] {
            non_negative(&join(&health_field, name), Some(value))?;
        }
    }
    Ok(())
}

/// A network name: Docker's rule, `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most
/// [`MAX_SERVICE_NAME_BYTES`] bytes.
pub fn network_name(field: &str, name: &str) -> Result {
    let valid = !name.is_empty()
        && name.len() <= MAX_SERVICE_NAME_BYTES
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if valid {
        Ok(())
    } else {
        Err(Rejected::invalid(
            field,
            format!("invalid network name {name:?}: [a-zA-Z0-9][a-zA-Z0-9_.-]*"),
        ))
    }
}

/// A service name: swarmkit's rule, at most [`MAX_SERVICE_NAME_BYTES`]
/// bytes of letters and digits, with `-` or `_` only between them
/// (`docker stack deploy` names services `<stack>_<service>`).
pub fn service_name(field: &str, name: &str) -> Result {
    if name.is_empty() {
        return Err(Rejected::invalid(field, "a service needs a name"));
    }
    if name.len() > MAX_SERVICE_NAME_BYTES {
        return Err(Rejected::invalid(
            field,
            format!("name must be {MAX_SERVICE_NAME_BYTES} characters or fewer"),
        ));
    }
    let separator = |c: char| c == '-' || c == '_';
    let valid = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || separator(c));
    if valid {
        Ok(())
    } else {
        Err(Rejected::invalid(
            field,
            format!("name {name:?} must be valid as a DNS name component"),
        ))
    }
}

fn non_negative(field: &str, value: Option<i64>) -> Result {
    match value {
        Some(v) if v < 0 => Err(Rejected::invalid(field, format!("{v} is negative"))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_configs_name_the_field_they_fail_on() {
        let spec = |update: &str, rollback: &str| -> ServiceSpec {
            serde_json::from_str(&format!(
                r#"{{"Name":"web","TaskTemplate":{{"ContainerSpec":{{"Image":"whoami:latest"}}}},"UpdateConfig":{update},"RollbackConfig":{rollback}}}"#
            ))
            .expect("spec")
        };
        let docker = r#"{"Parallelism":2,"Delay":3000000000,"FailureAction":"rollback","Monitor":7000000000,"MaxFailureRatio":0.2,"Order":"start-first"}"#;
        assert_eq!(service_spec("spec", &spec(docker, docker)), Ok(()));
        assert_eq!(
            service_spec("spec", &spec(r#"{"FailureAction":"","Order":""}"#, "{}")),
            Ok(())
        );
        for (update, rollback, error) in [
            (
                r#"{"FailureAction":"bogus"}"#,
                "{}",
                r#"invalid spec.UpdateConfig.FailureAction: "bogus": expected pause, continue or rollback"#,
            ),
            (
                "{}",
                r#"{"Order":"sideways"}"#,
                r#"invalid spec.RollbackConfig.Order: "sideways": expected stop-first or start-first"#,
            ),
            (
                r#"{"Delay":-1}"#,
                "{}",
                "invalid spec.UpdateConfig.Delay: -1 is negative",
            ),
            (
                "{}",
                r#"{"Monitor":-5}"#,
                "invalid spec.RollbackConfig.Monitor: -5 is negative",
            ),
            (
                r#"{"MaxFailureRatio":1.5}"#,
                "{}",
                "invalid spec.UpdateConfig.MaxFailureRatio: 1.5 is not between 0 and 1",
            ),
        ] {
            let rejected = service_spec("spec", &spec(update, rollback)).expect_err(update);
            assert_eq!(rejected.to_string(), error);
        }
    }
}
