//! Arbitrary bytes as a sequence of engine operations (queues, a topic with a filtered
//! subscription, a stream, reopens, maintenance, clock moves), checked against in-memory models.
//! The decoder and models are `tests/common/op_models.rs`, which the main crate's
//! `op_sequences` proptest runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/common/op_models.rs"]
mod op_models;

fuzz_target!(|data: &[u8]| {
    let tmp = tempfile::tempdir_in(weir_fuzz::scratch_root()).expect("scratch directory");
    op_models::run(data, &tmp.path().join("data"));
});
