//! What grouping hands on: the readings of a run with the clinical rows and the QC issues
//! found so far.

use crate::clinical::ClinicalTable;
use crate::{QcIssue, Reading};

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
