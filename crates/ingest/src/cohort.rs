//! What grouping hands on: the readings of a run with the clinical rows and the QC issues
//! found so far.

use sha2::{Digest, Sha256};

use crate::clinical::ClinicalTable;
use crate::{QcIssue, Reading};

/// The shard (0-based, of `n`) a patient belongs to: the first 8 bytes of the SHA-256 of
/// the PatientID, little endian, modulo `n`. Stable across runs, machines and versions.
///
/// ```
/// use plumbline_ingest::cohort::shard_of;
/// assert_eq!(shard_of("P0001", 1), 0);
/// assert!(shard_of("P0001", 4) < 4);
/// ```
pub fn shard_of(patient_id: &str, n: usize) -> usize {
    let h = Sha256::digest(patient_id.as_bytes());
    (u64::from_le_bytes(h[..8].try_into().expect("8 bytes")) % n.max(1) as u64) as usize
}

/// The readings of a run (of its shard) with the clinical table and QC issues that go
/// with them: the record between grouping, pseudonymisation ([`crate::privacy`]) and the
/// measure stage.
#[derive(Clone, Debug)]
pub struct Cohort {
    /// Readings sorted by patient, timepoint (window order), reader.
    pub readings: Vec<Reading>,
    /// The clinical table (its rows of the run's shard).
    pub clinical: ClinicalTable,
    /// QC issues of the clinical table, the scan and grouping.
    pub issues: Vec<QcIssue>,
}
