//! Plumbline's ingest stage: everything between a folder of files and per-view landmark
//! sets in mm, grouped by patient, timepoint and reader.
//!
//! Files flow one way: [`mod@scan`] classifies every file by content and reads image headers
//! (never pixel data) and landmark documents ([`sr`], [`markups`]); [`mod@group`] joins
//! points to images by SOP Instance UID, decides each image's view and each study's
//! timepoint, and builds `plumbline_geometry::ViewLandmarks` in mm. Every problem
//! becomes a [`QcIssue`]; nothing stops the batch.

pub mod cache;
pub mod clinical;
pub mod cohort;
pub mod dataset;
pub mod dicomweb;
pub mod group;
pub mod markups;
pub mod precheck;
pub mod privacy;
pub mod qc;
pub mod records;
pub mod scan;
pub mod source;
pub mod sr;
pub mod vocab;

pub use cohort::Cohort;
pub use group::{Grouped, ImageFiles, Reading, View, Window, default_windows, group};
pub use qc::{QcIssue, Severity};
pub use records::{ImageRecord, ItkGeometry, LandmarkDoc, Orientation, RawPoint, SpacingSource};
pub use scan::{ScanOptions, ScanResult, scan};
pub use vocab::Vocabulary;
