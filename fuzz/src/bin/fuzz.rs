//! The AFL++ harness: one binary, the target named by `MAILLAGE_FUZZ_TARGET`
//! (`scripts/fuzz` sets it). Built with `cargo afl build --features afl`.

fn main() {
    let name = std::env::var("MAILLAGE_FUZZ_TARGET").unwrap_or_default();
    let target = maillage_fuzz::target(&name).unwrap_or_else(|| {
        panic!(
            "MAILLAGE_FUZZ_TARGET='{name}' is not a target: one of {:?}",
            maillage_fuzz::TARGETS
                .iter()
                .map(|(n, _)| n)
                .collect::<Vec<_>>()
        )
    });
    // Without afl's panic hook: a panic the code catches on purpose (a
    // dependency failing on a crafted file, `import::spreadsheet`) is no
    // crash; one it does not catch still aborts, and is one.
    afl::fuzz_nohook!(|data: &[u8]| target(data));
}
