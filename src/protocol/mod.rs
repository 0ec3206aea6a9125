//! The wire: framing of requests ([`parse`]), inline splitting ([`inline`])
//! and reply encoding ([`reply`]). Nothing here knows about the store or
//! about sockets; `command` is the only layer that sees both sides.

pub mod inline;
pub mod parse;
pub mod reply;

pub use parse::{parse_i64, ArgSource, Limits, Parsed, Parser, Protocol, ProtocolError};
pub use reply::{Replies, Style};
