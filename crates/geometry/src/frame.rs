//! A view's landmarks in the spec's millimetre frame (`landmarks.md` section 4).
//!
//! Pixel coordinates are (column, row) with (0, 0) at the outer top-left corner of the
//! image. The mm frame has y pointing up (toward the head); x points anterior on a
//! lateral view and toward the patient's left on an AP view. Only differences of
//! coordinates enter the metrics, so the origin is the image corner.

use crate::ByLandmark;
use crate::landmark::{Corner, Endplate, Landmark};

/// A point in the mm frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// mm, anterior (lateral) or patient-left (AP) positive.
    pub x: f64,
    /// mm, up positive.
    pub y: f64,
}

impl Point {
    /// A point from its coordinates.
    pub const fn new(x: f64, y: f64) -> Point {
        Point { x, y }
    }

    /// Midpoint of two points.
    pub fn mid(self, o: Point) -> Point {
        Point::new((self.x + o.x) / 2.0, (self.y + o.y) / 2.0)
    }

    /// Euclidean distance.
    pub fn dist(self, o: Point) -> f64 {
        (self.x - o.x).hypot(self.y - o.y)
    }
}

/// Lateral or antero-posterior (AP/PA) projection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ViewKind {
    /// Sagittal projection: x anterior.
    Lateral,
    /// Coronal projection: x toward the patient's left.
    Ap,
}

/// `lateral` or `AP`, as messages and tables name the views.
impl std::fmt::Display for ViewKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ViewKind::Lateral => "lateral",
            ViewKind::Ap => "AP",
        })
    }
}

/// A patient direction letter of DICOM PatientOrientation (0020,0020).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PatientDirection {
    /// Anterior.
    A,
    /// Posterior.
    P,
    /// Patient left.
    L,
    /// Patient right.
    R,
    /// Head.
    H,
    /// Foot.
    F,
}

impl PatientDirection {
    /// Parses one PatientOrientation value. Only a single letter is usable; oblique
    /// values such as `AL` and empty values give `None` (no usable orientation).
    pub fn parse(value: &str) -> Option<PatientDirection> {
        match value.trim() {
            "A" => Some(PatientDirection::A),
            "P" => Some(PatientDirection::P),
            "L" => Some(PatientDirection::L),
            "R" => Some(PatientDirection::R),
            "H" => Some(PatientDirection::H),
            "F" => Some(PatientDirection::F),
            _ => None,
        }
    }
}

/// Pixel spacing in mm, row spacing (vertical) first as in DICOM.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Spacing {
    /// Distance between the centres of adjacent rows, mm.
    pub row: f64,
    /// Distance between the centres of adjacent columns, mm.
    pub col: f64,
}

/// How the x direction of the frame was established.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OrientationSource {
    /// From PatientOrientation.
    Header,
    /// Lateral view without usable orientation: anterior taken as the side of
    /// `S1_sup_ant` relative to `S1_sup_post` (or, without S1, of the anterior
    /// corners of the other levels by majority). Flagged in the outputs.
    Inferred,
    /// No usable orientation. On an AP view the frame is mirrored so that left
    /// corners lie at larger x than right corners (so magnitudes are right), and
    /// signed coronal metrics are missing. On a lateral view with no corners to
    /// infer from, every metric needing a direction is missing.
    Unknown,
}

impl OrientationSource {
    /// Lower-case name used in the tables: `header`, `inferred`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            OrientationSource::Header => "header",
            OrientationSource::Inferred => "inferred",
            OrientationSource::Unknown => "unknown",
        }
    }

    /// The source of a table name ([`OrientationSource::as_str`]).
    pub fn from_name(name: &str) -> Option<OrientationSource> {
        [
            OrientationSource::Header,
            OrientationSource::Inferred,
            OrientationSource::Unknown,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// Why a view's frame could not be built.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum FrameError {
    /// Spacing zero, negative or not finite.
    #[error(
        "pixel spacing {row}\\{col} mm is not usable (must be two positive numbers, row\\column); the view has no mm scale"
    )]
    BadSpacing {
        /// Row spacing as given.
        row: f64,
        /// Column spacing as given.
        col: f64,
    },
    /// A landmark that cannot appear on this kind of view.
    #[error("landmark {landmark} belongs on the other view, not on a {kind:?} view")]
    WrongView {
        /// The landmark.
        landmark: Landmark,
        /// The view it was placed on.
        kind: ViewKind,
    },
    /// A non-finite coordinate.
    #[error("landmark {0} has a coordinate that is not a finite number")]
    NotFinite(Landmark),
}

/// The landmarks of one view of one reader, in mm.
///
/// ```
/// use plumbline_geometry::{ViewLandmarks, ViewKind, Spacing, PatientDirection, OrientationSource, Point};
/// // Lateral view, columns increase posteriorly (P\F), 0.2 mm rows, 0.1 mm columns.
/// let v = ViewLandmarks::from_pixels(
///     ViewKind::Lateral,
///     [("C7_centroid".parse().unwrap(), (100.0, 50.0))],
///     Spacing { row: 0.2, col: 0.1 },
///     Some(PatientDirection::P),
///     Some(PatientDirection::F),
/// ).unwrap();
/// assert_eq!(v.get("C7_centroid".parse().unwrap()), Some(Point::new(-10.0, -10.0)));
/// assert_eq!(v.orientation(), OrientationSource::Header);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ViewLandmarks {
    kind: ViewKind,
    points: ByLandmark<Point>,
    orientation: OrientationSource,
}

impl ViewLandmarks {
    /// Builds a view from pixel points `(landmark, (column, row))`.
    ///
    /// `column_direction` and `row_direction` are the two PatientOrientation values
    /// (`None` when absent or unusable). A column direction that does not fit the
    /// view (L/R on a lateral, A/P on an AP) counts as unusable. Rows are taken to
    /// increase toward the feet unless the row direction is `H`.
    pub fn from_pixels(
        kind: ViewKind,
        pixel_points: impl IntoIterator<Item = (Landmark, (f64, f64))>,
        spacing: Spacing,
        column_direction: Option<PatientDirection>,
        row_direction: Option<PatientDirection>,
    ) -> Result<ViewLandmarks, FrameError> {
        let ok = |v: f64| v.is_finite() && v > 0.0;
        if !ok(spacing.row) || !ok(spacing.col) {
            return Err(FrameError::BadSpacing {
                row: spacing.row,
                col: spacing.col,
            });
        }
        let y_sign = if row_direction == Some(PatientDirection::H) {
            1.0
        } else {
            -1.0
        };
        let header_sign = match (kind, column_direction) {
            (ViewKind::Lateral, Some(PatientDirection::A)) => Some(1.0),
            (ViewKind::Lateral, Some(PatientDirection::P)) => Some(-1.0),
            (ViewKind::Ap, Some(PatientDirection::L)) => Some(1.0),
            (ViewKind::Ap, Some(PatientDirection::R)) => Some(-1.0),
            _ => None,
        };
        let pixel_points = pixel_points.into_iter();
        let mut points = ByLandmark::with_capacity(pixel_points.size_hint().0);
        for (lm, (c, r)) in pixel_points {
            if let Landmark::Corner(_, _, corner) = lm
                && corner.is_lateral() != (kind == ViewKind::Lateral)
            {
                return Err(FrameError::WrongView { landmark: lm, kind });
            }
            if !c.is_finite() || !r.is_finite() {
                return Err(FrameError::NotFinite(lm));
            }
            points.insert(lm, Point::new(c * spacing.col, y_sign * r * spacing.row));
        }
        let mut view = ViewLandmarks {
            kind,
            points,
            orientation: OrientationSource::Header,
        };
        match header_sign {
            Some(s) => view.scale_x(s),
            None => {
                let inferred = view.infer_x_sign();
                view.orientation = match (kind, inferred) {
                    (ViewKind::Lateral, Some(_)) => OrientationSource::Inferred,
                    _ => OrientationSource::Unknown,
                };
                view.scale_x(inferred.unwrap_or(1.0));
            }
        }
        Ok(view)
    }

    /// Builds a view directly from mm points, with a known orientation source
    /// (for tests and for callers that already work in mm).
    pub fn from_mm(
        kind: ViewKind,
        points: impl IntoIterator<Item = (Landmark, Point)>,
        orientation: OrientationSource,
    ) -> ViewLandmarks {
        ViewLandmarks {
            kind,
            points: points.into_iter().collect(),
            orientation,
        }
    }

    fn scale_x(&mut self, s: f64) {
        for p in self.points.values_mut() {
            p.x *= s;
        }
    }

    /// +1 when the view's "positive" corners (anterior or patient-left) already lie at
    /// larger x, -1 when mirrored, `None` when nothing tells. S1 decides first; else a
    /// majority over every endplate's corner pairs.
    fn infer_x_sign(&self) -> Option<f64> {
        let (pos, neg) = match self.kind {
            ViewKind::Lateral => (Corner::Ant, Corner::Post),
            ViewKind::Ap => (Corner::Left, Corner::Right),
        };
        let diff = |level, e| {
            let a = self.points.get(&Landmark::Corner(level, e, pos))?;
            let b = self.points.get(&Landmark::Corner(level, e, neg))?;
            let d = a.x - b.x;
            (d != 0.0).then_some(d.signum())
        };
        if let Some(s) = diff(crate::Level::S1, Endplate::Sup) {
            return Some(s);
        }
        let votes: f64 = crate::Level::thoracolumbar()
            .flat_map(|l| [diff(l, Endplate::Sup), diff(l, Endplate::Inf)])
            .flatten()
            .sum();
        (votes != 0.0).then_some(votes.signum())
    }

    /// Lateral or AP.
    pub fn kind(&self) -> ViewKind {
        self.kind
    }

    /// How the x direction was established.
    pub fn orientation(&self) -> OrientationSource {
        self.orientation
    }

    /// A landmark's position, if present.
    pub fn get(&self, lm: Landmark) -> Option<Point> {
        self.points.get(&lm).copied()
    }

    /// All landmarks, in canonical order.
    pub fn points(&self) -> &ByLandmark<Point> {
        &self.points
    }

    /// A copy without one landmark (used to test that metrics need it).
    pub fn without(&self, lm: Landmark) -> ViewLandmarks {
        let mut v = self.clone();
        v.points.remove(&lm);
        v
    }

    /// A copy with every point mapped through `f`, keeping kind and orientation.
    pub fn map_points(&self, f: impl Fn(Point) -> Point) -> ViewLandmarks {
        ViewLandmarks {
            kind: self.kind,
            points: self.points.iter().map(|(k, p)| (*k, f(*p))).collect(),
            orientation: self.orientation,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Level;

    fn lm(s: &str) -> Landmark {
        s.parse().unwrap()
    }

    #[test]
    fn anisotropic_spacing_and_directions() {
        // Column 10, row 20 with row spacing 0.5 and column spacing 0.25:
        // x = 10 * 0.25 = 2.5 (A: kept), y = -20 * 0.5 = -10.
        let v = ViewLandmarks::from_pixels(
            ViewKind::Lateral,
            [(lm("C7_centroid"), (10.0, 20.0))],
            Spacing {
                row: 0.5,
                col: 0.25,
            },
            Some(PatientDirection::A),
            Some(PatientDirection::F),
        )
        .unwrap();
        assert_eq!(v.get(lm("C7_centroid")), Some(Point::new(2.5, -10.0)));
        // R\F on an AP: x to the patient's left is -column.
        let v = ViewLandmarks::from_pixels(
            ViewKind::Ap,
            [(lm("C7_centroid"), (10.0, 20.0))],
            Spacing {
                row: 0.5,
                col: 0.25,
            },
            Some(PatientDirection::R),
            Some(PatientDirection::F),
        )
        .unwrap();
        assert_eq!(v.get(lm("C7_centroid")), Some(Point::new(-2.5, -10.0)));
        assert_eq!(v.orientation(), OrientationSource::Header);
    }

    #[test]
    fn lateral_orientation_inferred_from_s1() {
        // S1_sup_ant at a smaller column than S1_sup_post: columns increase posteriorly.
        let v = ViewLandmarks::from_pixels(
            ViewKind::Lateral,
            [
                (lm("S1_sup_ant"), (100.0, 500.0)),
                (lm("S1_sup_post"), (140.0, 480.0)),
                (lm("C7_centroid"), (130.0, 0.0)),
            ],
            Spacing { row: 1.0, col: 1.0 },
            None,
            None,
        )
        .unwrap();
        assert_eq!(v.orientation(), OrientationSource::Inferred);
        assert_eq!(v.get(lm("S1_sup_ant")).unwrap().x, -100.0);
        assert_eq!(v.get(lm("C7_centroid")).unwrap().x, -130.0);
    }

    #[test]
    fn ap_without_orientation_is_unknown_but_mirrored_to_left() {
        let v = ViewLandmarks::from_pixels(
            ViewKind::Ap,
            [
                (lm("S1_sup_left"), (100.0, 500.0)),
                (lm("S1_sup_right"), (140.0, 500.0)),
            ],
            Spacing { row: 1.0, col: 1.0 },
            Some(PatientDirection::A), // wrong axis for an AP: unusable
            None,
        )
        .unwrap();
        assert_eq!(v.orientation(), OrientationSource::Unknown);
        assert!(v.get(lm("S1_sup_left")).unwrap().x > v.get(lm("S1_sup_right")).unwrap().x);
    }

    #[test]
    fn bad_spacing_and_wrong_view_are_errors() {
        for (r, c) in [
            (0.0, 0.1),
            (0.1, -1.0),
            (f64::NAN, 0.1),
            (0.1, f64::INFINITY),
        ] {
            let e = ViewLandmarks::from_pixels(
                ViewKind::Ap,
                [],
                Spacing { row: r, col: c },
                None,
                None,
            );
            assert!(matches!(e, Err(FrameError::BadSpacing { .. })), "{r} {c}");
        }
        let e = ViewLandmarks::from_pixels(
            ViewKind::Ap,
            [(lm("L1_sup_ant"), (1.0, 1.0))],
            Spacing { row: 1.0, col: 1.0 },
            None,
            None,
        );
        assert_eq!(
            e,
            Err(FrameError::WrongView {
                landmark: Landmark::Corner(Level::L(1), Endplate::Sup, Corner::Ant),
                kind: ViewKind::Ap
            })
        );
    }

    #[test]
    fn head_up_rows_flip_y() {
        let v = ViewLandmarks::from_pixels(
            ViewKind::Lateral,
            [(lm("C7_centroid"), (0.0, 20.0))],
            Spacing { row: 0.5, col: 0.5 },
            Some(PatientDirection::A),
            Some(PatientDirection::H),
        )
        .unwrap();
        assert_eq!(v.get(lm("C7_centroid")).unwrap().y, 10.0);
    }
}
