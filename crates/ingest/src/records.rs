//! Plain records flowing from files to landmark sets.

use std::path::PathBuf;

use plumbline_geometry::{Landmark, PatientDirection, Spacing};
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

    /// The source of a table name ([`SpacingSource::as_str`]).
    pub fn from_name(name: &str) -> Option<SpacingSource> {
        [
            SpacingSource::PixelSpacing,
            SpacingSource::ImagerMagnified,
            SpacingSource::Imager,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
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
    /// StudyDate, when present and a real date.
    pub study_date: Option<chrono::NaiveDate>,
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
    /// PatientOrientation (0020,0020), when it has two values.
    pub orientation: Option<Orientation>,
    /// NumberOfFrames (1 when absent).
    pub number_of_frames: u32,
    /// Where ITK, and so 3D Slicer's DICOM import, puts this image's pixels in patient
    /// space: used only to turn Slicer markups positions (mm) back into pixels.
    pub itk: ItkGeometry,
}

/// PatientOrientation (0020,0020): its two values as stored and the direction each names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Orientation {
    /// The values as stored (trimmed): direction of increasing column, then of increasing
    /// row. QC messages quote them.
    pub stored: (String, String),
    /// The direction of increasing column, when its value is one letter (`A`, `P`, `L`,
    /// `R`, `H`, `F`); `None` for an oblique value such as `AL` or an empty one.
    pub column: Option<PatientDirection>,
    /// The direction of increasing row, likewise.
    pub row: Option<PatientDirection>,
}

impl Orientation {
    /// The orientation of the two stored values.
    ///
    /// ```
    /// use plumbline_geometry::PatientDirection;
    /// use plumbline_ingest::Orientation;
    /// let o = Orientation::new("A", "F");
    /// assert_eq!((o.column, o.row), (Some(PatientDirection::A), Some(PatientDirection::F)));
    /// assert_eq!(Orientation::new("AL", "F").column, None);
    /// assert_eq!(o.text(), "A\\F");
    /// ```
    pub fn new(column: &str, row: &str) -> Orientation {
        Orientation {
            stored: (column.to_string(), row.to_string()),
            column: PatientDirection::parse(column),
            row: PatientDirection::parse(row),
        }
    }

    /// The attribute as DICOM writes it: `column\row`.
    pub fn text(&self) -> String {
        format!("{}\\{}", self.stored.0, self.stored.1)
    }
}

/// The geometry ITK's GDCMImageIO gives a single-frame image (GDCM `ImageHelper`:
/// `GetSpacingValue`, `GetOriginValue`, `GetDirectionCosinesValue`; the research with
/// citations and the SimpleITK check is `fixtures/interop/slicer/README.md`): spacing
/// from ImagerPixelSpacing (0018,1164) for CR, DX, mammography, intra-oral, XA and RF,
/// else PixelSpacing, swapped into (column, row) order, a 0 read as 1, one value used for
/// both axes, absent 1 and 1, magnification never applied; origin ImagePositionPatient,
/// else 0; axes ImageOrientationPatient, else identity. This is not the spacing of the
/// metrics (spec section 4): it only undoes Slicer's millimetres.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ItkGeometry {
    /// mm per column step (ITK x) and per row step (ITK y).
    pub spacing: [f64; 2],
    /// Centre of the first pixel, LPS mm.
    pub origin: [f64; 3],
    /// Unit LPS direction of increasing column, then of increasing row.
    pub axes: [[f64; 3]; 2],
}

impl ItkGeometry {
    /// The pixel position (column, row; SCOORD convention, the first pixel's centre at
    /// (0.5, 0.5)) of an LPS point, and its distance in mm from the image plane.
    ///
    /// ```
    /// use plumbline_ingest::ItkGeometry;
    /// let g = ItkGeometry { spacing: [2.0, 3.0], origin: [0.0; 3], axes: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]] };
    /// assert_eq!(g.to_pixel([9.0, 15.0, 0.0]), (5.0, 5.5, 0.0));
    /// ```
    pub fn to_pixel(&self, p: [f64; 3]) -> (f64, f64, f64) {
        let d = [
            p[0] - self.origin[0],
            p[1] - self.origin[1],
            p[2] - self.origin[2],
        ];
        let dot = |a: [f64; 3], b: [f64; 3]| a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
        let [x, y] = self.axes;
        let n = [
            x[1] * y[2] - x[2] * y[1],
            x[2] * y[0] - x[0] * y[2],
            x[0] * y[1] - x[1] * y[0],
        ];
        (
            dot(d, x) / self.spacing[0] + 0.5,
            dot(d, y) / self.spacing[1] + 0.5,
            dot(d, n),
        )
    }
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
    /// Column in pixels ((0,0) = outer top-left corner of the image); NaN for a Slicer
    /// position in mm until it is joined with its image (see `lps`).
    #[serde(with = "nan_as_null")]
    pub col: f64,
    /// Row in pixels (NaN like `col`).
    #[serde(with = "nan_as_null")]
    pub row: f64,
    /// The reader: Person Observer Name as stored, or empty when none is given.
    pub observer: String,
    /// A 3D Slicer markups position in patient LPS mm, when the point came as one: then
    /// `col` and `row` are NaN until the point is joined with its image, whose
    /// [`ItkGeometry`] turns it into pixels.
    pub lps: Option<[f64; 3]>,
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

/// A coordinate that may be NaN (not yet known) as JSON: NaN as `null` and back, since
/// JSON has no NaN (the work record stores these points).
mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `v`, NaN as `null`.
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_nan() {
            s.serialize_none()
        } else {
            s.serialize_f64(*v)
        }
    }

    /// Reads a number, `null` as NaN.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}
