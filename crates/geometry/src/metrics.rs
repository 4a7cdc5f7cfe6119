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
    /// `l{n}_ant_height_mm`, n in 1..=5
    AntHeightMm(u8),
    /// `l{n}_post_height_mm`, n in 1..=5
    PostHeightMm(u8),
    /// `{u}_{l}_disc_angle_deg`
    DiscAngleDeg(Segment),
    /// `{u}_{l}_segmental_lordosis_deg`
    SegmentalLordosisDeg(Segment),
    /// `{u}_{l}_disc_height_ant_mm`
    DiscHeightAntMm(Segment),
    /// `{u}_{l}_disc_height_post_mm`
    DiscHeightPostMm(Segment),
    /// `{u}_{l}_disc_height_index`
    DiscHeightIndex(Segment),
    /// `{u}_{l}_slip_pct`
    SlipPct(Segment),
}

/// A lateral motion segment: the disc between `upper` and the level below it, one of
/// T12-L1, L1-L2 .. L4-L5, L5-S1 (`landmarks.md` section 5).
///
/// ```
/// use plumbline_geometry::{Level, Segment};
/// let s = Segment::parse("l5_s1").unwrap();
/// assert_eq!((s.upper(), s.lower()), (Level::L(5), Level::S1));
/// assert_eq!(Segment::all().map(Segment::name).join(","),
///            "t12_l1,l1_l2,l2_l3,l3_l4,l4_l5,l5_s1");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Segment(Level);

impl Segment {
    /// The six segments, head to foot.
    pub fn all() -> [Segment; 6] {
        [
            Segment(Level::T(12)),
            Segment(Level::L(1)),
            Segment(Level::L(2)),
            Segment(Level::L(3)),
            Segment(Level::L(4)),
            Segment(Level::L(5)),
        ]
    }

    /// The vertebra above the disc.
    pub fn upper(self) -> Level {
        self.0
    }

    /// The vertebra (or S1) below the disc.
    pub fn lower(self) -> Level {
        match self.0 {
            Level::T(12) => Level::L(1),
            Level::L(5) => Level::S1,
            Level::L(n) => Level::L(n + 1),
            other => other,
        }
    }

    /// Column prefix, e.g. `l4_l5`.
    pub fn name(self) -> String {
        format!("{}_{}", self.upper(), self.lower()).to_ascii_lowercase()
    }

    /// Parses a column prefix such as `l4_l5` (case-insensitive, `-` accepted for `_`).
    pub fn parse(s: &str) -> Option<Segment> {
        let s = s.trim().to_ascii_lowercase().replace('-', "_");
        Segment::all().into_iter().find(|g| g.name() == s)
    }
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
        v.extend((1..=5).map(Metric::AntHeightMm));
        v.extend((1..=5).map(Metric::PostHeightMm));
        for g in Segment::all() {
            v.extend([
                Metric::DiscAngleDeg(g),
                Metric::SegmentalLordosisDeg(g),
                Metric::DiscHeightAntMm(g),
                Metric::DiscHeightPostMm(g),
                Metric::DiscHeightIndex(g),
                Metric::SlipPct(g),
            ]);
        }
        v
    }

    /// The position of the metric in [`Metric::all`] (`None` for a metric outside that
    /// list, such as `WedgeAngleDeg(9)`, which no reading computes). [`Metrics`] keeps its
    /// values by this index: a look-up is one load, where a sorted map of 68 entries cost
    /// 7.6% of a run on 5000 generated patients (tables and statistics ask for every
    /// metric of every reading several times).
    pub fn index(self) -> Option<usize> {
        let n = |n: u8| (1..=5).contains(&n).then(|| usize::from(n) - 1);
        let segment = |g: Segment, k: usize| {
            Segment::all()
                .iter()
                .position(|&x| x == g)
                .map(|i| 32 + i * 6 + k)
        };
        match self {
            Metric::SvaMm => Some(0),
            Metric::SsDeg => Some(1),
            Metric::PtDeg => Some(2),
            Metric::PiDeg => Some(3),
            Metric::LlDeg => Some(4),
            Metric::L4S1LordosisDeg => Some(5),
            Metric::TkDeg => Some(6),
            Metric::PiLlDeg => Some(7),
            Metric::TpaDeg => Some(8),
            Metric::WedgeAngleDeg(i) => n(i).map(|i| 9 + i),
            Metric::WedgeIndexPct(i) => n(i).map(|i| 14 + i),
            Metric::C7plCsvlMm => Some(19),
            Metric::CobbDeg => Some(20),
            Metric::PelvicObliquityDeg => Some(21),
            Metric::AntHeightMm(i) => n(i).map(|i| 22 + i),
            Metric::PostHeightMm(i) => n(i).map(|i| 27 + i),
            Metric::DiscAngleDeg(g) => segment(g, 0),
            Metric::SegmentalLordosisDeg(g) => segment(g, 1),
            Metric::DiscHeightAntMm(g) => segment(g, 2),
            Metric::DiscHeightPostMm(g) => segment(g, 3),
            Metric::DiscHeightIndex(g) => segment(g, 4),
            Metric::SlipPct(g) => segment(g, 5),
        }
    }

    /// The motion segment a per-segment metric belongs to; `None` for the others.
    pub fn segment(self) -> Option<Segment> {
        match self {
            Metric::DiscAngleDeg(g)
            | Metric::SegmentalLordosisDeg(g)
            | Metric::DiscHeightAntMm(g)
            | Metric::DiscHeightPostMm(g)
            | Metric::DiscHeightIndex(g)
            | Metric::SlipPct(g) => Some(g),
            _ => None,
        }
    }

    /// The unit: `mm`, `deg`, `%` or `1` (a ratio), as UCUM writes them.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::SvaMm
            | Metric::C7plCsvlMm
            | Metric::AntHeightMm(_)
            | Metric::PostHeightMm(_)
            | Metric::DiscHeightAntMm(_)
            | Metric::DiscHeightPostMm(_) => "mm",
            Metric::WedgeIndexPct(_) | Metric::SlipPct(_) => "%",
            Metric::DiscHeightIndex(_) => "1",
            _ => "deg",
        }
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
            Metric::AntHeightMm(n) => format!("l{n}_ant_height_mm"),
            Metric::PostHeightMm(n) => format!("l{n}_post_height_mm"),
            Metric::DiscAngleDeg(g) => format!("{}_disc_angle_deg", g.name()),
            Metric::SegmentalLordosisDeg(g) => format!("{}_segmental_lordosis_deg", g.name()),
            Metric::DiscHeightAntMm(g) => format!("{}_disc_height_ant_mm", g.name()),
            Metric::DiscHeightPostMm(g) => format!("{}_disc_height_post_mm", g.name()),
            Metric::DiscHeightIndex(g) => format!("{}_disc_height_index", g.name()),
            Metric::SlipPct(g) => format!("{}_slip_pct", g.name()),
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

/// `l{n}_ant_height_mm` and `l{n}_post_height_mm`: the corner-to-corner heights of a
/// body on a lateral view (anterior, posterior). Distances need no direction.
pub fn body_heights_mm(v: &ViewLandmarks, level: Level) -> (Option<f64>, Option<f64>) {
    if v.kind() != ViewKind::Lateral {
        return (None, None);
    }
    let h = |c: Corner| {
        Some(
            v.get(Landmark::Corner(level, Endplate::Sup, c))?
                .dist(v.get(Landmark::Corner(level, Endplate::Inf, c))?),
        )
    };
    (h(Corner::Ant), h(Corner::Post))
}

/// The endplate of a segment's lower level that faces the disc: the superior one.
fn below(g: Segment) -> (Level, Endplate) {
    (g.lower(), Endplate::Sup)
}

/// The endplate of a segment's lower level at the far side of its body: the inferior
/// one, except for S1, whose superior endplate stands in.
fn lower_far(g: Segment) -> (Level, Endplate) {
    match g.lower() {
        Level::S1 => (Level::S1, Endplate::Sup),
        l => (l, Endplate::Inf),
    }
}

/// `{u}_{l}_disc_angle_deg`: tilt(U inferior) - tilt(L superior), lordotic positive.
pub fn disc_angle_deg(v: &ViewLandmarks, g: Segment) -> Option<f64> {
    tilt_diff(lateral(v)?, (g.upper(), Endplate::Inf), below(g))
}

/// `{u}_{l}_segmental_lordosis_deg`: tilt(U superior) - tilt(L inferior) (for L5-S1,
/// tilt(S1 superior)).
pub fn segmental_lordosis_deg(v: &ViewLandmarks, g: Segment) -> Option<f64> {
    tilt_diff(lateral(v)?, (g.upper(), Endplate::Sup), lower_far(g))
}

/// The disc of one segment on a lateral view: anterior and posterior heights (mm),
/// the disc height index and the slip (%). Each is `None` when a corner it needs is
/// missing. All are made of distances and a projection onto L's own endplate, so none
/// needs the view's direction.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Disc {
    /// `{u}_{l}_disc_height_ant_mm`: `{U}_inf_ant` to `{L}_sup_ant`.
    pub height_ant_mm: Option<f64>,
    /// `{u}_{l}_disc_height_post_mm`: `{U}_inf_post` to `{L}_sup_post`.
    pub height_post_mm: Option<f64>,
    /// `{u}_{l}_disc_height_index`: (ant + post) / (2 x depth of U's inferior endplate).
    pub height_index: Option<f64>,
    /// `{u}_{l}_slip_pct`: `({U}_inf_post - {L}_sup_post) . e / d x 100` with e the unit
    /// vector along L's superior endplate (posterior -> anterior) and d its length.
    pub slip_pct: Option<f64>,
}

/// The disc measures of segment `g` (see [`Disc`]).
pub fn disc(v: &ViewLandmarks, g: Segment) -> Disc {
    if v.kind() != ViewKind::Lateral {
        return Disc::default();
    }
    let p = |l: Level, e: Endplate, c: Corner| v.get(Landmark::Corner(l, e, c));
    let (u, l) = (g.upper(), g.lower());
    let ui_a = p(u, Endplate::Inf, Corner::Ant);
    let ui_p = p(u, Endplate::Inf, Corner::Post);
    let ls_a = p(l, Endplate::Sup, Corner::Ant);
    let ls_p = p(l, Endplate::Sup, Corner::Post);
    let ant = ui_a.zip(ls_a).map(|(a, b)| a.dist(b));
    let post = ui_p.zip(ls_p).map(|(a, b)| a.dist(b));
    let depth = ui_a.zip(ui_p).map(|(a, b)| a.dist(b)).filter(|d| *d > 0.0);
    let height_index = match (ant, post, depth) {
        (Some(a), Some(b), Some(d)) => Some((a + b) / (2.0 * d)),
        _ => None,
    };
    let slip_pct = match (ui_p, ls_p, ls_a) {
        (Some(up), Some(lp), Some(la)) => {
            let (ex, ey) = (la.x - lp.x, la.y - lp.y);
            let d = ex.hypot(ey);
            // (w . e/d) / d x 100 with w = U_inf_post - L_sup_post.
            (d > 0.0).then(|| ((up.x - lp.x) * ex + (up.y - lp.y) * ey) / (d * d) * 100.0)
        }
        _ => None,
    };
    Disc {
        height_ant_mm: ant,
        height_post_mm: post,
        height_index,
        slip_pct,
    }
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

/// How many metrics there are ([`Metric::all`]).
pub const METRIC_COUNT: usize = 68;

/// All metrics of one reader at one timepoint.
#[derive(Clone, Debug, PartialEq)]
pub struct Metrics {
    /// By [`Metric::index`]; `None` when not computable.
    values: [Option<f64>; METRIC_COUNT],
    /// End vertebrae of the Cobb angle.
    pub cobb_levels: Option<(Level, Level)>,
    /// |C7PL-CSVL| in mm, known even where the signed value is not.
    pub c7pl_csvl_magnitude_mm: Option<f64>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            values: [None; METRIC_COUNT],
            cobb_levels: None,
            c7pl_csvl_magnitude_mm: None,
        }
    }
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
                let (ant, post) = body_heights_mm(v, Level::L(n));
                m.set(Metric::AntHeightMm(n), ant);
                m.set(Metric::PostHeightMm(n), post);
            }
            for g in Segment::all() {
                m.set(Metric::DiscAngleDeg(g), disc_angle_deg(v, g));
                m.set(
                    Metric::SegmentalLordosisDeg(g),
                    segmental_lordosis_deg(v, g),
                );
                let d = disc(v, g);
                m.set(Metric::DiscHeightAntMm(g), d.height_ant_mm);
                m.set(Metric::DiscHeightPostMm(g), d.height_post_mm);
                m.set(Metric::DiscHeightIndex(g), d.height_index);
                m.set(Metric::SlipPct(g), d.slip_pct);
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
            cobb_levels,
            c7pl_csvl_magnitude_mm,
            ..Metrics::default()
        };
        for (k, v) in values {
            m.set(k, Some(v));
        }
        m
    }

    /// Sets a finite value (a metric outside [`Metric::all`] has no place and is dropped).
    fn set(&mut self, k: Metric, v: Option<f64>) {
        if let (Some(v), Some(i)) = (v.filter(|v| v.is_finite()), k.index()) {
            self.values[i] = Some(v);
        }
    }

    /// A metric's value, `None` when not computable.
    pub fn get(&self, k: Metric) -> Option<f64> {
        self.values[k.index()?]
    }

    /// Every metric in column order with its value or `None`.
    pub fn iter(&self) -> impl Iterator<Item = (Metric, Option<f64>)> + '_ {
        Metric::all().into_iter().map(|k| (k, self.get(k)))
    }
}
