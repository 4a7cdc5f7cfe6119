//! The scan reads whatever a [`Source`] lists and opens: a source other than a folder (here
//! one that lists a single patient's files and cannot open one of them) gives the same
//! records for what it lists, and an entry it cannot open is a QC error, not a stop.

use std::path::{Path, PathBuf};

use plumbline_ingest::qc::codes;
use plumbline_ingest::scan::{ScanError, list_files, scan_file, scan_with};
use plumbline_ingest::source::{Folder, Source};
use plumbline_ingest::{QcIssue, ScanOptions, Severity};

fn cohort() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/cohort-small/dicom")
}

/// The files of one patient folder; `refused` cannot be opened.
struct OnePatient {
    files: Vec<PathBuf>,
    refused: PathBuf,
}

impl Source for OnePatient {
    fn name(&self) -> String {
        "one patient".into()
    }
    fn list(&self) -> Result<(Vec<PathBuf>, Vec<QcIssue>), ScanError> {
        Ok((self.files.clone(), Vec::new()))
    }
    fn open(&self, entry: &Path) -> std::io::Result<PathBuf> {
        if entry == self.refused {
            return Err(std::io::Error::other("the server answered 404"));
        }
        Ok(entry.to_path_buf())
    }
}

#[test]
fn any_source_is_scanned_and_an_entry_it_cannot_open_is_qc() {
    let (files, _) = list_files(&cohort().join("P0001")).unwrap();
    assert_eq!(files.len(), 16);
    let refused = files
        .iter()
        .find(|f| f.ends_with("20210607_postop/XR_AP.dcm"))
        .unwrap()
        .clone();
    let source = OnePatient {
        files: files.clone(),
        refused: refused.clone(),
    };
    let opts = ScanOptions::default();
    let got = scan_with(&source, &opts, &scan_file, &|_| {}).unwrap();
    // Scanned as the folder scan reads the same files, less the one refused.
    let folder = scan_with(
        &Folder::new(cohort().join("P0001")),
        &opts,
        &scan_file,
        &|_| {},
    )
    .unwrap();
    assert_eq!(got.counts.files, 16);
    assert_eq!(got.counts.images + 1, folder.counts.images);
    assert_eq!(got.counts.broken, 1);
    assert_eq!(got.docs, folder.docs);
    let folder_images: Vec<_> = folder.images.iter().filter(|i| i.path != refused).collect();
    assert_eq!(got.images.iter().collect::<Vec<_>>(), folder_images);
    let broken: Vec<&QcIssue> = got
        .issues
        .iter()
        .filter(|i| i.code == codes::BROKEN_FILE)
        .collect();
    assert_eq!(broken.len(), 1, "{broken:?}");
    assert_eq!(broken[0].path, refused);
    assert_eq!(broken[0].severity, Severity::Error);
    assert_eq!(broken[0].message, "cannot open: the server answered 404");
    assert_eq!(source.name(), "one patient");
    assert_eq!(Folder::new(cohort()).name(), cohort().display().to_string());
}
