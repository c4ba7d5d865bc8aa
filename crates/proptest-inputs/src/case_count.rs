//! How many cases each property runs: few by default, so `cargo test` stays quick on CI, and
//! `PROPTEST_CASES` when it is set, for long runs:
//! `PROPTEST_CASES=100000 cargo test -p ui-connector --lib properties`.
//!
//! proptest reads `PROPTEST_CASES` into `ProptestConfig::default()`, but `with_cases` overrides
//! it; hence this function rather than `with_cases`.

use proptest::test_runner::Config as ProptestConfig;

/// Cases per property when `PROPTEST_CASES` is unset (proptest's own default is 256).
pub const DEFAULT_CASES: u32 = 256;

/// proptest's configuration (failure persistence in `proptest-regressions/`, the other
/// `PROPTEST_*` variables) with [`DEFAULT_CASES`] unless `PROPTEST_CASES` says otherwise.
pub fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.trim().parse().ok())
        .unwrap_or(DEFAULT_CASES);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}
