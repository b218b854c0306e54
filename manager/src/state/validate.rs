//! Field validation for commands, with the bounds it enforces. `apply`
//! calls these before it changes anything; the API layer may call them too,
//! to refuse a request before proposing it.
//!
//! Every function returns [`Rejected::Invalid`] naming the field by its path
//! (`field` is the prefix the caller passes, e.g. `spec` or `node`).

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
};

use super::{
    error::Rejected,
    types::{JoinTokens, NodeSpec, NodeTlsInfo, Platform, RootCaRecord, SwarmSpec},
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
