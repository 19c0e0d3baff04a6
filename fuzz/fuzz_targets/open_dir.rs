//! Arbitrary segment and index files under a real catalog, then `Engine::open` and reads.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn template() -> &'static std::path::Path {
    static TEMPLATE: OnceLock<tempfile::TempDir> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let dir = tempfile::tempdir_in(weir_fuzz::scratch_root()).expect("template directory");
            weir_fuzz::make_template(dir.path());
            dir
        })
        .path()
}

fuzz_target!(|data: &[u8]| {
    weir_fuzz::open_dir_case(data, template());
});
