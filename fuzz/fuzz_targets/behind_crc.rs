//! Mutated frames with their checksums fixed up, so the decoders behind the CRC run: record
//! counts and lengths, zstd payloads, message-log, catalog and checkpoint records, index
//! entries, the recovery scan and the message store's replay.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn template() -> &'static std::path::Path {
    static TEMPLATE: OnceLock<tempfile::TempDir> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let dir = tempfile::tempdir_in(weir_fuzz::behind_crc::scratch_root()).expect("template directory");
            weir_fuzz::behind_crc::make_queue_template(dir.path());
            dir
        })
        .path()
}

fuzz_target!(|data: &[u8]| {
    weir_fuzz::behind_crc::behind_crc_case(data, Some(template()));
});
