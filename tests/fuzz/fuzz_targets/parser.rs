#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kvserver::fuzzing::parser_framing(data));
