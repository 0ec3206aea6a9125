//! PLACEHOLDER: being implemented (see issue 17). The interface below is what
//! `types/mod.rs` calls; the real encodings replace this struct.

/// A set value.
#[derive(Debug, Default, Clone)]
pub struct Set {
    len: usize,
}

impl Set {
    /// An empty value.
    pub fn new() -> Set {
        Set::default()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True with no member.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `OBJECT ENCODING`.
    pub fn encoding(&self) -> &'static str {
        "listpack"
    }

    /// Bytes allocated, as malloc rounds them.
    pub fn memory_usage(&self) -> usize {
        0
    }

    /// Payloads (operation `OP_ADD`) of the whole value in chunks.
    pub fn snapshot_chunks(&self, emit: &mut dyn FnMut(&[u8])) {
        emit(&[]);
    }

    /// Applies an effect decoded from `payload`.
    pub fn apply(&mut self, _op: u8, _payload: &[u8]) -> Result<(), &'static str> {
        Err("not implemented")
    }
}
