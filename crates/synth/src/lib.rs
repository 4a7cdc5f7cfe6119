//! Plumbline's synthetic cohort generator: a cohort of spine-surgery patients with
//! whole-spine DX radiographs (real pixel data) and landmark SRs (TID 1500), written as
//! real DICOM, plus the clinical table and the truth table of every metric.
//!
//! The cohort reproduces the published shares of Wang et al. 2022 (J Pain Res, doi
//! 10.2147/JPR.S341317) and mixes every variant the data contract allows (spacing
//! sources, anisotropic pixels, orientations, SR per study or per image, a second reader,
//! missing landmarks, RLE-compressed pixel data). The same seed gives byte-identical
//! files.
//!
//! ```no_run
//! use plumbline_synth::{generate, ImageSize, Schedule, SynthOptions};
//! let summary = generate(&SynthOptions {
//!     patients: 8,
//!     seed: 1,
//!     out: "cohort".into(),
//!     image_size: ImageSize::Small,
//!     plant_errors: false,
//!     schedule: Schedule::Discectomy,
//! })
//! .unwrap();
//! println!("{} files", summary.files);
//! ```

pub mod cohort;
pub mod dicom_writer;
pub mod raster;

use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate};
use plumbline_geometry::{
    Landmark, MetricOptions, Metrics, PatientDirection, Point, Spacing, ViewKind, ViewLandmarks,
};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;

pub use crate::cohort::Schedule;
use crate::cohort::{CohortDesign, MmLandmarks, PatientModel};
use crate::dicom_writer::{
    ImageInfo, PatientInfo, SpacingInfo, SrInfo, SrPoint, StudyInfo, View, WriteError, format_ds,
    hashed_uid, parse_ds,
};
use crate::raster::Canvas;

/// Pixel matrix of the generated radiographs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ImageSize {
    /// 320 x 136 pixels (about 2.4 mm): for committed fixtures and fast tests.
    #[default]
    Small,
    /// 7000 x 3000 pixels (about 0.11 mm), the size of a real whole-spine film.
    Clinical,
}

impl ImageSize {
    /// Every size, in the order a command line lists them.
    pub const ALL: [ImageSize; 2] = [ImageSize::Small, ImageSize::Clinical];

    /// The option value: `small`, `clinical`.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageSize::Small => "small",
            ImageSize::Clinical => "clinical",
        }
    }

    fn rows_cols(self) -> (u32, u32) {
        match self {
            ImageSize::Small => (320, 136),
            ImageSize::Clinical => (7000, 3000),
        }
    }
}

impl std::str::FromStr for ImageSize {
    type Err = UnknownValue;

    /// Parses an option value of [`ImageSize::as_str`].
    fn from_str(s: &str) -> Result<Self, UnknownValue> {
        parse_value("image size", s, &ImageSize::ALL, ImageSize::as_str)
    }
}

/// A name that is none of an option's values (see the `FromStr` of [`ImageSize`] and
/// [`Schedule`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}: expected one of {expected}")]
pub struct UnknownValue {
    /// What the value names, e.g. `image size`.
    pub what: &'static str,
    /// The value as given.
    pub value: String,
    /// The valid values, comma-separated.
    pub expected: String,
}

/// The one of `all` whose `name` is `s`.
pub(crate) fn parse_value<T: Copy>(
    what: &'static str,
    s: &str,
    all: &[T],
    name: fn(T) -> &'static str,
) -> Result<T, UnknownValue> {
    all.iter()
        .copied()
        .find(|v| name(*v) == s)
        .ok_or_else(|| UnknownValue {
            what,
            value: s.to_string(),
            expected: all.iter().map(|v| name(*v)).collect::<Vec<_>>().join(", "),
        })
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct SynthOptions {
    /// Number of patients.
    pub patients: usize,
    /// Seed; the same seed gives byte-identical files.
    pub seed: u64,
    /// Output folder; must not already hold a `dicom/` folder.
    pub out: PathBuf,
    /// Pixel matrix.
    pub image_size: ImageSize,
    /// Plant one gross landmark error (see [`Planted`]) in reader Alpha's reading of every
    /// fifth patient (indices 2, 7, 12, ...), the kinds in turn; `design.csv` says which.
    /// Off, the cohort is exactly the one without the option. An error is planted only
    /// where its timepoint exists: never under [`Schedule::Survey`].
    pub plant_errors: bool,
    /// Visit schedule and timepoint names (see [`Schedule`]):
    /// - `Discectomy` (the default): `preop` 1-59 days before surgery, `postop` 1-7 days,
    ///   `m3` 80-100 and `m6` 170-200 days after; the cohort of the Wang 2022 design.
    /// - `Fusion`: the same four spine shapes at `preop`, `w6`, `w52`, `w104`, on days
    ///   -10, 42, 364 and 728 from surgery, each within 3 days; the disc just above the
    ///   fused segments (`fusion_to_sacrum`, `fused_levels` of `clinical.csv`) loses up to
    ///   30% of its height by `w104`.
    /// - `Survey`: one study per patient, `baseline`, with the preop shape, on the day the
    ///   discectomy preop study would be (for a cross-sectional study; `clinical.csv`
    ///   keeps its `surgery_date`, and `design.csv`'s `balanced_from` is empty).
    pub schedule: Schedule,
}

/// A gross error of the kind readers make (`landmarks.md` section 7), planted on the
/// lateral view of one reading when [`SynthOptions::plant_errors`] is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Planted {
    /// The anterior and posterior corners of one endplate swapped (at postop).
    SwappedCorners,
    /// L2 and L4 named in each other's place, corners and centroids (at postop).
    VertebraOutOfOrder,
    /// FH_right clicked 20 mm above the S1 endplate (at postop). The hip axis moves with
    /// it, so that reading's PI is off too: it also trips the PI check.
    FemoralHeadAboveS1,
    /// Both femoral heads turned 15 degrees about the S1 endplate midpoint, so PI changes
    /// by 15 degrees (at m3).
    PiJump,
}

impl Planted {
    const ALL: [Planted; 4] = [
        Planted::SwappedCorners,
        Planted::VertebraOutOfOrder,
        Planted::FemoralHeadAboveS1,
        Planted::PiJump,
    ];

    /// The name in `design.csv` (the plausibility check it should trip, where they differ).
    pub fn as_str(self) -> &'static str {
        match self {
            Planted::SwappedCorners => "swapped_corners",
            Planted::VertebraOutOfOrder => "vertebra_out_of_order",
            Planted::FemoralHeadAboveS1 => "femoral_head_above_s1",
            Planted::PiJump => "pi_jump",
        }
    }

    /// The error planted in patient `index`'s reading, and the timepoint index (into the
    /// schedule's timepoints) it is planted at.
    fn for_patient(index: usize) -> Option<(Planted, usize)> {
        (index % 5 == 2).then(|| {
            let kind = Planted::ALL[(index / 5) % 4];
            (kind, if kind == Planted::PiJump { 2 } else { 1 })
        })
    }

    /// Plants the error in lateral mm landmarks; false when the landmarks it needs are
    /// missing (a reader skipped them), so nothing was planted.
    fn plant(self, pts: &mut [(Landmark, Point)]) -> bool {
        let find = |pts: &[(Landmark, Point)], name: &str| {
            let lm: Landmark = name.parse().expect("canonical");
            pts.iter().position(|(l, _)| *l == lm)
        };
        let rename = |pts: &mut [(Landmark, Point)], a: &str, b: &str| {
            let (a, b): (Landmark, Landmark) = (a.parse().expect("a"), b.parse().expect("b"));
            for (l, _) in pts.iter_mut() {
                if *l == a {
                    *l = b;
                } else if *l == b {
                    *l = a;
                }
            }
        };
        match self {
            Planted::SwappedCorners => {
                for level in ["L3", "L2", "L4", "L1", "L5"] {
                    let (a, p) = (format!("{level}_sup_ant"), format!("{level}_sup_post"));
                    if find(pts, &a).is_some() && find(pts, &p).is_some() {
                        rename(pts, &a, &p);
                        return true;
                    }
                }
                false
            }
            Planted::VertebraOutOfOrder => {
                let corners = ["sup_ant", "sup_post", "inf_ant", "inf_post"];
                if corners.iter().any(|c| {
                    find(pts, &format!("L2_{c}")).is_none()
                        || find(pts, &format!("L4_{c}")).is_none()
                }) {
                    return false;
                }
                for c in corners.iter().chain(&["centroid"]) {
                    rename(pts, &format!("L2_{c}"), &format!("L4_{c}"));
                }
                true
            }
            Planted::FemoralHeadAboveS1 => {
                let (Some(a), Some(p), Some(r)) = (
                    find(pts, "S1_sup_ant"),
                    find(pts, "S1_sup_post"),
                    find(pts, "FH_right"),
                ) else {
                    return false;
                };
                pts[r].1.y = pts[a].1.y.max(pts[p].1.y) + 20.0;
                true
            }
            Planted::PiJump => {
                let (Some(a), Some(p), Some(l), Some(r)) = (
                    find(pts, "S1_sup_ant"),
                    find(pts, "S1_sup_post"),
                    find(pts, "FH_left"),
                    find(pts, "FH_right"),
                ) else {
                    return false;
                };
                let m = pts[a].1.mid(pts[p].1);
                let (s, c) = 15f64.to_radians().sin_cos();
                for i in [l, r] {
                    let (dx, dy) = (pts[i].1.x - m.x, pts[i].1.y - m.y);
                    pts[i].1 = Point::new(m.x + c * dx - s * dy, m.y + s * dx + c * dy);
                }
                true
            }
        }
    }
}

/// What was written.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// DICOM files written.
    pub files: usize,
    /// Bytes of DICOM written.
    pub bytes: u64,
    /// Truth rows written.
    pub truth_rows: usize,
}

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// The output already holds a cohort.
    #[error(
        "{} already exists; plumbline-synth never overwrites files: choose a new --out folder or remove that one yourself",
        .0.display()
    )]
    Exists(PathBuf),
    /// Writing a DICOM file failed.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// Writing a table failed.
    #[error("{}: {source}", path.display())]
    Table {
        /// The table's path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: csv::Error,
    },
    /// Creating a folder failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The two readers. Alpha reads every study; Beta re-reads some.
pub const OBSERVERS: [&str; 2] = ["Reader^Alpha", "Reader^Beta"];

/// One row of `truth.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct TruthRow {
    /// PatientID.
    pub patient_id: String,
    /// Timepoint name.
    pub timepoint: &'static str,
    /// Person Observer Name as stored.
    pub observer: String,
    /// Metric column name.
    pub metric: String,
    /// Value computed by `plumbline-geometry` from the stored coordinates.
    pub value: f64,
}

/// Converts days since 1970-01-01 to `YYYYMMDD` (proleptic Gregorian).
///
/// # Panics
///
/// Beyond chrono's dates (about 262,000 years either side of year 0); the generator's
/// dates lie within a century of today.
pub fn yyyymmdd(days: i64) -> String {
    let d = date(days);
    format!("{:04}{:02}{:02}", d.year(), d.month(), d.day())
}

/// Converts days since 1970-01-01 to `YYYY-MM-DD`.
///
/// # Panics
///
/// Beyond chrono's dates, as [`yyyymmdd`].
pub fn iso_date(days: i64) -> String {
    let d = date(days);
    format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
}

/// The date `days` after 1970-01-01.
fn date(days: i64) -> NaiveDate {
    i32::try_from(days)
        .ok()
        .and_then(NaiveDate::from_epoch_days)
        .unwrap_or_else(|| panic!("day {days} from 1970-01-01 is beyond chrono's dates"))
}

/// Pixel geometry of one generated view: how mm map to (column, row).
struct Placement {
    spacing: SpacingInfo,
    /// Effective spacing a reader derives (spec section 4), from the stored strings.
    effective: Spacing,
    /// +1 when columns increase toward +x of the spec frame.
    col_sign: f64,
    orientation: Option<(String, String)>,
    c0: f64,
    r0: f64,
    rows: u32,
    cols: u32,
}

impl Placement {
    fn to_px(&self, p: Point) -> (f64, f64) {
        (
            self.c0 + self.col_sign * p.x / self.effective.col,
            self.r0 - p.y / self.effective.row,
        )
    }
}

/// Where a view's content goes: a spacing that fits it (one of the spacing sources of spec
/// section 4, sometimes anisotropic), an orientation (sometimes flipped, sometimes
/// unknown), and the offsets that centre it.
fn choose_placement(
    rng: &mut ChaCha8Rng,
    kind: ViewKind,
    pts: &MmLandmarks,
    size: ImageSize,
) -> Placement {
    let (rows, cols) = size.rows_cols();
    let (x0, x1, y0, y1) = extent(pts);
    let margin = 45.0; // mm: room for the femoral-head discs and soft tissue
    let (need_h, need_w) = (y1 - y0 + 2.0 * margin, x1 - x0 + 2.0 * margin);
    let aniso = if rng.random_bool(0.3) { 0.9 } else { 1.0 };
    // Round the wanted spacing to 4 decimals, large enough for the content to fit.
    let base = (760.0 / f64::from(rows))
        .max(need_h / f64::from(rows))
        .max(need_w / (f64::from(cols) * aniso));
    let base = (base * 1e4).ceil() / 1e4;
    let want = (base, ((base * aniso) * 1e4).ceil() / 1e4);
    let (spacing, effective) = choose_spacing(rng, want);
    let (col_sign, orientation) = choose_orientation(rng, kind);
    // Centre the content.
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    let c0 = f64::from(cols) / 2.0 - col_sign * cx / effective.col;
    let r0 = f64::from(rows) / 2.0 + cy / effective.row;
    Placement {
        spacing,
        effective,
        col_sign,
        orientation,
        c0,
        r0,
        rows,
        cols,
    }
}

/// `(min x, max x, min y, max y)` of the landmarks, in mm.
fn extent(pts: &MmLandmarks) -> (f64, f64, f64, f64) {
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (_, p) in pts {
        x0 = x0.min(p.x);
        x1 = x1.max(p.x);
        y0 = y0.min(p.y);
        y1 = y1.max(p.y);
    }
    (x0, x1, y0, y1)
}

/// `x` as a reader sees it once it is stored as a Decimal String.
fn ds(x: f64) -> f64 {
    parse_ds(&format_ds(x)).expect("a finite number has a DS form")
}

/// One of the spacing sources of spec section 4, in turn by chance, for the wanted
/// `(row, column)` spacing at the patient: the attributes as stored, and the effective
/// spacing a reader derives from them.
fn choose_spacing(rng: &mut ChaCha8Rng, want: (f64, f64)) -> (SpacingInfo, Spacing) {
    match rng.random_range(0..3) {
        // Pixel Spacing (calibrated), and an Imager Pixel Spacing 10% larger.
        0 => {
            let ps = (ds(want.0), ds(want.1));
            let ips = (ds(ps.0 * 1.1), ds(ps.1 * 1.1));
            (
                SpacingInfo {
                    imager_pixel_spacing: ips,
                    pixel_spacing: Some(ps),
                    magnification: None,
                },
                Spacing {
                    row: ps.0,
                    col: ps.1,
                },
            )
        }
        // Imager Pixel Spacing with an Estimated Radiographic Magnification Factor.
        1 => {
            let mag = ds(rng.random_range(105..125) as f64 / 100.0);
            let ips = (
                ds(((want.0 * mag) * 1e5).round() / 1e5),
                ds(((want.1 * mag) * 1e5).round() / 1e5),
            );
            (
                SpacingInfo {
                    imager_pixel_spacing: ips,
                    pixel_spacing: None,
                    magnification: Some(mag),
                },
                Spacing {
                    row: ips.0 / mag,
                    col: ips.1 / mag,
                },
            )
        }
        // Imager Pixel Spacing only.
        _ => {
            let ips = (ds(want.0), ds(want.1));
            (
                SpacingInfo {
                    imager_pixel_spacing: ips,
                    pixel_spacing: None,
                    magnification: None,
                },
                Spacing {
                    row: ips.0,
                    col: ips.1,
                },
            )
        }
    }
}

/// Whether the columns run toward +x of the spec frame (`+1.0`) or are flipped
/// (`-1.0`), and the Patient Orientation stored for that (`None`: unknown, 15%).
fn choose_orientation(rng: &mut ChaCha8Rng, kind: ViewKind) -> (f64, Option<(String, String)>) {
    let flip = rng.random_bool(0.5);
    let unknown = rng.random_bool(0.15);
    let col_sign = if flip { -1.0 } else { 1.0 };
    let letter = match (kind, flip) {
        (ViewKind::Lateral, false) => "A",
        (ViewKind::Lateral, true) => "P",
        (ViewKind::Ap, false) => "L",
        (ViewKind::Ap, true) => "R",
    };
    let orientation = (!unknown).then(|| (letter.to_string(), "F".to_string()));
    (col_sign, orientation)
}

fn render(kind: ViewKind, pts: &MmLandmarks, pl: &Placement) -> Canvas {
    let mut canvas = Canvas::new(pl.rows, pl.cols, 250);
    let get = |name: String| {
        let lm: Landmark = name.parse().expect("generator uses canonical names");
        pts.iter().find(|(k, _)| *k == lm).map(|(_, p)| *p)
    };
    let px = |p: Point| pl.to_px(p);
    let mm_to_px = 1.0 / pl.effective.row;
    // Soft tissue: a wide band around the column.
    let (xa, xb, y0, y1) = extent(pts);
    let band = [
        Point::new(xa - 35.0, y0 - 40.0),
        Point::new(xb + 35.0, y0 - 40.0),
        Point::new(xb + 25.0, y1 + 40.0),
        Point::new(xa - 25.0, y1 + 40.0),
    ];
    canvas.fill_polygon(&band.map(px), 700);
    for side in ["left", "right"] {
        if let Some(h) = get(format!("FH_{side}")) {
            canvas.fill_disc(px(h), 24.0 * mm_to_px, 2100);
        }
    }
    let (pos, neg) = match kind {
        ViewKind::Lateral => ("ant", "post"),
        ViewKind::Ap => ("left", "right"),
    };
    // Sacrum: S1 endplate extended 35 mm caudally.
    if let (Some(a), Some(b)) = (get(format!("S1_sup_{pos}")), get(format!("S1_sup_{neg}"))) {
        let (dx, dy) = (a.x - b.x, a.y - b.y);
        let n = dx.hypot(dy);
        let down = (dy / n * 35.0, -dx / n * 35.0);
        let quad = [
            b,
            a,
            Point::new(a.x + down.0 * 0.6, a.y + down.1),
            Point::new(b.x + down.0, b.y + down.1),
        ];
        canvas.fill_polygon(&quad.map(px), 2300);
    }
    for level in plumbline_geometry::Level::thoracolumbar() {
        let c = |e: &str, s: &str| get(format!("{level}_{e}_{s}"));
        if let (Some(a), Some(b), Some(cc), Some(d)) =
            (c("sup", neg), c("sup", pos), c("inf", pos), c("inf", neg))
        {
            canvas.fill_polygon(&[a, b, cc, d].map(px), 2500);
        }
    }
    if let Some(c7) = get("C7_centroid".into()) {
        let h = 8.0;
        let sq = [
            Point::new(c7.x - 2.0 * h, c7.y + h),
            Point::new(c7.x + 2.0 * h, c7.y + h),
            Point::new(c7.x + 2.0 * h, c7.y - h),
            Point::new(c7.x - 2.0 * h, c7.y - h),
        ];
        canvas.fill_polygon(&sq.map(px), 2400);
    }
    canvas
}

/// Everything one patient contributes.
struct PatientOutput {
    clinical: [String; 9],
    design: [String; 7],
    truth: Vec<TruthRow>,
    files: usize,
    bytes: u64,
}

fn write_patient(
    opts: &SynthOptions,
    index: usize,
    design: cohort::PatientDesign,
) -> Result<PatientOutput, SynthError> {
    let pid = format!("P{:04}", index + 1);
    let mut rng = ChaCha8Rng::seed_from_u64(
        opts.seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(index as u64 + 1),
    );
    let model = PatientModel::new(design, &mut rng);
    let mut out = PatientOutput {
        clinical: clinical_row(&pid, &model),
        design: design_row(&pid, &model, opts.schedule.timepoints()),
        truth: Vec::new(),
        files: 0,
        bytes: 0,
    };
    let writer = PatientWriter {
        opts,
        index,
        seed: opts.seed.to_string(),
        patient: PatientInfo {
            patient_id: pid.clone(),
            patient_name: format!("SYNTH^{pid}"),
            birth_date: yyyymmdd(
                model.clinical.surgery_day - i64::from(model.clinical.age) * 365 - 100,
            ),
            sex: model.clinical.sex.to_string(),
        },
        pid,
        planted: opts
            .plant_errors
            .then(|| Planted::for_patient(index))
            .flatten(),
    };
    for t in 0..opts.schedule.timepoints().len() {
        writer.write_study(&mut rng, &model, t, &mut out)?;
    }
    Ok(out)
}

/// The patient's row of `clinical.csv`.
fn clinical_row(pid: &str, model: &PatientModel) -> [String; 9] {
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    let c = &model.clinical;
    [
        pid.to_string(),
        iso_date(c.surgery_day),
        c.level.to_string(),
        c.side.to_string(),
        c.sex.to_string(),
        c.age.to_string(),
        yes_no(c.hip_pain),
        yes_no(c.fusion_to_sacrum),
        c.fused_levels.to_string(),
    ]
}

/// The patient's row of `design.csv`; `planted_error` (index 5) is filled in when the
/// error is planted.
fn design_row(pid: &str, model: &PatientModel, timepoints: &[&str]) -> [String; 7] {
    let d = &model.design;
    let coronal = match d.design {
        cohort::Design::Coronal | cohort::Design::Biplanar => {
            if d.coronal_away {
                "away"
            } else {
                "toward"
            }
        }
        _ => "",
    };
    let sagittal = match d.design {
        cohort::Design::Sagittal | cohort::Design::Biplanar => {
            if d.sagittal_forward {
                "forward"
            } else {
                "backward"
            }
        }
        _ => "",
    };
    [
        pid.to_string(),
        d.design.as_str().to_string(),
        coronal.to_string(),
        sagittal.to_string(),
        timepoints
            .get(d.recovered_at)
            .filter(|_| d.recovered_at > 0)
            .map_or_else(String::new, |tp| tp.to_string()),
        String::new(),
        model
            .anatomy
            .slip_pct
            .map_or_else(String::new, |p| format!("{p:.1}")),
    ]
}

/// One patient being written: what every study of the patient shares.
struct PatientWriter<'a> {
    opts: &'a SynthOptions,
    index: usize,
    pid: String,
    /// The seed as written into every UID's input.
    seed: String,
    patient: PatientInfo,
    /// The error to plant in this patient's reading, and at which timepoint index.
    planted: Option<(Planted, usize)>,
}

/// One study being written.
struct Study {
    /// Timepoint index and name.
    t: usize,
    tp: &'static str,
    info: StudyInfo,
    /// The study's folder.
    dir: PathBuf,
    /// Series Instance UID of the study's two images.
    image_series: String,
}

/// One image written to a study: what an SR refers to, its landmarks in mm and how they
/// map to pixels.
struct WrittenImage<'a> {
    image_ref: dicom_writer::ImageRef,
    kind: ViewKind,
    pts: &'a MmLandmarks,
    placement: Placement,
}

/// One reader's landmarks of one view, in pixels as stored, with the view's placement.
type Reading<'a> = (ViewKind, Vec<SrPoint>, &'a Placement);

impl PatientWriter<'_> {
    /// A UID derived from the seed, the patient and `parts`.
    fn uid(&self, parts: &[&str]) -> String {
        let schedule = self.opts.schedule;
        let mut all = vec!["plumbline-synth", self.seed.as_str(), self.pid.as_str()];
        // Another schedule's studies of the same seed never share a UID with these.
        if schedule != Schedule::Discectomy {
            all.push(schedule.as_str());
        }
        all.extend_from_slice(parts);
        hashed_uid(&all)
    }

    /// Writes timepoint `t`'s study: the lateral and AP images, then each reader's SRs;
    /// adds its files and truth rows to `out`.
    fn write_study(
        &self,
        rng: &mut ChaCha8Rng,
        model: &PatientModel,
        t: usize,
        out: &mut PatientOutput,
    ) -> Result<(), SynthError> {
        let schedule = self.opts.schedule;
        let study = self.study(rng, model, t);
        let shape = &model.shapes[t];
        let anatomy = model.anatomy_at(schedule, t);
        let views = [
            (
                ViewKind::Lateral,
                cohort::lateral_landmarks(&anatomy, shape),
            ),
            (ViewKind::Ap, cohort::ap_landmarks(&anatomy, shape)),
        ];
        let images = self.write_images(rng, &study, &views, out)?;

        // Readers: Alpha always, Beta on about a quarter of the studies.
        let readers = if rng.random_bool(0.25) { 2 } else { 1 };
        let per_image = rng.random_bool(0.4);
        for (r, observer) in OBSERVERS.iter().take(readers).enumerate() {
            let per_view = self.read(rng, &study, r, &images, out);
            out.truth
                .extend(truth_rows(&self.pid, study.tp, observer, &per_view));
            // Alpha: one SR per study or one per image; Beta: one per study.
            let per_image = per_image && r == 0;
            self.write_srs(&study, r, per_image, &images, &per_view, out)?;
        }
        Ok(())
    }

    /// The study of timepoint `t`: its date, a time of day, and its UID and folder.
    fn study(&self, rng: &mut ChaCha8Rng, model: &PatientModel, t: usize) -> Study {
        let schedule = self.opts.schedule;
        let tp = schedule.timepoints()[t];
        let day = model.clinical.surgery_day + model.offsets(schedule)[t];
        let date = yyyymmdd(day);
        let time = format!(
            "{:02}{:02}00",
            8 + rng.random_range(0..9),
            rng.random_range(0..60)
        );
        let dir = self
            .opts
            .out
            .join("dicom")
            .join(&self.pid)
            .join(format!("{date}_{tp}"));
        let info = StudyInfo {
            study_uid: self.uid(&[tp, "study"]),
            study_date: date,
            study_time: time,
            accession: format!("A{:05}{}", self.index + 1, t),
            study_id: format!("{}", t + 1),
            description: "XR whole spine standing".to_string(),
            timepoint_id: rng.random_bool(0.5).then(|| tp.to_string()),
        };
        Study {
            t,
            tp,
            info,
            dir,
            image_series: self.uid(&[tp, "series", "dx"]),
        }
    }

    /// Writes one image per view (lateral first) into the study's folder.
    fn write_images<'v>(
        &self,
        rng: &mut ChaCha8Rng,
        study: &Study,
        views: &'v [(ViewKind, MmLandmarks)],
        out: &mut PatientOutput,
    ) -> Result<Vec<WrittenImage<'v>>, SynthError> {
        let mut images = Vec::new();
        for (v, (kind, pts)) in views.iter().enumerate() {
            let pl = choose_placement(rng, *kind, pts, self.opts.image_size);
            let image = ImageInfo {
                sop_uid: self.uid(&[study.tp, "image", &v.to_string()]),
                series_uid: study.image_series.clone(),
                series_number: 1,
                instance_number: v as u32 + 1,
                view: match kind {
                    ViewKind::Lateral => View::Lateral,
                    ViewKind::Ap => View::Ap,
                },
                canvas: render(*kind, pts, &pl),
                window_center: 1400.0,
                window_width: 2800.0,
                spacing: pl.spacing.clone(),
                orientation: pl.orientation.clone(),
                rle: rng.random_bool(0.25),
                content_date: study.info.study_date.clone(),
                content_time: study.info.study_time.clone(),
            };
            // Some files carry no .dcm suffix: readers must decide from content.
            let name = match (v, rng.random_bool(0.2)) {
                (0, false) => "XR_LAT.dcm",
                (0, true) => "IM0001",
                (_, false) => "XR_AP.dcm",
                (_, true) => "IM0002",
            };
            let path = study.dir.join(name);
            dicom_writer::write_image(&path, &self.patient, &study.info, &image)?;
            count_file(out, &path)?;
            images.push(WrittenImage {
                image_ref: dicom_writer::ImageRef {
                    sop_uid: image.sop_uid.clone(),
                    sop_class: dicom_writer::image_sop_class(&image),
                },
                kind: *kind,
                pts,
                placement: pl,
            });
        }
        Ok(images)
    }

    /// Reader `r`'s ([`OBSERVERS`]) landmarks of every image, in pixels: sometimes a few
    /// skipped, the planted error where it belongs (recorded in `out.design`), and for
    /// the second reader a 1 mm jitter.
    fn read<'i>(
        &self,
        rng: &mut ChaCha8Rng,
        study: &Study,
        r: usize,
        images: &'i [WrittenImage],
        out: &mut PatientOutput,
    ) -> Vec<Reading<'i>> {
        let observer = OBSERVERS[r];
        let jitter = Normal::new(0.0, 1.0).expect("valid");
        let mut per_view = Vec::new();
        for image in images {
            let mut pts: Vec<(Landmark, Point)> = image.pts.clone();
            if rng.random_bool(0.06) {
                // A reader skipped a few landmarks.
                pts.shuffle(rng);
                let k = rng.random_range(1..4);
                pts.drain(..k);
                pts.sort_by_key(|(k, _)| *k);
            }
            if let Some((error, at)) = self.planted
                && at == study.t
                && r == 0
                && image.kind == ViewKind::Lateral
                && error.plant(&mut pts)
            {
                out.design[5] = format!("{}:{observer}:{}", study.tp, error.as_str());
            }
            let pl = &image.placement;
            let points = pts
                .iter()
                .map(|(lm, p)| {
                    let (mut c, mut row) = pl.to_px(*p);
                    if r > 0 {
                        c += jitter.sample(rng) / pl.effective.col;
                        row += jitter.sample(rng) / pl.effective.row;
                    }
                    SrPoint {
                        name: lm.to_string(),
                        meaning: lm.meaning(),
                        image_sop_uid: image.image_ref.sop_uid.clone(),
                        col: c as f32,
                        row: row as f32,
                    }
                })
                .collect();
            per_view.push((image.kind, points, pl));
        }
        per_view
    }

    /// Writes reader `r`'s ([`OBSERVERS`]) SRs: one for the study, or with `per_image`
    /// one per image.
    fn write_srs(
        &self,
        study: &Study,
        r: usize,
        per_image: bool,
        images: &[WrittenImage],
        per_view: &[Reading],
        out: &mut PatientOutput,
    ) -> Result<(), SynthError> {
        let (tp, observer) = (study.tp, OBSERVERS[r]);
        let groups: Vec<Vec<usize>> = if per_image {
            vec![vec![0], vec![1]]
        } else {
            vec![vec![0, 1]]
        };
        for (g, members) in groups.iter().enumerate() {
            let tag = format!("{r}-{g}");
            let sr = SrInfo {
                sop_uid: self.uid(&[tp, "sr", &tag]),
                series_uid: self.uid(&[tp, "series", "sr", &r.to_string()]),
                series_number: 100 + r as u32,
                instance_number: g as u32 + 1,
                observer: observer.to_string(),
                image_series_uid: study.image_series.clone(),
                images: members
                    .iter()
                    .map(|&i| images[i].image_ref.clone())
                    .collect(),
                points: members
                    .iter()
                    .flat_map(|&i| per_view[i].1.iter().cloned())
                    .collect(),
                content_date: study.info.study_date.clone(),
                content_time: study.info.study_time.clone(),
            };
            let reader = observer
                .split('^')
                .nth(1)
                .unwrap_or("reader")
                .to_lowercase();
            let name = if groups.len() == 1 {
                format!("SR_{reader}.dcm")
            } else {
                format!("SR_{reader}_{}.dcm", ["lat", "ap"][members[0]])
            };
            let path = study.dir.join(name);
            dicom_writer::write_sr(&path, &self.patient, &study.info, &sr)?;
            count_file(out, &path)?;
        }
        Ok(())
    }
}

fn count_file(out: &mut PatientOutput, path: &Path) -> Result<(), SynthError> {
    let len = std::fs::metadata(path)
        .map_err(|source| SynthError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    out.files += 1;
    out.bytes += len;
    Ok(())
}

/// Metrics of one reader's views, from the coordinates exactly as stored (float32) and
/// the spacing and orientation exactly as stored, through `plumbline-geometry`.
fn truth_rows(
    pid: &str,
    tp: &'static str,
    observer: &str,
    views: &[(ViewKind, Vec<SrPoint>, &Placement)],
) -> Vec<TruthRow> {
    let build = |kind: ViewKind| {
        let (_, pts, pl) = views.iter().find(|(k, _, _)| *k == kind)?;
        let col_dir = pl
            .orientation
            .as_ref()
            .and_then(|(c, _)| PatientDirection::parse(c));
        let row_dir = pl
            .orientation
            .as_ref()
            .and_then(|(_, r)| PatientDirection::parse(r));
        ViewLandmarks::from_pixels(
            kind,
            pts.iter().map(|p| {
                (
                    p.name.parse().expect("canonical"),
                    (f64::from(p.col), f64::from(p.row)),
                )
            }),
            pl.effective,
            col_dir,
            row_dir,
        )
        .ok()
    };
    let lat = build(ViewKind::Lateral);
    let ap = build(ViewKind::Ap);
    let m = Metrics::compute(lat.as_ref(), ap.as_ref(), &MetricOptions::default());
    m.iter()
        .filter_map(|(k, v)| {
            Some(TruthRow {
                patient_id: pid.to_string(),
                timepoint: tp,
                observer: observer.to_string(),
                metric: k.name(),
                value: v?,
            })
        })
        .collect()
}

fn write_table<const N: usize>(
    path: &Path,
    header: [&str; N],
    rows: impl IntoIterator<Item = [String; N]>,
) -> Result<(), SynthError> {
    let err = |source| SynthError::Table {
        path: path.to_path_buf(),
        source,
    };
    let mut w = csv::Writer::from_path(path).map_err(err)?;
    w.write_record(header).map_err(err)?;
    for r in rows {
        w.write_record(&r).map_err(err)?;
    }
    w.flush().map_err(|e| err(e.into()))
}

/// Generates a cohort into `opts.out`: `dicom/`, `clinical.csv`, `truth.csv` and
/// `design.csv`. Patients are written in parallel; the output does not depend on the
/// thread count.
///
/// - `clinical.csv`: `patient_id,surgery_date,herniation_level,herniation_side,sex,
///   age_years,hip_pain,fusion_to_sacrum,fused_levels`; `hip_pain` is `yes` for about
///   30% of patients, `fusion_to_sacrum` for about 50%, `fused_levels` is 1 to 4 (40%,
///   30%, 20%, 10%).
/// - `design.csv`: `patient_id,preop_type,coronal_shift,sagittal_shift,balanced_from,
///   planted_error,slip_pct`: the designed pre-op imbalance type, shift directions,
///   first balanced timepoint (empty when balanced throughout, and in a survey), the
///   planted error, and the designed anterior slip of L4 on L5 in percent (about 12% of
///   patients, 5.0 to 25.0, the same at every timepoint; empty when none is designed).
/// - `truth.csv`: `patient_id,timepoint,observer,metric,value`, every metric
///   `plumbline-geometry` computes from the coordinates as stored.
pub fn generate(opts: &SynthOptions) -> Result<Summary, SynthError> {
    let dicom = opts.out.join("dicom");
    if dicom.exists() {
        return Err(SynthError::Exists(dicom));
    }
    std::fs::create_dir_all(&dicom).map_err(|source| SynthError::Io {
        path: dicom.clone(),
        source,
    })?;
    let design = CohortDesign::new(opts.patients, opts.seed);
    let outputs: Vec<PatientOutput> = design
        .patients
        .into_par_iter()
        .enumerate()
        .map(|(i, d)| write_patient(opts, i, d))
        .collect::<Result<_, _>>()?;
    write_table(
        &opts.out.join("clinical.csv"),
        [
            "patient_id",
            "surgery_date",
            "herniation_level",
            "herniation_side",
            "sex",
            "age_years",
            "hip_pain",
            "fusion_to_sacrum",
            "fused_levels",
        ],
        outputs.iter().map(|o| o.clinical.clone()),
    )?;
    write_table(
        &opts.out.join("design.csv"),
        [
            "patient_id",
            "preop_type",
            "coronal_shift",
            "sagittal_shift",
            "balanced_from",
            "planted_error",
            "slip_pct",
        ],
        outputs.iter().map(|o| o.design.clone()),
    )?;
    let truth: Vec<&TruthRow> = outputs.iter().flat_map(|o| &o.truth).collect();
    write_table(
        &opts.out.join("truth.csv"),
        ["patient_id", "timepoint", "observer", "metric", "value"],
        truth.iter().map(|r| {
            [
                r.patient_id.clone(),
                r.timepoint.to_string(),
                r.observer.clone(),
                r.metric.clone(),
                format!("{}", r.value),
            ]
        }),
    )?;
    Ok(Summary {
        files: outputs.iter().map(|o| o.files).sum(),
        bytes: outputs.iter().map(|o| o.bytes).sum(),
        truth_rows: truth.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(yyyymmdd(0), "19700101");
        assert_eq!(iso_date(18_631), "2021-01-04");
        assert_eq!(iso_date(19_052), "2022-03-01"); // 2021 is not a leap year
        assert_eq!(iso_date(11_016), "2000-02-29");
        assert_eq!(yyyymmdd(-1), "19691231");
        assert_eq!(iso_date(-25_508), "1900-03-01"); // 1900 is not a leap year
        assert_eq!(iso_date(47_540), "2100-02-28");
        assert_eq!(iso_date(-719_528), "0000-01-01");
        assert_eq!(iso_date(2_932_896), "9999-12-31");
    }

    /// Every day from 1422 to 2517, against a calendar walked one day at a time with
    /// the Gregorian leap-year rule.
    #[test]
    fn dates_follow_day_by_day() {
        let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let days_in_month = |y: i64, m: u32| match m {
            2 if leap(y) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let (start, end) = (-200_000i64, 200_000i64);
        // 1970-01-01 minus 200,000 days.
        let (mut y, mut m, mut d) = (1422i64, 6u32, 3u32);
        for days in start..end {
            assert_eq!(yyyymmdd(days), format!("{y:04}{m:02}{d:02}"), "day {days}");
            assert_eq!(
                iso_date(days),
                format!("{y:04}-{m:02}-{d:02}"),
                "day {days}"
            );
            if days == 0 {
                assert_eq!((y, m, d), (1970, 1, 1));
            }
            d += 1;
            if d > days_in_month(y, m) {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
        assert_eq!((y, m, d), (2517, 8, 1));
    }

    #[test]
    #[should_panic(expected = "beyond chrono's dates")]
    fn dates_beyond_chrono_panic() {
        yyyymmdd(i64::from(i32::MAX) + 1);
    }

    #[test]
    fn option_values_round_trip() {
        for v in ImageSize::ALL {
            assert_eq!(v.as_str().parse::<ImageSize>(), Ok(v));
        }
        for v in Schedule::ALL {
            assert_eq!(v.as_str().parse::<Schedule>(), Ok(v));
        }
        assert_eq!(ImageSize::default(), ImageSize::Small);
        assert_eq!(
            "Small".parse::<ImageSize>().unwrap_err().to_string(),
            "unknown image size \"Small\": expected one of small, clinical"
        );
        assert_eq!(
            "".parse::<Schedule>().unwrap_err().to_string(),
            "unknown schedule \"\": expected one of discectomy, fusion, survey"
        );
    }
}
