//! Frames, records, index files, segment headers and the recovery scan on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    weir_fuzz::decode_case(data);
});
