//! Helpers the unit tests of several verbs share: parsing a verb's flags
//! as clap does on the command line ([`parse_flags`]) and reading a
//! service spec's networks ([`attachments`]).

use clap::{Args, Parser};
use shoal_api::service::ServiceSpec;

/// A command line made of one verb's flags.
#[derive(Debug, Parser)]
struct Flags<A: Args> {
    #[command(flatten)]
    args: A,
}

/// Parses `args` as the flags and arguments of `verb`, or clap's error.
pub fn parse_flags<A: Args>(verb: &str, args: &[&str]) -> Result<A, String> {
    Flags::<A>::try_parse_from(std::iter::once(verb).chain(args.iter().copied()))
        .map(|flags| flags.args)
        .map_err(|e| e.to_string())
}

/// A spec's network attachments as `(target, aliases)` pairs.
pub fn attachments(spec: &ServiceSpec) -> Vec<(&str, &[String])> {
    spec.task_template
        .networks
        .iter()
        .map(|n| (n.target.as_str(), n.aliases.as_slice()))
        .collect()
}
