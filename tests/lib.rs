//! End-to-end tests of Plumbline live in this package's test targets; this library
//! locates the repository root for them, knows the outside tools some of them check
//! Plumbline against (`tools.rs`), and hashes a run's outputs as the golden manifests
//! record them ([`manifests`]; also used by the `plumbline` package's resume tests), and
//! runs a real Orthanc for the DICOMweb tests ([`orthanc_server`]).
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

use std::path::{Path, PathBuf};

include!("tools.rs");

pub mod manifests;
pub mod orthanc_server;

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

/// A CSV table: its header and its rows, as text.
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|x| x.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

/// Copies the folder `from` into `to` (created), recursively.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}
