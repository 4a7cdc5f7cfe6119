//! Plausibility of one view's landmark set (spec `landmarks.md` section 7): the gross
//! errors a reader or an AI tool makes that no formula catches (a swapped pair of corners,
//! a vertebra named out of order, a femoral head clicked above the sacrum). Each failed
//! check names its landmarks and values; the metrics are still computed.
//!
//! The fifth check of the contract, pelvic incidence stable across one reader's
//! timepoints, compares readings and lives with them ([`pi_jumps`]).
//!
//! ```
//! use plumbline_geometry::*;
//! let lm = |s: &str| s.parse::<Landmark>().unwrap();
//! // A lateral view (mm, x anterior, y up) whose L1 superior corners were swapped.
//! let v = ViewLandmarks::from_mm(
//!     ViewKind::Lateral,
//!     [(lm("L1_sup_ant"), Point::new(-20.0, 300.0)), (lm("L1_sup_post"), Point::new(15.0, 301.0))],
//!     OrientationSource::Header,
//! );
//! let found = check_view(&v);
//! assert_eq!(found.len(), 1);
//! assert_eq!(found[0].check, Check::CornerSides);
//! assert_eq!(found[0].landmarks, [lm("L1_sup_ant"), lm("L1_sup_post")]);
//! ```

use std::fmt;

use crate::{
    Corner, Endplate, Landmark, Level, OrientationSource, Point, Side, ViewKind, ViewLandmarks,
};

/// The checks of section 7.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Check {
    /// Vertebral bodies run head to foot in order (C7 above T1 ... above L5 above S1).
    BodyOrder,
    /// Each body's superior corners lie above its inferior corners.
    EndplateOrder,
    /// Anterior corners anterior of posterior ones (lateral), left corners on the
    /// patient's left of right ones (AP), where the orientation is known.
    CornerSides,
    /// The femoral heads lie below the S1 endplate.
    FemoralHeads,
    /// One reader's pelvic incidence differs between two timepoints by more than the
    /// pipeline's tolerance.
    PiJump,
}

impl Check {
    /// The name used in `measurements.csv`'s `plausibility` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Check::BodyOrder => "body_order",
            Check::EndplateOrder => "endplate_order",
            Check::CornerSides => "corner_sides",
            Check::FemoralHeads => "femoral_heads",
            Check::PiJump => "pi_jump",
        }
    }
}

impl Check {
    /// Every check, in the order of `landmarks.md` section 7.
    pub const ALL: [Check; 5] = [
        Check::BodyOrder,
        Check::EndplateOrder,
        Check::CornerSides,
        Check::FemoralHeads,
        Check::PiJump,
    ];

    /// The check named `name` ([`Check::as_str`]).
    pub fn from_name(name: &str) -> Option<Check> {
        Check::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One failed check.
#[derive(Clone, Debug, PartialEq)]
pub struct Implausible {
    /// Which check failed.
    pub check: Check,
    /// The landmarks at fault (for QC messages and for marking them on the overlay).
    pub landmarks: Vec<Landmark>,
    /// What is wrong, with the values, for a person.
    pub message: String,
}

/// The vertical position (mm, up) of a level's body: its centroid, else the mean of its
/// corners; the landmarks used.
fn body_height(v: &ViewLandmarks, level: Level) -> Option<(f64, Vec<Landmark>)> {
    if let Some(p) = v.get(Landmark::Centroid(level)) {
        return Some((p.y, vec![Landmark::Centroid(level)]));
    }
    let corners: Vec<(Landmark, Point)> = v
        .points()
        .iter()
        .filter(|(lm, _)| matches!(lm, Landmark::Corner(l, _, _) if *l == level))
        .map(|(lm, p)| (*lm, *p))
        .collect();
    if corners.is_empty() {
        return None;
    }
    let y = corners.iter().map(|(_, p)| p.y).sum::<f64>() / corners.len() as f64;
    Some((y, corners.into_iter().map(|(lm, _)| lm).collect()))
}

/// Every check of one view that can be made with the landmarks it has, in check order.
pub fn check_view(v: &ViewLandmarks) -> Vec<Implausible> {
    let mut out = Vec::new();
    body_order(v, &mut out);
    endplate_order(v, &mut out);
    corner_sides(v, &mut out);
    femoral_heads(v, &mut out);
    out
}

/// [`Check::BodyOrder`]: between consecutive levels present (C7, T1..L5, S1), the upper
/// body lies above the lower one.
fn body_order(v: &ViewLandmarks, out: &mut Vec<Implausible>) {
    let levels = std::iter::once(Level::C7)
        .chain(Level::thoracolumbar())
        .chain(std::iter::once(Level::S1));
    let bodies: Vec<(Level, f64, Vec<Landmark>)> = levels
        .filter_map(|l| body_height(v, l).map(|(y, lms)| (l, y, lms)))
        .collect();
    for pair in bodies.windows(2) {
        let ((upper, yu, lu), (lower, yl, ll)) = (
            (&pair[0].0, pair[0].1, &pair[0].2),
            (&pair[1].0, pair[1].1, &pair[1].2),
        );
        if yu <= yl {
            out.push(Implausible {
                check: Check::BodyOrder,
                landmarks: lu.iter().chain(ll).copied().collect(),
                message: format!(
                    "{upper} lies at {yu:.1} mm, not above {lower} at {yl:.1} mm (height, up): \
                     the vertebrae are out of head-to-foot order"
                ),
            });
        }
    }
}

/// [`Check::EndplateOrder`]: each superior corner of T1..L5 lies above the inferior
/// corner on the same side.
fn endplate_order(v: &ViewLandmarks, out: &mut Vec<Implausible>) {
    for level in Level::thoracolumbar() {
        for c in [Corner::Ant, Corner::Post, Corner::Left, Corner::Right] {
            let (s, i) = (
                Landmark::Corner(level, Endplate::Sup, c),
                Landmark::Corner(level, Endplate::Inf, c),
            );
            if let (Some(ps), Some(pi)) = (v.get(s), v.get(i))
                && ps.y <= pi.y
            {
                out.push(Implausible {
                    check: Check::EndplateOrder,
                    landmarks: vec![s, i],
                    message: format!(
                        "{s} lies at {:.1} mm, not above {i} at {:.1} mm (height, up)",
                        ps.y, pi.y
                    ),
                });
            }
        }
    }
}

/// [`Check::CornerSides`], where the orientation is known: anterior corners anterior of
/// posterior ones on a lateral view, left corners on the patient's left of right ones on
/// an AP view whose orientation came from the header.
fn corner_sides(v: &ViewLandmarks, out: &mut Vec<Implausible>) {
    let pairs = match (v.kind(), v.orientation()) {
        (ViewKind::Lateral, OrientationSource::Header | OrientationSource::Inferred) => {
            Some((Corner::Ant, Corner::Post, "anterior"))
        }
        (ViewKind::Ap, OrientationSource::Header) => {
            Some((Corner::Left, Corner::Right, "on the patient's left"))
        }
        _ => None,
    };
    let Some((first, second, side)) = pairs else {
        return;
    };
    let levels = Level::thoracolumbar().chain(std::iter::once(Level::S1));
    for level in levels {
        for e in [Endplate::Sup, Endplate::Inf] {
            let (a, b) = (
                Landmark::Corner(level, e, first),
                Landmark::Corner(level, e, second),
            );
            if let (Some(pa), Some(pb)) = (v.get(a), v.get(b))
                && pa.x <= pb.x
            {
                out.push(Implausible {
                    check: Check::CornerSides,
                    landmarks: vec![a, b],
                    message: format!(
                        "{a} is not {side} of {b} (x {:.1} mm vs {:.1} mm): the two corners \
                         look swapped",
                        pa.x, pb.x
                    ),
                });
            }
        }
    }
}

/// [`Check::FemoralHeads`]: both femoral heads lie below the S1 endplate (the mean height
/// of the S1 corners present, so its midpoint or its one corner).
fn femoral_heads(v: &ViewLandmarks, out: &mut Vec<Implausible>) {
    let s1: Vec<(Landmark, Point)> = v
        .points()
        .iter()
        .filter(|(lm, _)| matches!(lm, Landmark::Corner(Level::S1, _, _)))
        .map(|(lm, p)| (*lm, *p))
        .collect();
    if s1.is_empty() {
        return;
    }
    let y_s1 = s1.iter().map(|(_, p)| p.y).sum::<f64>() / s1.len() as f64;
    for side in [Side::Left, Side::Right] {
        let fh = Landmark::FemoralHead(side);
        if let Some(p) = v.get(fh)
            && p.y >= y_s1
        {
            out.push(Implausible {
                check: Check::FemoralHeads,
                landmarks: std::iter::once(fh)
                    .chain(s1.iter().map(|(l, _)| *l))
                    .collect(),
                message: format!(
                    "{fh} lies at {:.1} mm, not below the S1 endplate at {y_s1:.1} mm (height, up)",
                    p.y
                ),
            });
        }
    }
}

/// The PI check across one reader's readings of one patient: `pis` are (timepoint name,
/// PI in degrees) in timepoint order. Returns, for each pair whose PI differs by more
/// than `tolerance_deg`, the two timepoints and the difference; a reading is implausible
/// when it is in any such pair.
///
/// ```
/// use plumbline_geometry::pi_jumps;
/// let j = pi_jumps(&[("preop", 50.0), ("postop", 51.5), ("m3", 62.0)], 6.0);
/// assert_eq!(j.len(), 2);
/// assert_eq!((j[0].0, j[0].1), ("preop", "m3"));
/// assert!((j[0].2 - 12.0).abs() < 1e-12);
/// ```
pub fn pi_jumps<'a>(pis: &[(&'a str, f64)], tolerance_deg: f64) -> Vec<(&'a str, &'a str, f64)> {
    let mut out = Vec::new();
    for (i, (a, pa)) in pis.iter().enumerate() {
        for (b, pb) in &pis[i + 1..] {
            let d = pb - pa;
            if d.abs() > tolerance_deg {
                out.push((*a, *b, d));
            }
        }
    }
    out
}
