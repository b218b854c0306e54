//! `shoal service rm`, as `docker service rm`: removes each service given,
//! printing it, the daemon's errors after.

use shoal_api::Client;

use crate::docker_error::DockerError;

/// Runs `shoal service rm`.
pub(super) async fn rm(client: &Client, services: &[String]) -> Result<(), DockerError> {
    let mut errors = Vec::new();
    for service in services {
        match client.delete(&format!("/services/{service}")).await {
            Ok(_) => println!("{service}"),
            Err(error) => errors.push(DockerError::from(error).0),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(DockerError(errors.join("\n")))
    }
}
