//! Plumbline's export stage: per-reading measurements, per-patient wide tables, cohort
//! statistics and QC, each built in memory as sorted CSV and written atomically (a
//! temporary file in the output folder, then a rename), so a reader never sees half a
//! table and an interrupted run leaves the previous file intact.

pub mod analyses;
pub mod parquet;
pub mod plausibility;
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

/// Writes `bytes` to `dir/name` atomically: `dir/.name.tmp`, flushed to disk, renamed.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, WriteError> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let err = |source| WriteError {
        path: path.clone(),
        source,
    };
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)?;
    drop(f);
    std::fs::rename(&tmp, &path).map_err(err)?;
    Ok(path)
}
