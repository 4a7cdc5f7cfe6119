//! Where a run's files come from. A [`Source`] lists its entries and opens one as a local
//! file for the scan: [`Folder`], a tree of files, and [`dicomweb::DicomWeb`], a DICOMweb
//! server (listing by QIDO-RS, opening by WADO-RS into a cache in the output folder).

use std::path::{Path, PathBuf};

use crate::QcIssue;
use crate::scan::{ScanError, list_files};

pub mod dicomweb;

/// A local file holding an image with its pixel data, for the overlay stage: the file
/// itself, or a temporary copy fetched for the drawing and removed on drop.
#[derive(Debug)]
pub enum LocalFile {
    /// A file of the source (never removed).
    Kept(PathBuf),
    /// A temporary file, removed when dropped.
    Temporary(PathBuf),
}

impl LocalFile {
    /// Where the file is.
    pub fn path(&self) -> &Path {
        match self {
            LocalFile::Kept(p) | LocalFile::Temporary(p) => p,
        }
    }
}

impl Drop for LocalFile {
    fn drop(&mut self) {
        if let LocalFile::Temporary(p) = self {
            let _ = std::fs::remove_file(p);
        }
    }
}

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
    /// The image at `file` (a path [`Source::open`] gave) with its pixel data, for the
    /// overlay stage; a folder's file is that already.
    fn with_pixels(&self, file: &Path) -> std::io::Result<LocalFile> {
        Ok(LocalFile::Kept(file.to_path_buf()))
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
