//! One module per `shoal` verb.

pub mod status;
