//! Not written yet.

use mlua::{Lua, Table};

/// Builds the (still empty) table.
pub fn module(lua: &Lua) -> mlua::Result<Table> {
    lua.create_table()
}
