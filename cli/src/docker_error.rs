//! Errors worded as docker's CLI prints them: the daemon's refusals as
//! `Error response from daemon: <message>`, the client's own as docker
//! phrases them, printed without shoal's `Error: ` prefix.

use std::fmt;

use shoal_api::client::ClientError;

/// An error message to print as it is, as docker would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerError(pub String);

impl fmt::Display for DockerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DockerError {}

impl From<ClientError> for DockerError {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::Status { message, .. } => {
                Self(format!("Error response from daemon: {message}"))
            }
            other => Self(other.to_string()),
        }
    }
}

impl From<String> for DockerError {
    fn from(message: String) -> Self {
        Self(message)
    }
}
