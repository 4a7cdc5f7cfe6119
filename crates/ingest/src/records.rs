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

/// Where a landmark point lies, as its file gave it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    /// Column and row in pixels ((0,0) = outer top-left corner of the image) as an SR
    /// stores them: float32 (FL). Widened to f64 exactly when used.
    Pixel32([f32; 2]),
    /// Column and row in pixels as decimal text gives them (a landmark CSV, an SR's FD
    /// GraphicData, Slicer markups in pixels), read as f64.
    Pixel([f64; 2]),
    /// A 3D Slicer markups position in patient LPS mm: turned into pixels when the point
    /// is joined with its image, whose [`ItkGeometry`] places it.
    Lps([f64; 3]),
}

/// One landmark point as read from an SR, a Slicer Markups JSON or a CSV, before it
/// is joined with its image: a few tens of bytes, its image and reader kept once per
/// document ([`LandmarkDoc::images`], [`LandmarkDoc::observers`]) and its file in the
/// document.
// Short field names: the work record holds one of these per point (half a million for 600
// patients), and it is a cache, not an output.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RawPoint {
    /// The canonical landmark.
    #[serde(rename = "l")]
    pub landmark: Landmark,
    /// The image it lies on: an index into [`LandmarkDoc::images`].
    #[serde(rename = "i")]
    pub image: u32,
    /// The reader: an index into [`LandmarkDoc::observers`].
    #[serde(rename = "o")]
    pub observer: u32,
    /// Referenced frame number (1-based), when given.
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<u32>,
    /// Where it lies.
    #[serde(rename = "p")]
    pub at: Position,
}

impl RawPoint {
    /// Column and row in pixels, when the point was given in pixels.
    ///
    /// ```
    /// use plumbline_ingest::records::{Position, RawPoint};
    /// let p = RawPoint { landmark: "C7_centroid".parse().unwrap(), image: 0, observer: 0,
    ///                    frame: None, at: Position::Pixel32([10.5, 20.25]) };
    /// assert_eq!(p.pixel(), Some((10.5, 20.25)));
    /// assert_eq!(p.lps(), None);
    /// ```
    pub fn pixel(&self) -> Option<(f64, f64)> {
        match self.at {
            Position::Pixel32([c, r]) => Some((f64::from(c), f64::from(r))),
            Position::Pixel([c, r]) => Some((c, r)),
            Position::Lps(_) => None,
        }
    }

    /// The Slicer position in patient LPS mm, when the point came as one.
    pub fn lps(&self) -> Option<[f64; 3]> {
        match self.at {
            Position::Lps(p) => Some(p),
            _ => None,
        }
    }
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
    /// The SOP Instance UIDs the points lie on, each once, in order of first use.
    pub images: Vec<String>,
    /// The readers of the points (Person Observer Name as stored, empty for none), each
    /// once, in order of first use.
    pub observers: Vec<String>,
    /// The named, located points. (In the work record: one base64 string,
    /// [`packed_points`].)
    #[serde(with = "packed_points")]
    pub points: Vec<RawPoint>,
    /// Problems found while reading (unnamed points, unsupported graphics, depth cap...).
    pub issues: Vec<QcIssue>,
}

impl LandmarkDoc {
    /// The SOP Instance UID of the image `p` lies on.
    pub fn image_uid(&self, p: &RawPoint) -> &str {
        self.images.get(p.image as usize).map_or("", String::as_str)
    }

    /// The reader of `p` (empty when none is named).
    pub fn observer(&self, p: &RawPoint) -> &str {
        self.observers
            .get(p.observer as usize)
            .map_or("", String::as_str)
    }

    /// Adds a point, keeping its image and reader once in the document.
    ///
    /// ```
    /// use plumbline_ingest::LandmarkDoc;
    /// use plumbline_ingest::records::Position;
    /// let mut doc = LandmarkDoc::default();
    /// let lm = "C7_centroid".parse().unwrap();
    /// doc.push_point(lm, "1.2.3", "Reader^A", None, Position::Pixel([1.0, 2.0]));
    /// doc.push_point(lm, "1.2.3", "Reader^B", Some(2), Position::Pixel([3.0, 4.0]));
    /// assert_eq!((doc.images.len(), doc.observers.len()), (1, 2));
    /// assert_eq!(doc.observer(&doc.points[1]), "Reader^B");
    /// assert_eq!(doc.image_uid(&doc.points[1]), "1.2.3");
    /// ```
    pub fn push_point(
        &mut self,
        landmark: Landmark,
        image_uid: &str,
        observer: &str,
        frame: Option<u32>,
        at: Position,
    ) {
        let image = intern(&mut self.images, image_uid);
        let observer = intern(&mut self.observers, observer);
        self.points.push(RawPoint {
            landmark,
            image,
            observer,
            frame,
            at,
        });
    }
}

/// The index of `s` in `list`, added at the end when new. Lists are short (the images and
/// readers of one document); the most recent entry is tried first.
pub(crate) fn intern(list: &mut Vec<String>, s: &str) -> u32 {
    if let Some(last) = list.len().checked_sub(1)
        && list[last] == s
    {
        return last as u32;
    }
    match list.iter().position(|x| x == s) {
        Some(i) => i as u32,
        None => {
            list.push(s.to_string());
            (list.len() - 1) as u32
        }
    }
}

/// The work record's form of a document's points: one base64 string (standard alphabet,
/// no padding) of one packed record per point, about 16 characters for a point of an SR
/// against some 70 as a JSON object, so that the record of 600 patients is a third of the
/// size and takes less time to write than it took to read (issue #13).
///
/// A point's record, little-endian:
///
/// | bytes | what |
/// |---|---|
/// | 1 | kind: bits 0-1 the position (0 `Pixel32`, 1 `Pixel`, 2 `Lps`), bit 2 a frame follows |
/// | 1 | the landmark's [`Landmark::ordinal`] |
/// | 1-5 | the image index, LEB128 |
/// | 1-5 | the observer index, LEB128 |
/// | 1-5 | the frame number, LEB128, when bit 2 is set |
/// | 8, 16 or 24 | the position: two `f32`, two `f64` or three `f64`, bit for bit |
///
/// Coordinates keep their bits (a NaN too), so a reused document equals the one read. The
/// ordinals' order is part of the record's header (`cache`), so a build that reorders the
/// landmarks sets an old record aside instead of misreading it.
///
/// ```
/// use plumbline_ingest::LandmarkDoc;
/// use plumbline_ingest::records::Position;
/// let mut doc = LandmarkDoc::default();
/// doc.push_point("L1_sup_ant".parse().unwrap(), "1.2.3", "", None, Position::Pixel32([1.5, 2.0]));
/// doc.push_point("FH_left".parse().unwrap(), "1.2.4", "B", Some(300), Position::Lps([1.0, f64::NAN, 3.0]));
/// let json = serde_json::to_string(&doc).unwrap();
/// // The first point: kind 0, ordinal 123 (0x7B), image 0, observer 0, 1.5f32, 2.0f32,
/// // that is the bytes 00 7B 00 00 00 00 C0 3F 00 00 00 40.
/// assert!(json.contains(r#""points":"AHsAAAAAwD8AAABA"#), "{json}");
/// let back: LandmarkDoc = serde_json::from_str(&json).unwrap();
/// assert_eq!(back.points[0], doc.points[0]);
/// assert_eq!((back.points[1].frame, back.points[1].image), (Some(300), 1));
/// assert!(back.points[1].lps().unwrap()[1].is_nan());
/// ```
pub mod packed_points {
    use std::borrow::Cow;

    use base64::Engine;
    use base64::engine::general_purpose::STANDARD_NO_PAD;
    use plumbline_geometry::Landmark;
    use serde::de::Error as _;
    use serde::ser::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    use super::{Position, RawPoint};

    /// [`RawPoint::frame`] follows the indices.
    const FRAME: u8 = 4;

    /// Writes `points` as one string.
    pub fn serialize<S: Serializer>(points: &[RawPoint], s: S) -> Result<S::Ok, S::Error> {
        let mut b = Vec::with_capacity(points.len() * 12);
        for p in points {
            let ordinal = p
                .landmark
                .ordinal()
                .and_then(|n| u8::try_from(n).ok())
                .ok_or_else(|| {
                    S::Error::custom(format!("landmark {} has no ordinal", p.landmark))
                })?;
            let (kind, coords): (u8, &[f64]) = match &p.at {
                Position::Pixel32(_) => (0, &[]),
                Position::Pixel(c) => (1, c),
                Position::Lps(c) => (2, c),
            };
            b.push(kind | if p.frame.is_some() { FRAME } else { 0 });
            b.push(ordinal);
            leb128(&mut b, p.image);
            leb128(&mut b, p.observer);
            if let Some(f) = p.frame {
                leb128(&mut b, f);
            }
            if let Position::Pixel32([c, r]) = p.at {
                b.extend_from_slice(&c.to_le_bytes());
                b.extend_from_slice(&r.to_le_bytes());
            }
            for v in coords {
                b.extend_from_slice(&v.to_le_bytes());
            }
        }
        s.serialize_str(&STANDARD_NO_PAD.encode(&b))
    }

    /// Reads the string [`serialize`] wrote.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<RawPoint>, D::Error> {
        let text = <Cow<'de, str>>::deserialize(d)?;
        let b = STANDARD_NO_PAD
            .decode(text.as_bytes())
            .map_err(D::Error::custom)?;
        let mut r = Reader { b: &b };
        let mut points = Vec::with_capacity(b.len() / 12);
        while !r.b.is_empty() {
            points.push(
                r.point()
                    .ok_or_else(|| D::Error::custom("a packed point is cut short or malformed"))?,
            );
        }
        Ok(points)
    }

    fn leb128(b: &mut Vec<u8>, mut v: u32) {
        while v >= 0x80 {
            b.push((v as u8) | 0x80);
            v >>= 7;
        }
        b.push(v as u8);
    }

    /// The rest of the packed points.
    struct Reader<'a> {
        b: &'a [u8],
    }

    impl Reader<'_> {
        fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
            let (head, rest) = self.b.split_first_chunk::<N>()?;
            self.b = rest;
            Some(*head)
        }

        fn leb128(&mut self) -> Option<u32> {
            let mut v: u32 = 0;
            for shift in (0..35).step_by(7) {
                let [byte] = self.take::<1>()?;
                // The fifth byte holds the top four bits only.
                if shift == 28 && byte > 0x0F {
                    return None;
                }
                v |= u32::from(byte & 0x7F) << shift;
                if byte & 0x80 == 0 {
                    return Some(v);
                }
            }
            None
        }

        fn f64(&mut self) -> Option<f64> {
            self.take::<8>().map(f64::from_le_bytes)
        }

        fn point(&mut self) -> Option<RawPoint> {
            let [kind, ordinal] = self.take::<2>()?;
            let landmark = Landmark::from_ordinal(u16::from(ordinal))?;
            let image = self.leb128()?;
            let observer = self.leb128()?;
            let frame = if kind & FRAME != 0 {
                Some(self.leb128()?)
            } else {
                None
            };
            let at = match kind & !FRAME {
                0 => Position::Pixel32([
                    f32::from_le_bytes(self.take::<4>()?),
                    f32::from_le_bytes(self.take::<4>()?),
                ]),
                1 => Position::Pixel([self.f64()?, self.f64()?]),
                2 => Position::Lps([self.f64()?, self.f64()?, self.f64()?]),
                _ => return None,
            };
            Some(RawPoint {
                landmark,
                image,
                observer,
                frame,
                at,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Packed {
        #[serde(with = "packed_points")]
        points: Vec<RawPoint>,
    }

    #[test]
    fn packed_points_round_trip_every_kind_and_refuse_damage() {
        let lm = |s: &str| s.parse::<Landmark>().unwrap();
        let points = vec![
            RawPoint {
                landmark: lm("C7_centroid"),
                image: 0,
                observer: 0,
                frame: None,
                at: Position::Pixel32([-0.0, f32::MAX]),
            },
            RawPoint {
                landmark: lm("FH_right"),
                image: 127,
                observer: 128,
                frame: Some(u32::MAX),
                at: Position::Pixel([1e-300, -2.5]),
            },
            RawPoint {
                landmark: lm("S1_sup_post"),
                image: u32::MAX,
                observer: 16_384,
                frame: Some(0),
                at: Position::Lps([1.0, 2.0, -3.0]),
            },
        ];
        let p = Packed { points };
        let json = serde_json::to_string(&p).unwrap();
        let back: Packed = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        // Every bit of the coordinates is kept (-0.0 too).
        assert_eq!(
            back.points[0].pixel().unwrap().0.to_bits(),
            (-0.0f64).to_bits()
        );
        assert_eq!(
            serde_json::to_string(&Packed { points: vec![] }).unwrap(),
            r#"{"points":""}"#
        );

        // A record cut short, an unknown kind, a landmark that does not exist, text that
        // is not base64: refused, so the loader skips the line and the file is read again.
        use base64::Engine;
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD_NO_PAD.encode(b);
        let one = [0u8, 0, 0, 0, 0, 0, 0x80, 0x3F, 0, 0, 0, 0x40];
        assert!(
            serde_json::from_str::<Packed>(&format!(r#"{{"points":"{}"}}"#, b64(&one))).is_ok()
        );
        let mut bad = vec![one[..11].to_vec()];
        bad.push([&[3u8][..], &one[1..]].concat());
        bad.push([&[0u8, 19][..], &one[2..]].concat());
        bad.push([&[0u8, 250][..], &one[2..]].concat());
        bad.push(
            [
                &one[..2],
                &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01][..],
                &one[3..],
            ]
            .concat(),
        );
        for b in bad {
            let json = format!(r#"{{"points":"{}"}}"#, b64(&b));
            assert!(serde_json::from_str::<Packed>(&json).is_err(), "{b:02X?}");
        }
        assert!(serde_json::from_str::<Packed>(r#"{"points":"AHs*"}"#).is_err());
        assert!(serde_json::from_str::<Packed>(r#"{"points":[]}"#).is_err());
    }

    #[test]
    fn a_point_costs_tens_of_bytes() {
        // Landmark, two indices, a frame and the position as stored (an LPS triple at most).
        assert_eq!(std::mem::size_of::<RawPoint>(), 56);
    }
}
