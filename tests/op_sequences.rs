//! Random operation sequences (queue send, receive, delete, purge; topic publish into a
//! filtered subscription; stream puts and reads; reopens, maintenance and clock moves) checked
//! against in-memory models. The same decoder and models drive the `ops` fuzz target: see
//! `tests/common/op_models.rs` and `fuzz/README.md`. A failing case prints its bytes; save them
//! to a file under `fuzz/corpus/ops/` and the fuzz target (and `committed_seeds_pass` here)
//! replays it.

#[path = "common/op_models.rs"]
mod op_models;

use std::path::Path;

use proptest::collection::vec;
use proptest::prelude::*;

use op_models::Op;

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_operation_sequences_match_the_models(data in vec(any::<u8>(), 0..400)) {
        let tmp = tempfile::tempdir().expect("tempdir");
        op_models::run(&data, &tmp.path().join("data"));
    }
}

#[test]
fn decode_and_encode_are_inverse() {
    let ops = vec![
        Op::Send { queue: 1, size: 200 },
        Op::Receive { queue: 0, max: 10, vis: 2 },
        Op::Delete { queue: 1, pick: 255 },
        Op::Purge { queue: 0 },
        Op::Publish { attr: 1, size: 3 },
        Op::Put { count: 3, key: 7, size: 9 },
        Op::Read { shard: 1, from: 4, limit: 20 },
        Op::Reopen,
        Op::Advance { step: 4 },
        Op::Maintain,
    ];
    assert_eq!(op_models::decode(&op_models::encode(&ops)), ops);
    assert!(op_models::decode(&[]).is_empty());
    assert_eq!(op_models::decode(&[7; 1000]).len(), op_models::MAX_OPS, "inputs are cut at MAX_OPS operations");
}

#[test]
fn a_scripted_sequence_through_every_operation_matches_the_models() {
    let ops = [
        Op::Send { queue: 0, size: 4 },
        Op::Send { queue: 0, size: 200 },
        Op::Publish { attr: 1, size: 10 },
        Op::Publish { attr: 2, size: 10 },
        Op::Put { count: 3, key: 0, size: 30 },
        Op::Receive { queue: 0, max: 1, vis: 0 },
        Op::Receive { queue: 1, max: 10, vis: 0 },
        Op::Reopen,
        Op::Delete { queue: 1, pick: 0 },
        Op::Delete { queue: 1, pick: 1 },
        Op::Delete { queue: 0, pick: 1 },
        Op::Delete { queue: 0, pick: 254 },
        Op::Advance { step: 2 },
        Op::Receive { queue: 0, max: 10, vis: 2 },
        Op::Read { shard: 0, from: 0, limit: 5 },
        Op::Read { shard: 1, from: 255, limit: 5 },
        Op::Maintain,
        Op::Purge { queue: 0 },
        Op::Advance { step: 4 },
        Op::Send { queue: 1, size: 1 },
        Op::Maintain,
        Op::Reopen,
    ];
    let tmp = tempfile::tempdir().expect("tempdir");
    op_models::run_ops(&ops, &tmp.path().join("data"));
}

#[test]
fn committed_seeds_pass() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/ops");
    // The committed seeds (`*.bin`), not what a local fuzzing run added (named by SHA-1).
    let mut seeds: Vec<_> = std::fs::read_dir(&corpus)
        .expect("fuzz/corpus/ops")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds in {}", corpus.display());
    for seed in seeds {
        let data = std::fs::read(&seed).expect("read seed");
        let tmp = tempfile::tempdir().expect("tempdir");
        op_models::run(&data, &tmp.path().join("data"));
    }
}
