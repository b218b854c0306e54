//! Placement constraints (`--constraint`): their grammar and how a value
//! compares, as swarmkit's `constraint` package has them. Keys are
//! `node.id`, `node.hostname`, `node.role`, `node.platform.os`,
//! `node.platform.arch` and `node.labels.<name>`; operators are `==` and
//! `!=`; values compare ignoring ASCII case. A label the node lacks never
//! equals anything.
//!
//! A leaf: the state machine validates specs with it, and a node reads the
//! attribute a key names (`state::Node::satisfies`) for the scheduler and
//! the orchestrator.

use std::fmt;

/// Which node attribute a constraint reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConstraintKey {
    /// `node.id`.
    Id,
    /// `node.hostname`.
    Hostname,
    /// `node.role`.
    Role,
    /// `node.platform.os`.
    Os,
    /// `node.platform.arch`.
    Arch,
    /// `node.labels.<name>`.
    Label(String),
}

/// One parsed constraint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Constraint {
    /// What it reads.
    pub key: ConstraintKey,
    /// `==` (true) or `!=` (false).
    pub equal: bool,
    /// The value compared with.
    pub value: String,
}

/// Why a constraint does not parse; the message names the constraint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConstraintError(String);

impl fmt::Display for ConstraintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Constraint {
    /// Parses `key==value` or `key!=value` (spaces around the parts allowed).
    pub fn parse(text: &str) -> Result<Self, ConstraintError> {
        let (key, equal, value) = if let Some((k, v)) = text.split_once("!=") {
            (k, false, v)
        } else if let Some((k, v)) = text.split_once("==") {
            (k, true, v)
        } else {
            return Err(ConstraintError(format!(
                "constraint {text:?}: expected one operator from ==, !="
            )));
        };
        let (key, value) = (key.trim(), value.trim());
        if value.is_empty() || value.contains("==") || value.contains("!=") {
            return Err(ConstraintError(format!(
                "constraint {text:?}: expected one operator from ==, != and a value"
            )));
        }
        let key = match key {
            "node.id" => ConstraintKey::Id,
            "node.hostname" => ConstraintKey::Hostname,
            "node.role" => ConstraintKey::Role,
            "node.platform.os" => ConstraintKey::Os,
            "node.platform.arch" => ConstraintKey::Arch,
            other => match other.strip_prefix("node.labels.") {
                Some(label) if !label.is_empty() => ConstraintKey::Label(label.to_owned()),
                _ => {
                    return Err(ConstraintError(format!(
                        "constraint {text:?}: unknown key {key:?}: use node.id, node.hostname, node.role, node.platform.os, node.platform.arch or node.labels.<name>"
                    )));
                }
            },
        };
        if key == ConstraintKey::Role && !["manager", "worker"].contains(&value) {
            return Err(ConstraintError(format!(
                "constraint {text:?}: node.role is manager or worker"
            )));
        }
        Ok(Self {
            key,
            equal,
            value: value.to_owned(),
        })
    }

    /// Whether a node whose attribute [`Self::key`] reads `actual` (`None`:
    /// a label the node lacks) satisfies the constraint.
    #[must_use]
    pub fn accepts(&self, actual: Option<&str>) -> bool {
        let equal = actual.is_some_and(|a| a.eq_ignore_ascii_case(&self.value));
        equal == self.equal
    }
}

/// Parses every constraint of a spec, or the first error.
pub fn parse_all(texts: &[String]) -> Result<Vec<Constraint>, ConstraintError> {
    texts.iter().map(|t| Constraint::parse(t)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keys_and_operators() {
        let c = Constraint::parse(" node.labels.zone == east ").expect("parses");
        assert_eq!(c.key, ConstraintKey::Label("zone".into()));
        assert!(c.equal);
        assert_eq!(c.value, "east");
        let c = Constraint::parse("node.role!=manager").expect("parses");
        assert_eq!((c.key, c.equal), (ConstraintKey::Role, false));
        for bad in [
            "node.role=manager",
            "node.colour==red",
            "node.labels.==x",
            "node.role==",
            "node.role==boss",
            "node.id==a==b",
        ] {
            assert!(Constraint::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn compares_ignoring_case_and_a_missing_label_equals_nothing() {
        let equal = Constraint::parse("node.labels.zone==east").expect("parses");
        let unequal = Constraint::parse("node.labels.zone!=east").expect("parses");
        assert!(equal.accepts(Some("East")));
        assert!(!unequal.accepts(Some("East")));
        assert!(!equal.accepts(None), "a missing label equals nothing");
        assert!(unequal.accepts(None));
    }
}
