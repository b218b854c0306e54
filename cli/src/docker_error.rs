//! Errors worded as docker's CLI prints them: the daemon's refusals as
//! `Error response from daemon: <message>`, the client's own as docker
//! phrases them, printed without shoal's `Error: ` prefix; and which of the
//! client's errors is the daemon's "not found" ([`is_not_found`]).

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

/// Whether the daemon answered 404 (no such object).
pub fn is_not_found(error: &ClientError) -> bool {
    matches!(error, ClientError::Status { status, .. } if status.as_u16() == 404)
}
