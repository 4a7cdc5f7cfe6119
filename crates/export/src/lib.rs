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
/// Every output of a run goes through here, [`write_atomic_as`] or [`write_atomic_with`].
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
    write_atomic_with(dir, name, durability, |f| f.write_all(bytes))
}

/// [`write_atomic_as`] for output that is written as it is made rather than held in
/// memory first: `fill` writes the whole file (through a buffer of its own; a table of
/// 5000 patients is 47 MB of CSV). When `fill` fails, the temporary file is removed and
/// the output is left as it was.
pub fn write_atomic_with(
    dir: &Path,
    name: &str,
    durability: Durability,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
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
    let written = fill(&mut f);
    if let Err(e) = written {
        drop(f);
        let _ = std::fs::remove_file(&tmp); // our own temporary file, never the output
        return Err(err(e));
    }
    if durability == Durability::Flushed {
        f.sync_all().map_err(err)?;
    }
    drop(f);
    std::fs::rename(&tmp, &path).map_err(err)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_written_as_made_equals_the_one_made_in_memory_and_a_failed_write_changes_nothing() {
        let dir = std::env::temp_dir().join(format!("plumbline-write-with-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // 6000 rows: more than one 64 KiB piece of the CSV writer's buffer.
        let rows: Vec<String> = (0..6000).map(|i| format!("P{i:04},\"x\"\n")).collect();
        let table = tables::Table {
            columns: vec![tables::Column {
                name: "patient_id".into(),
                values: tables::Values::Text(rows),
            }],
            rows: 6000,
        };
        let path =
            write_atomic_with(&dir, "t.csv", Durability::Flushed, |f| table.write_csv(f)).unwrap();
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(on_disk, table.csv());
        assert!(on_disk.len() > 64 << 10, "{}", on_disk.len());
        // A fill that fails leaves the file as it was and no temporary file.
        let failed = write_atomic_with(&dir, "t.csv", Durability::Flushed, |f| {
            f.write_all(b"half")?;
            Err(std::io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(failed.path, path);
        assert_eq!(std::fs::read(&path).unwrap(), on_disk);
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["t.csv"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
