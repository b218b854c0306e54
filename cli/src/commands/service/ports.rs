//! Published ports on the command line, as docker's CLI reads and edits
//! them: `--publish` (`service create`), `--publish-add` and
//! `--publish-rm` (`service update`), in the long form
//! (`published=8080,target=80,protocol=udp,mode=host`) and the short
//! forms (`8080:80`, `8080:80/udp`, `80`); and the edit of a spec's
//! `EndpointSpec.Ports` (docker's `updatePorts`).

use shoal_api::service::PortConfig;

use crate::flag_values::is_long_syntax;

/// Parses one `--publish` value as docker's `PortOpt.Set` does: the long
/// form when the value has a `word=word` pair, else the short form.
/// Defaults are spelled out (`tcp`, `ingress`), as docker sends them.
pub(super) fn parse_publish(value: &str) -> Result<PortConfig, String> {
    if is_long_syntax(value) {
        parse_long(value)
    } else {
        parse_short(value)
    }
}

/// `strconv.ParseUint(text, 10, 16)`'s errors, in Go's words.
fn parse_port_number(text: &str) -> Result<u16, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "strconv.ParseUint: parsing {text:?}: invalid syntax"
        ));
    }
    text.parse::<u16>()
        .map_err(|_| format!("strconv.ParseUint: parsing {text:?}: value out of range"))
}

fn parse_long(value: &str) -> Result<PortConfig, String> {
    let mut port = PortConfig::default();
    for field in value.split(',') {
        let lower = field.to_lowercase();
        let (key, val) = match lower.split_once('=') {
            Some((key, val)) if !key.is_empty() => (key.to_owned(), val.to_owned()),
            _ => return Err(format!("invalid field: {field}")),
        };
        match key.as_str() {
            "protocol" => {
                if !["tcp", "udp", "sctp"].contains(&val.as_str()) {
                    return Err(format!("invalid protocol value '{val}'"));
                }
                port.protocol = val;
            }
            "mode" => {
                if val != "ingress" && val != "host" {
                    return Err(format!(
                        "invalid publish mode value ({val}): must be either 'ingress' or 'host'"
                    ));
                }
                port.publish_mode = val;
            }
            "target" => port.target_port = parse_port_number(&val)?,
            "published" => port.published_port = parse_port_number(&val)?,
            _ => return Err(format!("invalid field key: {key}")),
        }
    }
    if port.target_port == 0 {
        return Err("missing mandatory field 'target'".into());
    }
    if port.publish_mode.is_empty() {
        "ingress".clone_into(&mut port.publish_mode);
    }
    if port.protocol.is_empty() {
        "tcp".clone_into(&mut port.protocol);
    }
    Ok(port)
}

/// `[[ip:]published:]target[/protocol]`, as docker's `nat.ParsePortSpec`
/// reads it; a host IP is refused (docker: "hostip is not supported"),
/// and so are port ranges, which shoal's CLI does not expand.
fn parse_short(value: &str) -> Result<PortConfig, String> {
    let (spec, protocol) = match value.rsplit_once('/') {
        Some((spec, protocol)) => (spec, protocol.to_lowercase()),
        None => (value, "tcp".to_owned()),
    };
    if !["tcp", "udp", "sctp"].contains(&protocol.as_str()) {
        return Err(format!("invalid proto: {protocol}"));
    }
    let parts: Vec<&str> = spec.split(':').collect();
    let (host_ip, published, target) = match parts.as_slice() {
        [target] => ("", "", *target),
        [published, target] => ("", *published, *target),
        [ip, published, target] => (*ip, *published, *target),
        _ => return Err(format!("invalid port format for --publish: {value}")),
    };
    if target.is_empty() {
        return Err(format!("no port specified: {value}<empty>"));
    }
    if target.contains('-') || published.contains('-') {
        return Err(format!(
            "port ranges are not supported: publish each port of {value} with its own --publish"
        ));
    }
    let target_port = target
        .parse::<u16>()
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| format!("invalid containerPort: {target}"))?;
    let published_port = if published.is_empty() {
        0
    } else {
        published
            .parse::<u16>()
            .map_err(|_| format!("invalid hostPort: {published}"))?
    };
    if !host_ip.is_empty() {
        return Err("hostip is not supported".into());
    }
    Ok(PortConfig {
        protocol,
        target_port,
        published_port,
        publish_mode: "ingress".into(),
        ..PortConfig::default()
    })
}

/// `published:target/protocol/mode`, docker's key (`portConfigToString`)
/// for deduplicating and sorting a spec's ports.
fn port_key(port: &PortConfig) -> String {
    format!(
        "{}:{}/{}/{}",
        port.published_port, port.target_port, port.protocol, port.publish_mode
    )
}

/// Docker's `updatePorts`: the spec's ports (duplicates dropped) minus
/// those `rm` names by target, protocol and mode (an empty protocol is
/// `tcp`, an empty mode `ingress`), plus `add`'s not already there;
/// sorted by [`port_key`] as text.
pub(super) fn edit_ports(
    ports: &[PortConfig],
    rm: &[PortConfig],
    add: &[PortConfig],
) -> Vec<PortConfig> {
    let mut seen = std::collections::BTreeSet::new();
    let current: Vec<&PortConfig> = ports.iter().filter(|p| seen.insert(port_key(p))).collect();
    let mut kept: Vec<PortConfig> = current
        .into_iter()
        .filter(|port| {
            !rm.iter().any(|r| {
                port.protocol() == r.protocol()
                    && port.target_port == r.target_port
                    && port.publish_mode() == r.publish_mode()
            })
        })
        .cloned()
        .collect();
    for port in add {
        if !seen.contains(&port_key(port)) {
            kept.push(port.clone());
        }
    }
    kept.sort_by_key(port_key);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(published: u16, target: u16, protocol: &str, mode: &str) -> PortConfig {
        PortConfig {
            protocol: protocol.to_owned(),
            target_port: target,
            published_port: published,
            publish_mode: mode.to_owned(),
            ..PortConfig::default()
        }
    }

    #[test]
    fn short_forms() {
        assert_eq!(
            parse_publish("8080:80"),
            Ok(port(8080, 80, "tcp", "ingress"))
        );
        assert_eq!(
            parse_publish("8080:80/UDP"),
            Ok(port(8080, 80, "udp", "ingress"))
        );
        assert_eq!(parse_publish("80"), Ok(port(0, 80, "tcp", "ingress")));
        assert_eq!(parse_publish(":80"), Ok(port(0, 80, "tcp", "ingress")));
        assert_eq!(
            parse_publish("1.2.3.4:8080:80"),
            Err("hostip is not supported".into())
        );
        assert!(parse_publish("8080:80/icmp").is_err());
        assert!(parse_publish("8080-8081:80-81").is_err());
        assert!(parse_publish("x:80").is_err());
        assert!(parse_publish("8080:").is_err());
    }

    #[test]
    fn long_form() {
        assert_eq!(
            parse_publish("published=8080,target=80"),
            Ok(port(8080, 80, "tcp", "ingress"))
        );
        assert_eq!(
            parse_publish("target=53,published=5353,protocol=udp,mode=host"),
            Ok(port(5353, 53, "udp", "host"))
        );
        assert_eq!(
            parse_publish("target=80"),
            Ok(port(0, 80, "tcp", "ingress"))
        );
        assert_eq!(
            parse_publish("published=8080"),
            Err("missing mandatory field 'target'".into())
        );
        assert_eq!(
            parse_publish("target=80,mode=bridge"),
            Err("invalid publish mode value (bridge): must be either 'ingress' or 'host'".into())
        );
        assert_eq!(
            parse_publish("target=80,protocol=icmp"),
            Err("invalid protocol value 'icmp'".into())
        );
        assert_eq!(
            parse_publish("target=80,color=red"),
            Err("invalid field key: color".into())
        );
        assert_eq!(
            parse_publish("target=http"),
            Err("strconv.ParseUint: parsing \"http\": invalid syntax".into())
        );
    }

    #[test]
    fn json_is_dockers() {
        let port = parse_publish("8080:80").expect("valid");
        assert_eq!(
            serde_json::to_string(&port).expect("json"),
            r#"{"Protocol":"tcp","TargetPort":80,"PublishedPort":8080,"PublishMode":"ingress"}"#
        );
        let auto = parse_publish("80").expect("valid");
        assert_eq!(
            serde_json::to_string(&auto).expect("json"),
            r#"{"Protocol":"tcp","TargetPort":80,"PublishMode":"ingress"}"#
        );
    }

    #[test]
    fn update_removes_by_target_and_adds_sorted() {
        let current = [
            port(0, 80, "tcp", "ingress"),
            port(8080, 81, "", ""),
            port(9000, 53, "udp", "ingress"),
        ];
        // `--publish-rm 81` matches the port whose protocol and mode are
        // empty; `--publish-add 7000:70` comes in docker's text order.
        let edited = edit_ports(
            &current,
            &[port(0, 81, "tcp", "ingress")],
            &[
                port(7000, 70, "tcp", "ingress"),
                port(0, 80, "tcp", "ingress"),
            ],
        );
        assert_eq!(
            edited,
            [
                port(0, 80, "tcp", "ingress"),
                port(7000, 70, "tcp", "ingress"),
                port(9000, 53, "udp", "ingress"),
            ]
        );
    }
}
