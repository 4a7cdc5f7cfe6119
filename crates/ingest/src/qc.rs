//! Quality-control records: every problem found in the input, one row of `qc.csv`
//! (`path,sop_instance_uid,patient_id,severity,code,message`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How bad a problem is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Data was lost: a file, a view or a landmark could not be used.
    Error,
    /// Data was used, but something is doubtful (a conflict, a guess).
    Warning,
    /// Noted for completeness (an ignored non-image DICOM file, say).
    Info,
}

impl Severity {
    /// `error`, `warning` or `info`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// One problem.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct QcIssue {
    /// The file concerned (empty for problems of the clinical table's rows, which use
    /// the table's path).
    pub path: PathBuf,
    /// SOP Instance UID of the object concerned, when known.
    pub sop_instance_uid: String,
    /// PatientID, when known.
    pub patient_id: String,
    /// Severity.
    pub severity: Severity,
    /// A stable machine-readable code, one of the constants in [`codes`].
    pub code: &'static str,
    /// What is wrong and what to do about it, for a person.
    pub message: String,
}

impl QcIssue {
    /// A problem of a file with no known UID or patient yet.
    pub fn file(path: &Path, severity: Severity, code: &'static str, message: String) -> QcIssue {
        QcIssue {
            path: path.to_path_buf(),
            sop_instance_uid: String::new(),
            patient_id: String::new(),
            severity,
            code,
            message,
        }
    }

    /// Sets the SOP Instance UID and PatientID.
    pub fn with_ids(mut self, sop_instance_uid: &str, patient_id: &str) -> QcIssue {
        self.sop_instance_uid = sop_instance_uid.to_string();
        self.patient_id = patient_id.to_string();
        self
    }
}

/// A [`QcIssue`] as read back (from a work record, say), before its code is checked to be
/// one of [`codes::ALL`].
#[derive(Deserialize)]
struct StoredIssue {
    path: PathBuf,
    sop_instance_uid: String,
    patient_id: String,
    severity: Severity,
    code: String,
    message: String,
}

impl<'de> Deserialize<'de> for QcIssue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<QcIssue, D::Error> {
        let s = StoredIssue::deserialize(d)?;
        Ok(QcIssue {
            code: codes::known(&s.code)
                .ok_or_else(|| serde::de::Error::custom(format!("unknown QC code `{}`", s.code)))?,
            path: s.path,
            sop_instance_uid: s.sop_instance_uid,
            patient_id: s.patient_id,
            severity: s.severity,
            message: s.message,
        })
    }
}

/// The QC codes. Each names one kind of problem; `qc.csv` users filter on them.
pub mod codes {
    /// Not a DICOM file (and not a landmark JSON/CSV): listed, ignored.
    pub const NOT_DICOM: &str = "not_dicom";
    /// A DICOM file that could not be parsed (truncated, corrupt).
    pub const BROKEN_FILE: &str = "broken_file";
    /// A DICOM file not parsed because its structure exceeds a resource limit of the
    /// check run before parsing (nesting depth, element count, value size): a crafted or
    /// pathological file that could otherwise exhaust the stack or memory.
    pub const HOSTILE_STRUCTURE: &str = "hostile_structure";
    /// A DICOM object that is neither a supported image nor a landmark SR.
    pub const OTHER_DICOM: &str = "other_dicom";
    /// A required attribute is missing (SOP Instance UID, PatientID, ...).
    pub const MISSING_ATTRIBUTE: &str = "missing_attribute";
    /// The same SOP Instance UID in two files.
    pub const DUPLICATE_SOP_INSTANCE: &str = "duplicate_sop_instance";
    /// No usable pixel spacing (absent, zero, negative or unparsable).
    pub const NO_SPACING: &str = "no_spacing";
    /// A spacing attribute is present but unusable (a fallback was used).
    pub const BAD_SPACING: &str = "bad_spacing";
    /// PatientOrientation absent or unusable: direction inferred or unknown.
    pub const NO_ORIENTATION: &str = "no_orientation";
    /// A multi-frame image (landmarks refer to one frame).
    pub const MULTI_FRAME: &str = "multi_frame";
    /// The SR content tree is deeper than the cap; the deeper part was not read.
    pub const SR_TOO_DEEP: &str = "sr_too_deep";
    /// A SCOORD3D point: 3-D coordinates are not supported.
    pub const SCOORD3D: &str = "scoord3d_unsupported";
    /// A SCOORD whose graphic type is not POINT.
    pub const UNSUPPORTED_GRAPHIC: &str = "unsupported_graphic_type";
    /// A point with no usable landmark name.
    pub const UNNAMED_POINT: &str = "unnamed_point";
    /// A point whose image could not be determined.
    pub const NO_IMAGE_REFERENCE: &str = "no_image_reference";
    /// A malformed content item (missing GraphicData, wrong value count, ...).
    pub const BAD_CONTENT_ITEM: &str = "bad_content_item";
    /// A point referencing an image that is not in the tree.
    pub const IMAGE_NOT_FOUND: &str = "image_not_found";
    /// A point outside the image's pixel bounds.
    pub const POINT_OUT_OF_BOUNDS: &str = "point_out_of_bounds";
    /// The same landmark twice for one image and observer: neither is used.
    pub const DUPLICATE_LANDMARK: &str = "duplicate_landmark";
    /// A landmark that belongs on the other view.
    pub const WRONG_VIEW_LANDMARK: &str = "wrong_view_landmark";
    /// The view inferred from landmarks disagrees with ViewPosition.
    pub const VIEW_CONFLICT: &str = "view_conflict";
    /// The view (lateral or AP) could not be told.
    pub const VIEW_UNKNOWN: &str = "view_unknown";
    /// Two images of the same view for one observer and timepoint.
    pub const DUPLICATE_VIEW: &str = "duplicate_view";
    /// A study outside every timepoint window.
    pub const OUTSIDE_WINDOWS: &str = "outside_windows";
    /// A study without date or timepoint.
    pub const NO_STUDY_DATE: &str = "no_study_date";
    /// A patient in the images but not in the clinical table.
    pub const PATIENT_NOT_IN_CLINICAL: &str = "patient_not_in_clinical";
    /// A clinical row with no images.
    pub const CLINICAL_WITHOUT_IMAGES: &str = "clinical_without_images";
    /// A bad row of the clinical table.
    pub const BAD_CLINICAL_ROW: &str = "bad_clinical_row";
    /// A bad row or entry of a landmark CSV or Slicer Markups JSON.
    pub const BAD_LANDMARK_FILE: &str = "bad_landmark_file";
    /// A QC overlay could not be rendered (pixel data undecodable).
    pub const OVERLAY_FAILED: &str = "overlay_failed";
    /// A QC overlay was not rendered because this build lacks the decoder of the image's
    /// transfer syntax; the message names the cargo feature that brings it.
    pub const CODEC_UNAVAILABLE: &str = "codec_unavailable";
    /// A landmark set failed a plausibility check (`landmarks.md` section 7): the
    /// message names the check, the landmarks and their values; metrics are still computed.
    pub const IMPLAUSIBLE_LANDMARKS: &str = "implausible_landmarks";
    /// Several studies fall into one timepoint window: one was chosen.
    pub const AMBIGUOUS_TIMEPOINT: &str = "ambiguous_timepoint";
    /// A DICOMweb search or retrieve failed (after its retries): the patient's, study's
    /// or series' instances named in the message are missing from the run.
    pub const DICOMWEB_FAILED: &str = "dicomweb_failed";
    /// A DICOMweb answer that does not match what was asked (another patient, a date
    /// outside the range, another study or series) was dropped.
    pub const DICOMWEB_BAD_ANSWER: &str = "dicomweb_bad_answer";
    /// A results SR could not be stored with STOW-RS (`--stow`); the file is kept.
    pub const STOW_FAILED: &str = "stow_failed";

    /// The constant equal to `code`, if it is one of [`ALL`].
    pub fn known(code: &str) -> Option<&'static str> {
        ALL.iter().find(|c| **c == code).copied()
    }

    /// Every code above (for reading `qc.csv` back, e.g. when merging shards).
    pub const ALL: &[&str] = &[
        NOT_DICOM,
        BROKEN_FILE,
        HOSTILE_STRUCTURE,
        OTHER_DICOM,
        MISSING_ATTRIBUTE,
        DUPLICATE_SOP_INSTANCE,
        NO_SPACING,
        BAD_SPACING,
        NO_ORIENTATION,
        MULTI_FRAME,
        SR_TOO_DEEP,
        SCOORD3D,
        UNSUPPORTED_GRAPHIC,
        UNNAMED_POINT,
        NO_IMAGE_REFERENCE,
        BAD_CONTENT_ITEM,
        IMAGE_NOT_FOUND,
        POINT_OUT_OF_BOUNDS,
        DUPLICATE_LANDMARK,
        WRONG_VIEW_LANDMARK,
        VIEW_CONFLICT,
        VIEW_UNKNOWN,
        DUPLICATE_VIEW,
        OUTSIDE_WINDOWS,
        NO_STUDY_DATE,
        PATIENT_NOT_IN_CLINICAL,
        CLINICAL_WITHOUT_IMAGES,
        BAD_CLINICAL_ROW,
        BAD_LANDMARK_FILE,
        OVERLAY_FAILED,
        CODEC_UNAVAILABLE,
        IMPLAUSIBLE_LANDMARKS,
        AMBIGUOUS_TIMEPOINT,
        DICOMWEB_FAILED,
        DICOMWEB_BAD_ANSWER,
        STOW_FAILED,
    ];
}
