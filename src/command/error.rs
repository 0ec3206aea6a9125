//! Command-level errors. Each variant's `Display` is the exact Redis 7
//! error line (without the leading `-`), because clients match on them.
//! A command error is answered and the connection stays usable.

use std::fmt;

/// Why a command was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandError {
    /// `name` and up to a few of its arguments, already lossily decoded.
    UnknownCommand {
        name: String,
        args: String,
    },
    UnknownSubcommand {
        sub: String,
        command: String,
    },
    WrongArity(&'static str),
    Syntax,
    NotInteger,
    NotFloat,
    Overflow,
    /// `DECRBY key -9223372036854775808`: the decrement itself cannot be negated.
    DecrementOverflow,
    NanOrInfinity,
    InvalidExpire(&'static str),
    StringTooLong,
    OffsetOutOfRange,
    NoSuchKey,
    NoAuth,
    WrongPass,
    NoPasswordSet,
    DbIndexOutOfRange,
    InvalidCursor,
    NoProto,
    /// The key holds a value of another type.
    WrongType,
    /// The WAL is still being replayed (Redis's `-LOADING`).
    Loading,
    /// MOVE to the database the key is already in.
    SameObject,
    /// Over `maxmemory` and nothing could be evicted.
    OutOfMemory,
    /// Any other message, already in `CODE message` form.
    Other(String),
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use CommandError::*;
        match self {
            UnknownCommand { name, args } => {
                write!(f, "ERR unknown command '{name}', with args beginning with: {args}")
            }
            UnknownSubcommand { sub, command } => write!(
                f,
                "ERR unknown subcommand '{sub}'. Try {command} HELP."
            ),
            WrongArity(name) => write!(f, "ERR wrong number of arguments for '{name}' command"),
            Syntax => f.write_str("ERR syntax error"),
            NotInteger => f.write_str("ERR value is not an integer or out of range"),
            NotFloat => f.write_str("ERR value is not a valid float"),
            Overflow => f.write_str("ERR increment or decrement would overflow"),
            DecrementOverflow => f.write_str("ERR decrement would overflow"),
            NanOrInfinity => f.write_str("ERR increment would produce NaN or Infinity"),
            InvalidExpire(name) => write!(f, "ERR invalid expire time in '{name}' command"),
            StringTooLong => {
                f.write_str("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
            }
            OffsetOutOfRange => f.write_str("ERR offset is out of range"),
            NoSuchKey => f.write_str("ERR no such key"),
            NoAuth => f.write_str("NOAUTH Authentication required."),
            WrongPass => f.write_str(
                "WRONGPASS invalid username-password pair or user is disabled.",
            ),
            NoPasswordSet => f.write_str(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
            ),
            DbIndexOutOfRange => f.write_str("ERR DB index is out of range"),
            InvalidCursor => f.write_str("ERR invalid cursor"),
            NoProto => f.write_str("NOPROTO unsupported protocol version"),
            WrongType => {
                f.write_str("WRONGTYPE Operation against a key holding the wrong kind of value")
            }
            Loading => f.write_str("LOADING kvserver is loading the dataset in memory"),
            SameObject => f.write_str("ERR source and destination objects are the same"),
            OutOfMemory => f.write_str("OOM command not allowed when used memory > 'maxmemory'."),
            Other(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for CommandError {}

/// What every handler returns: the reply was written, or this error should be.
pub type CommandResult = Result<(), CommandError>;
