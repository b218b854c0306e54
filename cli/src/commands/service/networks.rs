//! The networks of `shoal service create --network` and `service update
//! --network-add|--network-rm`: docker's `--network` syntax
//! ([`parse_attachment`]) and the resolution of network names to IDs, as
//! docker's CLI resolves them ([`network_id`], [`resolve_attachments`]).

use shoal_api::{Client, docker::Network, network::NetworkAttachmentConfig};

use crate::{docker_error::DockerError, flag_values::is_long_syntax};

/// A `--network` (or `--network-add`) value as docker's `NetworkOpt` reads
/// it: a network name or ID, or the long form, comma-separated
/// `name=NETWORK` and `alias=ALIAS` fields (CSV, so a field may be quoted).
pub(super) fn parse_attachment(value: &str) -> Result<NetworkAttachmentConfig, String> {
    if !is_long_syntax(value) {
        return Ok(NetworkAttachmentConfig {
            target: value.to_owned(),
            aliases: Vec::new(),
        });
    }
    let mut attachment = NetworkAttachmentConfig::default();
    for field in csv_fields(value)? {
        let Some((key, field_value)) = field.split_once('=').filter(|(key, _)| !key.is_empty())
        else {
            return Err(format!("invalid field {field}"));
        };
        let field_value = field_value.trim().to_owned();
        match key.trim() {
            "name" => attachment.target = field_value,
            "alias" => attachment.aliases.push(field_value),
            key @ ("driver-opt" | "ip" | "ip6") => {
                return Err(format!(
                    "network field {key} is not supported by shoal (name and alias are)"
                ));
            }
            key => return Err(format!("invalid field key {key}")),
        }
    }
    if attachment.target.is_empty() {
        return Err("network name/id is not specified".into());
    }
    Ok(attachment)
}

/// The fields of one CSV record, as Go's `encoding/csv` reads them:
/// comma-separated; a field that starts with a double quote ends at the
/// next lone one and may hold commas, `""` standing for a quote.
fn csv_fields(value: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => {
                        return Err(format!("extraneous or missing \" in quoted-field: {value}"));
                    }
                }
            }
            if chars.peek().is_some_and(|c| *c != ',') {
                return Err(format!("extraneous or missing \" in quoted-field: {value}"));
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',') {
                if c == '"' {
                    return Err(format!("bare \" in non-quoted-field: {value}"));
                }
                field.push(c);
            }
        }
        fields.push(field);
        if chars.next().is_none() {
            return Ok(fields);
        }
    }
}

/// The ID of a network given by name, ID or ID prefix, as docker's CLI
/// resolves `--network` values (`GET /networks/{name}`).
pub(super) async fn network_id(client: &Client, network: &str) -> Result<String, DockerError> {
    let found: Network = client.get_json(&format!("/networks/{network}")).await?;
    Ok(found.id)
}

/// Resolves the targets of service attachments to network IDs and sorts
/// them by ID, as docker's `service create` does.
pub(super) async fn resolve_attachments(
    client: &Client,
    attachments: &mut [NetworkAttachmentConfig],
) -> Result<(), DockerError> {
    for attachment in attachments.iter_mut() {
        attachment.target = network_id(client, &attachment.target).await?;
    }
    attachments.sort_by(|a, b| a.target.cmp(&b.target));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_flags_short_and_long() {
        let attachment = |target: &str, aliases: &[&str]| NetworkAttachmentConfig {
            target: target.into(),
            aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
        };
        assert_eq!(parse_attachment("front"), Ok(attachment("front", &[])));
        assert_eq!(
            parse_attachment("name=back,alias=be,alias=b2"),
            Ok(attachment("back", &["be", "b2"]))
        );
        assert_eq!(
            parse_attachment(r#""alias=a,b", name = back "#),
            Ok(attachment("back", &["a,b"]))
        );
        assert_eq!(
            parse_attachment(r#"name=x,"alias=say ""hi""""#),
            Ok(attachment("x", &["say \"hi\""]))
        );
        assert_eq!(
            parse_attachment("name=,alias=x"),
            Err("network name/id is not specified".into())
        );
        assert_eq!(
            parse_attachment("alias=x"),
            Err("network name/id is not specified".into())
        );
        assert_eq!(
            parse_attachment("name=a,foo=x"),
            Err("invalid field key foo".into())
        );
        assert_eq!(
            parse_attachment("name=a,oops"),
            Err("invalid field oops".into())
        );
        assert!(
            parse_attachment("name=a,driver-opt=x=y")
                .expect_err("refused")
                .contains("not supported")
        );
        assert!(parse_attachment(r#"name=a"b"#).is_err());
        assert_eq!(
            parse_attachment(r#"name="a"#).map(|a| a.target),
            Ok(r#"name="a"#.to_owned()),
            "no word after =: a name, as docker reads it"
        );
        assert!(parse_attachment(r#""name=a"x"#).is_err());
        assert!(parse_attachment(r#""name=a"#).is_err());
    }
}
