//! Lua scripting (EVAL and friends): the Lua 5.1 state Redis scripts run in
//! and the libraries Redis exposes to them.

pub mod libs;
