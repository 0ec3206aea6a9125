//! Integration tests of kvserver: each test starts its own server process on
//! a free loopback port (no WAL, temp dir) and talks to it over TCP, except
//! `proptest_parser` and `fuzz_targets`, which exercise the parser, the
//! session and the WAL record decoder in-process.
//! Every read is bounded by a socket timeout; no test asserts on timing.

mod support;

mod bad_input;
mod blocking;
mod cli;
mod clients;
mod concurrency;
mod databases;
mod expiry;
mod functions;
mod fuzz_targets;
mod hardening;
mod hash;
mod introspection;
mod keyspace_events;
mod limits;
mod list;
mod maxmemory;
mod monitor;
mod pipelining;
mod proptest_parser;
mod pubsub;
mod queues;
mod redis_py;
mod redis_py_scripts;
mod reset;
mod resp;
mod resp3;
mod scripting;
mod scripting_libs;
mod set;
mod start_checks;
mod text;
mod tracking;
mod transactions;
mod twemproxy;
mod zset;
