//! Plain records flowing from files to landmark sets.

use std::path::PathBuf;

use plumbline_geometry::{Landmark, Spacing};
use serde::{Deserialize, Serialize};

use crate::qc::QcIssue;

/// Where a view's mm scale came from (spec section 4), in order of preference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpacingSource {
    /// PixelSpacing (0028,0030), calibrated at the patient.
    PixelSpacing,
    /// ImagerPixelSpacing (0018,1164) / EstimatedRadiographicMagnificationFactor (0018,1114).
    ImagerMagnified,
    /// ImagerPixelSpacing alone (detector plane; not corrected for magnification).
    Imager,
}

impl SpacingSource {
    /// Table value: `pixel_spacing`, `imager_pixel_spacing_magnification`,
    /// `imager_pixel_spacing`.
    pub fn as_str(self) -> &'static str {
        match self {
            SpacingSource::PixelSpacing => "pixel_spacing",
            SpacingSource::ImagerMagnified => "imager_pixel_spacing_magnification",
            SpacingSource::Imager => "imager_pixel_spacing",
        }
    }
}

/// The header facts of one radiograph, read without its pixel data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The file.
    pub path: PathBuf,
    /// SOP Class UID.
    pub sop_class_uid: String,
    /// SOP Instance UID.
    pub sop_instance_uid: String,
    /// Transfer syntax of the file.
    pub transfer_syntax: String,
    /// PatientID (0010,0020).
    pub patient_id: String,
    /// StudyInstanceUID.
    pub study_instance_uid: String,
    /// StudyDate as `YYYYMMDD`, when present and valid.
    pub study_date: Option<String>,
    /// ClinicalTrialTimePointID (0012,0050), when present.
    pub timepoint_id: Option<String>,
    /// Modality.
    pub modality: String,
    /// ViewPosition (0018,5101), when present.
    pub view_position: Option<String>,
    /// Rows.
    pub rows: u32,
    /// Columns.
    pub cols: u32,
    /// Spacing in mm (row, column) and where it came from; `None` when no usable source.
    pub spacing: Option<(Spacing, SpacingSource)>,
    /// The two PatientOrientation values (column direction, row direction), as stored.
    pub orientation: Option<(String, String)>,
    /// NumberOfFrames (1 when absent).
    pub number_of_frames: u32,
}

/// One landmark point as read from an SR, a Slicer Markups JSON or a CSV, before it
/// is joined with its image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RawPoint {
    /// The file it came from.
    pub source: PathBuf,
    /// SOP Instance UID of the SR it came from (empty for JSON/CSV).
    pub source_uid: String,
    /// The canonical landmark.
    pub landmark: Landmark,
    /// SOP Instance UID of the image it lies on.
    pub image_uid: String,
    /// Referenced frame number (1-based), when given.
    pub frame: Option<u32>,
    /// Column in pixels ((0,0) = outer top-left corner of the image).
    pub col: f64,
    /// Row in pixels.
    pub row: f64,
    /// The reader: Person Observer Name as stored, or empty when none is given.
    pub observer: String,
}

/// What a landmark document (SR, JSON or CSV) yields.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LandmarkDoc {
    /// The file.
    pub path: PathBuf,
    /// SOP Instance UID (SR only).
    pub sop_instance_uid: String,
    /// PatientID (SR only).
    pub patient_id: String,
    /// StudyInstanceUID (SR only).
    pub study_instance_uid: String,
    /// Images listed in the SR's evidence (CurrentRequestedProcedureEvidenceSequence and
    /// PertinentOtherEvidenceSequence), SOP Instance UIDs in document order.
    pub evidence: Vec<String>,
    /// The named, located points.
    pub points: Vec<RawPoint>,
    /// Problems found while reading (unnamed points, unsupported graphics, depth cap...).
    pub issues: Vec<QcIssue>,
}
