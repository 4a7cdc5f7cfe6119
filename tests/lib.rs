//! End-to-end tests of Plumbline live in this package's test targets; this library only
//! locates the repository root for them.

use std::path::PathBuf;

/// The repository root (the folder holding the workspace `Cargo.toml`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the repository root")
        .to_path_buf()
}
