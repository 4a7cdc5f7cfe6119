//! Where a run's files come from. A [`Source`] lists its entries and opens one as a local
//! file for the scan; [`Folder`], a tree of files, is today's only source (a DICOMweb
//! server is meant to be the second: listing by QIDO-RS, opening by WADO-RS into a cache).

use std::path::{Path, PathBuf};

use crate::QcIssue;
use crate::scan::{ScanError, list_files};

/// A source of DICOM and landmark files.
pub trait Source: Sync {
    /// How `run.json` and the report name the source (a folder's path as given).
    fn name(&self) -> String;
    /// Every entry, sorted, with a QC issue for each part that could not be listed; an
    /// error when the source itself cannot be read. An entry is named by a path: for a
    /// folder the file itself.
    fn list(&self) -> Result<(Vec<PathBuf>, Vec<QcIssue>), ScanError>;
    /// A local file holding the entry's bytes (a folder's entry is that file already).
    fn open(&self, entry: &Path) -> std::io::Result<PathBuf>;
    /// About how many bytes reading the entry costs, when known without reading it (0
    /// when not): the scan starts with the biggest entries so that no thread is left
    /// alone with a big one at the end.
    fn size_hint(&self, _entry: &Path) -> u64 {
        0
    }
}

/// A folder of files, read at any depth and never written to.
#[derive(Clone, Debug)]
pub struct Folder {
    root: PathBuf,
}

impl Folder {
    /// The folder (or single file) `root`.
    pub fn new(root: impl Into<PathBuf>) -> Folder {
        Folder { root: root.into() }
    }

    /// The folder as given.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Source for Folder {
    fn name(&self) -> String {
        self.root.display().to_string()
    }

    /// Every file below the folder ([`list_files`]).
    fn list(&self) -> Result<(Vec<PathBuf>, Vec<QcIssue>), ScanError> {
        list_files(&self.root)
    }

    fn open(&self, entry: &Path) -> std::io::Result<PathBuf> {
        Ok(entry.to_path_buf())
    }

    /// The file's length.
    fn size_hint(&self, entry: &Path) -> u64 {
        std::fs::metadata(entry).map_or(0, |m| m.len())
    }
}
