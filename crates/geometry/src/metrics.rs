//! The alignment metrics of `landmarks.md` section 5.
//!
//! Every metric is `Option<f64>`: `None` when a landmark it needs is missing (or the
//! view's direction is unknown for a signed metric), never 0 or NaN.
//!
//! Sign conventions, derived from the spec's definitions in its mm frame (x anterior on
//! a lateral view, to the patient's left on an AP view, y up):
//! - `tilt` of an endplate = `atan2(dy, dx)` of the vector posterior -> anterior corner
//!   (lateral) or right -> left corner (AP), in degrees, counter-clockwise positive.
//!   Differences of tilts are wrapped to (-180, 180].
//! - `ss_deg = -tilt(S1 sup)`: positive when the anterior corner is lower (the normal,
//!   forward-sloping sacrum).
//! - `pt_deg = atan2(Hx - Mx, My - Hy)` with H the femoral-head midpoint and M the S1
//!   endplate midpoint: positive when the heads lie anterior to M.
//! - `pi_deg` = signed angle from the endplate's caudal perpendicular at M to the vector
//!   M -> H, positive toward anterior. With these conventions `PI = PT + SS` exactly
//!   (up to floating-point rounding).
//! - `tpa_deg = pt_deg + atan2(T1x - Hx, T1y - Hy)`.

use std::collections::BTreeMap;

use crate::frame::{OrientationSource, Point, ViewKind, ViewLandmarks};
use crate::landmark::{Corner, Endplate, Landmark, Level, Side};

/// One output metric, in the spec's column order (see [`Metric::all`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    /// `sva_mm`
    SvaMm,
    /// `ss_deg`
    SsDeg,
    /// `pt_deg`
    PtDeg,
    /// `pi_deg`
    PiDeg,
    /// `ll_deg`
    LlDeg,
    /// `l4_s1_lordosis_deg`
    L4S1LordosisDeg,
    /// `tk_deg`
    TkDeg,
    /// `pi_ll_deg`
    PiLlDeg,
    /// `tpa_deg`
    TpaDeg,
    /// `l{n}_wedge_angle_deg`, n in 1..=5
    WedgeAngleDeg(u8),
    /// `l{n}_wedge_index_pct`, n in 1..=5
    WedgeIndexPct(u8),
    /// `c7pl_csvl_mm`
    C7plCsvlMm,
    /// `cobb_deg`
    CobbDeg,
    /// `pelvic_obliquity_deg`
    PelvicObliquityDeg,
}

impl Metric {
    /// Every metric in output-column order.
    pub fn all() -> Vec<Metric> {
        let mut v = vec![
            Metric::SvaMm,
            Metric::SsDeg,
            Metric::PtDeg,
            Metric::PiDeg,
            Metric::LlDeg,
            Metric::L4S1LordosisDeg,
            Metric::TkDeg,
            Metric::PiLlDeg,
            Metric::TpaDeg,
        ];
        v.extend((1..=5).map(Metric::WedgeAngleDeg));
        v.extend((1..=5).map(Metric::WedgeIndexPct));
        v.extend([
            Metric::C7plCsvlMm,
            Metric::CobbDeg,
            Metric::PelvicObliquityDeg,
        ]);
        v
    }

    /// The column name, e.g. `sva_mm`, `l3_wedge_index_pct`.
    pub fn name(self) -> String {
        match self {
            Metric::SvaMm => "sva_mm".into(),
            Metric::SsDeg => "ss_deg".into(),
            Metric::PtDeg => "pt_deg".into(),
            Metric::PiDeg => "pi_deg".into(),
            Metric::LlDeg => "ll_deg".into(),
            Metric::L4S1LordosisDeg => "l4_s1_lordosis_deg".into(),
            Metric::TkDeg => "tk_deg".into(),
            Metric::PiLlDeg => "pi_ll_deg".into(),
            Metric::TpaDeg => "tpa_deg".into(),
            Metric::WedgeAngleDeg(n) => format!("l{n}_wedge_angle_deg"),
            Metric::WedgeIndexPct(n) => format!("l{n}_wedge_index_pct"),
            Metric::C7plCsvlMm => "c7pl_csvl_mm".into(),
            Metric::CobbDeg => "cobb_deg".into(),
            Metric::PelvicObliquityDeg => "pelvic_obliquity_deg".into(),
        }
    }

    /// Parses a column name back to the metric.
    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::all().into_iter().find(|m| m.name() == name)
    }
}

/// Configurable levels of thoracic kyphosis (default T4-T12).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MetricOptions {
    /// Upper level of TK: its superior endplate is used.
    pub tk_upper: Level,
    /// Lower level of TK: its inferior endplate is used.
    pub tk_lower: Level,
}

impl Default for MetricOptions {
    fn default() -> Self {
        MetricOptions {
            tk_upper: Level::T(4),
            tk_lower: Level::T(12),
        }
    }
}

fn deg(rad: f64) -> f64 {
    rad.to_degrees()
}

/// Wraps an angle in degrees to (-180, 180].
pub fn wrap_deg(a: f64) -> f64 {
    let mut a = a % 360.0;
    if a > 180.0 {
        a -= 360.0;
    } else if a <= -180.0 {
        a += 360.0;
    }
    a
}

fn lateral(v: &ViewLandmarks) -> Option<&ViewLandmarks> {
    (v.kind() == ViewKind::Lateral && v.orientation() != OrientationSource::Unknown).then_some(v)
}

fn ap(v: &ViewLandmarks) -> Option<&ViewLandmarks> {
    (v.kind() == ViewKind::Ap).then_some(v)
}

/// AP view whose left/right is known from the header (signed coronal metrics).
fn ap_signed(v: &ViewLandmarks) -> Option<&ViewLandmarks> {
    ap(v).filter(|v| v.orientation() != OrientationSource::Unknown)
}

fn corners(v: &ViewLandmarks, level: Level, e: Endplate) -> Option<(Point, Point)> {
    let (pos, neg) = match v.kind() {
        ViewKind::Lateral => (Corner::Ant, Corner::Post),
        ViewKind::Ap => (Corner::Left, Corner::Right),
    };
    Some((
        v.get(Landmark::Corner(level, e, neg))?,
        v.get(Landmark::Corner(level, e, pos))?,
    ))
}

/// Tilt of an endplate in degrees (see the module doc for the convention).
pub fn tilt_deg(v: &ViewLandmarks, level: Level, e: Endplate) -> Option<f64> {
    let (from, to) = corners(v, level, e)?;
    Some(deg((to.y - from.y).atan2(to.x - from.x)))
}

fn tilt_diff(v: &ViewLandmarks, a: (Level, Endplate), b: (Level, Endplate)) -> Option<f64> {
    Some(wrap_deg(tilt_deg(v, a.0, a.1)? - tilt_deg(v, b.0, b.1)?))
}

fn s1_mid(v: &ViewLandmarks) -> Option<Point> {
    let (a, b) = corners(v, Level::S1, Endplate::Sup)?;
    Some(a.mid(b))
}

/// Mean of the femoral heads present.
fn head_mid(v: &ViewLandmarks) -> Option<Point> {
    let l = v.get(Landmark::FemoralHead(Side::Left));
    let r = v.get(Landmark::FemoralHead(Side::Right));
    match (l, r) {
        (Some(a), Some(b)) => Some(a.mid(b)),
        (a, b) => a.or(b),
    }
}

/// `sva_mm`: x(C7_centroid) - x(S1_sup_post) on a lateral view.
pub fn sva_mm(v: &ViewLandmarks) -> Option<f64> {
    let v = lateral(v)?;
    let c7 = v.get(Landmark::Centroid(Level::C7))?;
    let s1p = v.get(Landmark::Corner(Level::S1, Endplate::Sup, Corner::Post))?;
    Some(c7.x - s1p.x)
}

/// `ss_deg`: -tilt(S1 superior endplate).
pub fn ss_deg(v: &ViewLandmarks) -> Option<f64> {
    Some(-tilt_deg(lateral(v)?, Level::S1, Endplate::Sup)?)
}

/// `pt_deg`: angle of the femoral-head-midpoint -> S1-midpoint line from the vertical.
pub fn pt_deg(v: &ViewLandmarks) -> Option<f64> {
    let v = lateral(v)?;
    let m = s1_mid(v)?;
    let h = head_mid(v)?;
    Some(deg((h.x - m.x).atan2(m.y - h.y)))
}

/// `pi_deg`: angle from the S1 endplate's caudal perpendicular to the line to the heads.
pub fn pi_deg(v: &ViewLandmarks) -> Option<f64> {
    let v = lateral(v)?;
    let m = s1_mid(v)?;
    let h = head_mid(v)?;
    let t = tilt_deg(v, Level::S1, Endplate::Sup)?.to_radians();
    // Caudal normal n = (sin t, -cos t); w = H - M. Signed angle n -> w, counted
    // positive toward anterior: turning a caudal vector toward +x is counter-clockwise
    // in the (x anterior, y up) frame, so the sign is that of the cross product.
    let (nx, ny) = (t.sin(), -t.cos());
    let (wx, wy) = (h.x - m.x, h.y - m.y);
    let cross = nx * wy - ny * wx;
    let dot = nx * wx + ny * wy;
    Some(deg(cross.atan2(dot)))
}

/// `ll_deg`: tilt(L1 sup) - tilt(S1 sup).
pub fn ll_deg(v: &ViewLandmarks) -> Option<f64> {
    tilt_diff(
        lateral(v)?,
        (Level::L(1), Endplate::Sup),
        (Level::S1, Endplate::Sup),
    )
}

/// `l4_s1_lordosis_deg`: tilt(L4 sup) - tilt(S1 sup).
pub fn l4_s1_lordosis_deg(v: &ViewLandmarks) -> Option<f64> {
    tilt_diff(
        lateral(v)?,
        (Level::L(4), Endplate::Sup),
        (Level::S1, Endplate::Sup),
    )
}

/// `tk_deg`: tilt(lower inf) - tilt(upper sup), T4-T12 by default.
pub fn tk_deg(v: &ViewLandmarks, opts: &MetricOptions) -> Option<f64> {
    tilt_diff(
        lateral(v)?,
        (opts.tk_lower, Endplate::Inf),
        (opts.tk_upper, Endplate::Sup),
    )
}

/// `tpa_deg`: PT plus the angle of the head-midpoint -> T1_centroid line from the vertical.
pub fn tpa_deg(v: &ViewLandmarks) -> Option<f64> {
    let v = lateral(v)?;
    let h = head_mid(v)?;
    let t1 = v.get(Landmark::Centroid(Level::T(1)))?;
    Some(pt_deg(v)? + deg((t1.x - h.x).atan2(t1.y - h.y)))
}

/// `l{n}_wedge_angle_deg`: tilt(sup) - tilt(inf) of a lumbar body.
pub fn wedge_angle_deg(v: &ViewLandmarks, level: Level) -> Option<f64> {
    tilt_diff(lateral(v)?, (level, Endplate::Sup), (level, Endplate::Inf))
}

/// `l{n}_wedge_index_pct`: (anterior height - posterior height) / anterior height x 100.
///
/// Heights are corner-to-corner distances, so this ratio needs no direction and is
/// given even when the lateral orientation is unknown.
pub fn wedge_index_pct(v: &ViewLandmarks, level: Level) -> Option<f64> {
    if v.kind() != ViewKind::Lateral {
        return None;
    }
    let (sp, sa) = corners(v, level, Endplate::Sup)?;
    let (ip, ia) = corners(v, level, Endplate::Inf)?;
    let ant = sa.dist(ia);
    let post = sp.dist(ip);
    (ant > 0.0).then(|| (ant - post) / ant * 100.0)
}

/// `c7pl_csvl_mm` on an AP view: S1-midpoint x minus C7 x (positive = C7 to the
/// patient's right, since x points to the patient's left).
pub fn c7pl_csvl_mm(v: &ViewLandmarks) -> Option<f64> {
    let v = ap_signed(v)?;
    c7pl_offset(v)
}

/// |C7PL-CSVL|: available even when the AP view's left/right is unknown.
pub fn c7pl_csvl_magnitude_mm(v: &ViewLandmarks) -> Option<f64> {
    Some(c7pl_offset(ap(v)?)?.abs())
}

fn c7pl_offset(v: &ViewLandmarks) -> Option<f64> {
    let c7 = v.get(Landmark::Centroid(Level::C7))?;
    Some(s1_mid(v)?.x - c7.x)
}

/// The largest Cobb angle on an AP view, with its end vertebrae.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cobb {
    /// Degrees, >= 0.
    pub angle: f64,
    /// Upper end vertebra (its superior endplate).
    pub upper: Level,
    /// Lower end vertebra (its inferior endplate).
    pub lower: Level,
}

/// `cobb_deg`: max |tilt(U sup) - tilt(V inf)| over pairs U strictly above V among
/// T1..L5 with both corners on the AP view. Ties keep the highest, shortest pair.
pub fn cobb(v: &ViewLandmarks) -> Option<Cobb> {
    let v = ap(v)?;
    let sup: Vec<(Level, f64)> = Level::thoracolumbar()
        .filter_map(|l| Some((l, tilt_deg(v, l, Endplate::Sup)?)))
        .collect();
    let inf: Vec<(Level, f64)> = Level::thoracolumbar()
        .filter_map(|l| Some((l, tilt_deg(v, l, Endplate::Inf)?)))
        .collect();
    let mut best: Option<Cobb> = None;
    for &(u, tu) in &sup {
        for &(l, tl) in inf.iter().filter(|(l, _)| *l > u) {
            let angle = wrap_deg(tu - tl).abs();
            if best.is_none_or(|b| angle > b.angle) {
                best = Some(Cobb {
                    angle,
                    upper: u,
                    lower: l,
                });
            }
        }
    }
    best
}

/// `pelvic_obliquity_deg`: tilt of the FH_right -> FH_left line on an AP view.
pub fn pelvic_obliquity_deg(v: &ViewLandmarks) -> Option<f64> {
    let v = ap_signed(v)?;
    let r = v.get(Landmark::FemoralHead(Side::Right))?;
    let l = v.get(Landmark::FemoralHead(Side::Left))?;
    Some(deg((l.y - r.y).atan2(l.x - r.x)))
}

/// All metrics of one reader at one timepoint.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metrics {
    values: BTreeMap<Metric, f64>,
    /// End vertebrae of the Cobb angle.
    pub cobb_levels: Option<(Level, Level)>,
    /// |C7PL-CSVL| in mm, known even where the signed value is not.
    pub c7pl_csvl_magnitude_mm: Option<f64>,
}

impl Metrics {
    /// Computes every metric from a lateral and an AP view (either may be absent).
    pub fn compute(
        lateral: Option<&ViewLandmarks>,
        ap: Option<&ViewLandmarks>,
        opts: &MetricOptions,
    ) -> Metrics {
        let mut m = Metrics::default();
        if let Some(v) = lateral {
            m.set(Metric::SvaMm, sva_mm(v));
            m.set(Metric::SsDeg, ss_deg(v));
            m.set(Metric::PtDeg, pt_deg(v));
            let pi = pi_deg(v);
            let ll = ll_deg(v);
            m.set(Metric::PiDeg, pi);
            m.set(Metric::LlDeg, ll);
            m.set(Metric::L4S1LordosisDeg, l4_s1_lordosis_deg(v));
            m.set(Metric::TkDeg, tk_deg(v, opts));
            m.set(Metric::PiLlDeg, pi.zip(ll).map(|(p, l)| p - l));
            m.set(Metric::TpaDeg, tpa_deg(v));
            for n in 1..=5 {
                m.set(Metric::WedgeAngleDeg(n), wedge_angle_deg(v, Level::L(n)));
                m.set(Metric::WedgeIndexPct(n), wedge_index_pct(v, Level::L(n)));
            }
        }
        if let Some(v) = ap {
            m.set(Metric::C7plCsvlMm, c7pl_csvl_mm(v));
            let c = cobb(v);
            m.set(Metric::CobbDeg, c.map(|c| c.angle));
            m.cobb_levels = c.map(|c| (c.upper, c.lower));
            m.set(Metric::PelvicObliquityDeg, pelvic_obliquity_deg(v));
            m.c7pl_csvl_magnitude_mm = c7pl_csvl_magnitude_mm(v);
        }
        m
    }

    /// Rebuilds metrics from stored values (e.g. a shard's table), keeping only finite ones.
    pub fn from_parts(
        values: impl IntoIterator<Item = (Metric, f64)>,
        cobb_levels: Option<(Level, Level)>,
        c7pl_csvl_magnitude_mm: Option<f64>,
    ) -> Metrics {
        let mut m = Metrics {
            values: BTreeMap::new(),
            cobb_levels,
            c7pl_csvl_magnitude_mm,
        };
        for (k, v) in values {
            m.set(k, Some(v));
        }
        m
    }

    fn set(&mut self, k: Metric, v: Option<f64>) {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            self.values.insert(k, v);
        }
    }

    /// A metric's value, `None` when not computable.
    pub fn get(&self, k: Metric) -> Option<f64> {
        self.values.get(&k).copied()
    }

    /// Every metric in column order with its value or `None`.
    pub fn iter(&self) -> impl Iterator<Item = (Metric, Option<f64>)> + '_ {
        Metric::all().into_iter().map(|k| (k, self.get(k)))
    }
}
