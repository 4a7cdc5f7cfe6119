//! Plumbline's export stage: per-reading measurements, per-patient wide tables, cohort
//! statistics and QC, each built in memory as sorted CSV and written atomically (a
//! temporary file in the output folder, then a rename), so a reader never sees half a
//! table and an interrupted run leaves the previous file intact.

pub mod analyses;
pub mod parquet;
pub mod plausibility;
pub mod results_sr;
pub mod shard;
pub mod stats;
pub mod tables;

use std::io::Write;
use std::path::{Path, PathBuf};

/// Writing an output file failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {source}; check that the output folder is writable and has free space", path.display())]
pub struct WriteError {
    /// The file.
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: std::io::Error,
}

/// A file-name-safe form of a reader's name: letters, digits, `^`, `.`, `-` kept, others
/// `_`; `none` when empty.
///
/// ```
/// assert_eq!(plumbline_export::file_safe("Reader A/1"), "Reader_A_1");
/// assert_eq!(plumbline_export::file_safe(""), "none");
/// ```
pub fn file_safe(s: &str) -> String {
    if s.is_empty() {
        return "none".into();
    }
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "^.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Whether [`write_atomic_as`] waits for the disk before the rename.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Flushed to disk first: tables, report, QC and run.json.
    Flushed,
    /// Left to the operating system's cache: the overlay PNGs, thousands of small files
    /// that a rerun redraws, written without a flush as before they went through here.
    /// Readers still never see half a file.
    Cached,
}

/// Writes `bytes` to `dir/name` atomically: `.{file name}.tmp` beside it, flushed to disk,
/// renamed. `name` may hold folders (`overlays/P1/preop__lateral.png`); they are created.
/// Every output of a run goes through here or [`write_atomic_as`].
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, WriteError> {
    write_atomic_as(dir, name, bytes, Durability::Flushed)
}

/// [`write_atomic`], with the flush to disk chosen by `durability`.
pub fn write_atomic_as(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    durability: Durability,
) -> Result<PathBuf, WriteError> {
    let path = dir.join(name);
    let parent = path.parent().unwrap_or(dir);
    let file_name = path
        .file_name()
        .map_or_else(|| name.to_string(), |n| n.to_string_lossy().into_owned());
    let tmp = parent.join(format!(".{file_name}.tmp"));
    let err = |source| WriteError {
        path: path.clone(),
        source,
    };
    if parent != dir {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    if durability == Durability::Flushed {
        f.sync_all().map_err(err)?;
    }
    drop(f);
    std::fs::rename(&tmp, &path).map_err(err)?;
    Ok(path)
}
