//! Unit tests of the WAL (see each test name).
