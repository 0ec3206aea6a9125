#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kvserver::fuzzing::session_end_to_end(data));
