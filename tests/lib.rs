//! End-to-end tests of Plumbline live in this package's test targets; this library
//! locates the repository root for them and knows the outside tools some of them check
//! Plumbline against (`tools.rs`).
//!
//! A test that needs an outside tool is written
//!
//! ```text
//! #[test]
//! #[cfg_attr(missing_tool = "dciodvfy", ignore = "needs dciodvfy: apt-get install dicom3tools")]
//! fn synth_files_pass_dciodvfy() {
//!     plumbline_e2e::require(&plumbline_e2e::DCIODVFY);
//!     // ...
//! }
//! ```
//!
//! `build.rs` sets `missing_tool` for each tool it cannot find, unless `CI=true`: outside
//! CI such a test shows as `ignored` in `cargo test`'s summary with its install step;
//! under CI it runs, and [`require`] fails it when the tool is missing.

use std::path::PathBuf;

include!("tools.rs");

/// The repository root (the folder holding the workspace `Cargo.toml`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the repository root")
        .to_path_buf()
}

/// Fails the test when `tool` cannot be used (under CI, or when it went away after the
/// build script looked).
pub fn require(tool: &Tool) {
    assert!(
        found(tool),
        "{} is needed by this test and was not found ({}); {}",
        tool.name,
        tool.install,
        if under_ci() {
            "under CI=true no outside check is skipped: .ci/run installs it"
        } else {
            "it was there when this test package was built: rebuild it (touch tests/tools.rs) to have the test ignored"
        }
    );
}
