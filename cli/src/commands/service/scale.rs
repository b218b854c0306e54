//! `shoal service scale`, as `docker service scale`: sets the replicas of
//! each service given, then, unless `--detach`, waits for each to
//! converge.

use shoal_api::{Client, service::ServiceMode};

use super::progress::wait_on_service;
use crate::{daemon::inspect_service, docker_error::DockerError};

/// Runs `shoal service scale`.
pub(super) async fn scale(
    client: &Client,
    detach: bool,
    scales: &[String],
) -> Result<(), DockerError> {
    let mut pairs = Vec::new();
    for arg in scales {
        match arg.split_once('=') {
            Some((service, replicas)) if !service.is_empty() && !replicas.is_empty() => {
                pairs.push((service, replicas));
            }
            _ => {
                return Err(DockerError(format!(
                    "Invalid scale specifier '{arg}'.\nSee 'shoal service scale --help'.\n\nUsage:  shoal service scale SERVICE=REPLICAS [SERVICE=REPLICAS...]\n\nScale one or multiple replicated services"
                )));
            }
        }
    }
    let mut errors = Vec::new();
    let mut updated = Vec::new();
    for (service, replicas) in pairs {
        let Ok(replicas) = replicas.parse::<u64>() else {
            errors.push(format!(
                "{service}: invalid replicas value {replicas}: strconv.ParseUint: parsing \"{replicas}\": invalid syntax"
            ));
            continue;
        };
        match scale_one(client, service, replicas).await {
            Ok(()) => {
                println!("{service} scaled to {replicas}");
                updated.push(service);
            }
            Err(error) => errors.push(format!("{service}: {error}")),
        }
    }
    if !detach {
        for service in updated {
            if let Err(error) = wait_on_service(client, service, false).await {
                errors.push(format!("{service}: {error}"));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(DockerError(errors.join("\n")))
    }
}

async fn scale_one(client: &Client, service: &str, replicas: u64) -> Result<(), DockerError> {
    let current = inspect_service(client, service).await?;
    let mut spec = current.spec;
    match &mut spec.mode {
        ServiceMode::Replicated(r) => r.replicas = Some(replicas),
        ServiceMode::Global(_) => {
            return Err(DockerError(
                "scale can only be used with replicated or replicated-job mode".into(),
            ));
        }
    }
    client
        .post(
            &format!(
                "/services/{}/update?version={}",
                current.id, current.version.index
            ),
            &spec,
        )
        .await?;
    Ok(())
}
