//! The image reference grammar: `[registry/]path[:tag|@digest]` parsed,
//! checked and normalised as Docker reads it ([`Reference`],
//! [`normalize_reference`]).

use super::ImageError;

/// An image reference, `[registry/]path[:tag|@digest]`, as Docker reads
/// it: the first path component is a registry host when it has a `.` or a
/// `:port`, or is `localhost`; the tag defaults to `latest` unless a digest
/// is given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]`, when given.
    pub registry: Option<String>,
    /// The repository path (`whoami`, `shoal/whoami`).
    pub path: String,
    /// The tag (`latest` by default); unused with a digest.
    pub tag: String,
    /// `sha256:<hex>`, when the reference pins one.
    pub digest: Option<String>,
}

impl Reference {
    /// Parses and checks `reference`.
    pub fn parse(reference: &str) -> Result<Self, ImageError> {
        let invalid = || ImageError::InvalidReference {
            reference: reference.to_owned(),
        };
        let (rest, digest) = match reference.split_once('@') {
            Some((rest, digest)) => {
                let hex = digest.strip_prefix("sha256:").ok_or_else(invalid)?;
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(invalid());
                }
                (rest, Some(digest.to_ascii_lowercase()))
            }
            None => (reference, None),
        };
        let (name, tag) = match rest.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => (name, tag),
            _ => (rest, "latest"),
        };
        let (registry, path) = match name.split_once('/') {
            Some((first, path)) if first.contains(['.', ':']) || first == "localhost" => {
                (Some(first), path)
            }
            _ => (None, name),
        };
        let registry_ok = registry.is_none_or(|registry| {
            let (host, port) = registry.split_once(':').unwrap_or((registry, "1"));
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b))
                && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        let path_ok = !path.is_empty()
            && name.len() <= 255
            && path.split('/').all(|part| {
                !part.is_empty()
                    && part.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
                    })
                    && part
                        .bytes()
                        .next()
                        .is_some_and(|b| b.is_ascii_alphanumeric())
            });
        let tag_ok = !tag.is_empty()
            && tag.len() <= 128
            && tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            && tag
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !(registry_ok && path_ok && tag_ok) {
            return Err(invalid());
        }
        Ok(Self {
            registry: registry.map(str::to_owned),
            path: path.to_owned(),
            tag: tag.to_owned(),
            digest,
        })
    }

    /// `[registry/]path`.
    #[must_use]
    pub fn repository(&self) -> String {
        match &self.registry {
            Some(registry) => format!("{registry}/{}", self.path),
            None => self.path.clone(),
        }
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.digest {
            Some(digest) => write!(f, "{}@{digest}", self.repository()),
            None => write!(f, "{}:{}", self.repository(), self.tag),
        }
    }
}

/// `[registry/]name[:tag]` (or `@sha256:…`) with the tag defaulting to
/// `latest`, as Docker normalises it.
pub fn normalize_reference(reference: &str) -> Result<String, ImageError> {
    Reference::parse(reference).map(|r| r.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_normalise_like_docker() {
        assert_eq!(
            normalize_reference("whoami").ok().as_deref(),
            Some("whoami:latest")
        );
        assert_eq!(
            normalize_reference("shoal/whoami:1.0").ok().as_deref(),
            Some("shoal/whoami:1.0")
        );
        assert_eq!(
            normalize_reference("198.18.0.1:5000/whoami")
                .ok()
                .as_deref(),
            Some("198.18.0.1:5000/whoami:latest")
        );
        assert_eq!(
            normalize_reference("localhost/a/b:v2").ok().as_deref(),
            Some("localhost/a/b:v2")
        );
        let digest = format!("sha256:{}", "ab".repeat(32));
        let pinned = Reference::parse(&format!("Registry.example:443/app@{digest}"))
            .expect("a digest reference");
        assert_eq!(pinned.registry.as_deref(), Some("Registry.example:443"));
        assert_eq!(pinned.path, "app");
        assert_eq!(pinned.digest.as_deref(), Some(digest.as_str()));
        assert_eq!(
            pinned.to_string(),
            format!("Registry.example:443/app@{digest}")
        );
        let plain = Reference::parse("shoal/whoami").expect("no registry");
        assert_eq!(
            (plain.registry, plain.path.as_str()),
            (None, "shoal/whoami")
        );
        assert!(normalize_reference("host:99999/app").is_err());
        assert!(normalize_reference("app@sha256:abc").is_err());
        assert!(normalize_reference("Whoami").is_err());
        assert!(normalize_reference("who ami").is_err());
        assert!(normalize_reference("whoami:").is_err());
        assert!(normalize_reference("").is_err());
    }
}
