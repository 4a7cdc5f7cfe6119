//! The cohort model: who is imbalanced, how, and the landmark geometry of every reading.
//!
//! Everything here is pure and deterministic: a patient's design depends only on the
//! seed and the patient's index, so adding patients never changes earlier ones, and
//! the cohort-level counts come from exact largest-remainder splits of the published
//! shares (Wang et al. 2022, J Pain Res, doi 10.2147/JPR.S341317).
//!
//! Draws added after the first version of the model (the L4-L5 slip, the clinical
//! columns `hip_pain`, `fusion_to_sacrum`, `fused_levels`, the fusion schedule's visit
//! jitter and its adjacent-disc height loss) come from a second random stream of the
//! patient's seed ([`PatientModel::new`]), so every earlier draw, and so every file of a
//! patient without a slip under the default schedule, stays exactly as it was.

use plumbline_geometry::{Corner, Endplate, Landmark, Level, Point, Side};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

/// The timepoints of the Wang 2022 design ([`Schedule::Discectomy`]), in window order.
pub const TIMEPOINTS: [&str; 4] = ["preop", "postop", "m3", "m6"];

/// The timepoints of [`Schedule::Fusion`], in window order.
pub const FUSION_TIMEPOINTS: [&str; 4] = ["preop", "w6", "w52", "w104"];

/// Nominal study days from surgery of [`FUSION_TIMEPOINTS`]: 10 days before, 6, 52 and
/// 104 weeks after.
pub const FUSION_DAYS: [i64; 4] = [-10, 42, 364, 728];

/// Each fusion study lies within this many days of its nominal day.
pub const FUSION_JITTER_DAYS: i64 = 3;

/// The one timepoint of [`Schedule::Survey`].
pub const SURVEY_TIMEPOINTS: [&str; 1] = ["baseline"];

/// Which visits a patient has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Schedule {
    /// Lumbar discectomy (Wang 2022): preop 1-59 days before surgery, postop 1-7 days,
    /// m3 80-100 days and m6 170-200 days after.
    #[default]
    Discectomy,
    /// Lumbar fusion: preop, w6, w52, w104 on days -10, 42, 364 and 728 from surgery, each
    /// within 3 days; the same four spine shapes as discectomy, and the disc just above
    /// the fused segments loses height from surgery to w104.
    Fusion,
    /// Cross-sectional survey: one visit per patient, `baseline`, with the preop shape,
    /// on the day discectomy's preop visit would be.
    Survey,
}

impl Schedule {
    /// Every schedule, in the order a command line lists them.
    pub const ALL: [Schedule; 3] = [Schedule::Discectomy, Schedule::Fusion, Schedule::Survey];

    /// Timepoint names, in window order.
    pub fn timepoints(self) -> &'static [&'static str] {
        match self {
            Schedule::Discectomy => &TIMEPOINTS,
            Schedule::Fusion => &FUSION_TIMEPOINTS,
            Schedule::Survey => &SURVEY_TIMEPOINTS,
        }
    }

    /// The option value: `discectomy`, `fusion`, `survey`.
    pub fn as_str(self) -> &'static str {
        match self {
            Schedule::Discectomy => "discectomy",
            Schedule::Fusion => "fusion",
            Schedule::Survey => "survey",
        }
    }
}

impl std::str::FromStr for Schedule {
    type Err = crate::UnknownValue;

    /// Parses an option value of [`Schedule::as_str`].
    fn from_str(s: &str) -> Result<Self, crate::UnknownValue> {
        crate::parse_value("schedule", s, &Schedule::ALL, Schedule::as_str)
    }
}

/// Published shares reproduced by the generator.
pub mod shares {
    /// Share of patients with pre-op imbalance (110 / 600).
    pub const IMBALANCED: f64 = 0.183;
    /// Sagittal / coronal / biplanar split among the imbalanced.
    pub const TYPES: [f64; 3] = [0.282, 0.345, 0.373];
    /// Coronal shifts away from the herniated side.
    pub const CORONAL_AWAY: f64 = 0.772;
    /// Sagittal shifts forward.
    pub const SAGITTAL_FORWARD: f64 = 0.653;
    /// Imbalanced patients balanced at postop, m3, m6 (at least 75% right after
    /// surgery, all at 6 months).
    pub const RECOVERED: [f64; 3] = [0.80, 0.92, 1.0];
    /// Patients with an anterior slip of L4 on L5 (drawn per patient, not split exactly).
    pub const SLIPPED: f64 = 0.12;
    /// Designed slip range, percent of L5's superior endplate depth.
    pub const SLIP_PCT: (f64, f64) = (5.0, 25.0);
    /// Patients with `hip_pain` = `yes` (drawn per patient).
    pub const HIP_PAIN: f64 = 0.30;
    /// Patients with `fusion_to_sacrum` = `yes` (drawn per patient).
    pub const FUSION_TO_SACRUM: f64 = 0.50;
    /// Shares of 1, 2, 3 and 4 `fused_levels`.
    pub const FUSED_LEVELS: [f64; 4] = [0.4, 0.3, 0.2, 0.1];
}

/// Imbalance type designed for a patient at pre-op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Design {
    /// Balanced at every timepoint.
    Balanced,
    /// Sagittal only.
    Sagittal,
    /// Coronal only.
    Coronal,
    /// Both planes.
    Biplanar,
}

impl Design {
    fn sagittal(self) -> bool {
        matches!(self, Design::Sagittal | Design::Biplanar)
    }
    fn coronal(self) -> bool {
        matches!(self, Design::Coronal | Design::Biplanar)
    }
    /// Table value: `balanced`, `sagittal`, `coronal`, `biplanar`.
    pub fn as_str(self) -> &'static str {
        match self {
            Design::Balanced => "balanced",
            Design::Sagittal => "sagittal",
            Design::Coronal => "coronal",
            Design::Biplanar => "biplanar",
        }
    }
}

/// Splits `n` items by `shares` with the largest-remainder method (exact totals).
pub fn split_counts(n: usize, shares: &[f64]) -> Vec<usize> {
    let raw: Vec<f64> = shares.iter().map(|s| s * n as f64).collect();
    let mut counts: Vec<usize> = raw.iter().map(|r| r.floor() as usize).collect();
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (raw[a] - raw[a].floor(), raw[b] - raw[b].floor());
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    let total: f64 = shares.iter().sum();
    let target = (total * n as f64).round() as usize;
    let mut k = 0;
    while counts.iter().sum::<usize>() < target {
        counts[order[k % order.len()]] += 1;
        k += 1;
    }
    counts
}

/// Cohort-level assignment of designs and directions (exact counts).
#[derive(Clone, Debug)]
pub struct CohortDesign {
    /// Per patient index.
    pub patients: Vec<PatientDesign>,
}

/// What the generator intends for one patient.
#[derive(Clone, Debug)]
pub struct PatientDesign {
    /// Pre-op imbalance type.
    pub design: Design,
    /// Coronal shift away from the herniation side (coronal/biplanar only).
    pub coronal_away: bool,
    /// Sagittal shift forward (sagittal/biplanar only).
    pub sagittal_forward: bool,
    /// Index of the first timepoint (1 = postop, 2 = m3, 3 = m6) at which the patient
    /// is balanced; 0 for patients balanced throughout.
    pub recovered_at: usize,
}

/// Number of pre-op imbalanced patients in a cohort of `n`.
pub fn imbalanced_count(n: usize) -> usize {
    let k = (shares::IMBALANCED * n as f64).round() as usize;
    if n >= 3 { k.max(1) } else { k }
}

impl CohortDesign {
    /// Assigns designs to `n` patients from `seed`.
    pub fn new(n: usize, seed: u64) -> CohortDesign {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xC0_4047);
        let n_imb = imbalanced_count(n);
        let types = split_counts(n_imb, &shares::TYPES);
        let mut designs: Vec<Design> = std::iter::repeat_n(Design::Sagittal, types[0])
            .chain(std::iter::repeat_n(Design::Coronal, types[1]))
            .chain(std::iter::repeat_n(Design::Biplanar, types[2]))
            .collect();
        designs.shuffle(&mut rng);
        let n_cor = types[1] + types[2];
        let n_sag = types[0] + types[2];
        let mut away = flags(n_cor, shares::CORONAL_AWAY);
        away.shuffle(&mut rng);
        let mut fwd = flags(n_sag, shares::SAGITTAL_FORWARD);
        fwd.shuffle(&mut rng);
        // Recovery: the first ceil(share * n) of a shuffled order are balanced by then.
        let mut recovered_at: Vec<usize> = (0..n_imb)
            .map(|i| {
                shares::RECOVERED
                    .iter()
                    .position(|s| i < (s * n_imb as f64).ceil() as usize)
                    .map_or(3, |p| p + 1)
            })
            .collect();
        recovered_at.shuffle(&mut rng);
        // Wang et al.'s central claim: sagittal imbalance corrects right after surgery,
        // coronal imbalance within 3 to 6 months. The earliest recoveries go to the
        // sagittal cases, then the biplanar, the latest to the coronal ones (the shuffle
        // above stays, so every later draw is the one it was before).
        recovered_at.sort_unstable();
        let priority = |d: Design| match d {
            Design::Sagittal => 0,
            Design::Biplanar => 1,
            _ => 2,
        };
        let mut by_type: Vec<usize> = (0..designs.len()).collect();
        by_type.sort_by_key(|&k| (priority(designs[k]), k));
        let mut recovery_of = vec![0; designs.len()];
        for (j, &k) in by_type.iter().enumerate() {
            recovery_of[k] = recovered_at[j];
        }
        let recovered_at = recovery_of;
        let mut which: Vec<usize> = (0..n).collect();
        which.shuffle(&mut rng);
        let mut patients = vec![
            PatientDesign {
                design: Design::Balanced,
                coronal_away: false,
                sagittal_forward: false,
                recovered_at: 0,
            };
            n
        ];
        let (mut ci, mut si) = (0, 0);
        for (k, d) in designs.into_iter().enumerate() {
            let p = &mut patients[which[k]];
            p.design = d;
            p.recovered_at = recovered_at[k];
            if d.coronal() {
                p.coronal_away = away[ci];
                ci += 1;
            }
            if d.sagittal() {
                p.sagittal_forward = fwd[si];
                si += 1;
            }
        }
        CohortDesign { patients }
    }
}

fn flags(n: usize, share: f64) -> Vec<bool> {
    let k = (share * n as f64).round() as usize;
    (0..n).map(|i| i < k).collect()
}

/// Clinical facts of one patient.
#[derive(Clone, Debug)]
pub struct Clinical {
    /// Days since 1970-01-01 of the surgery.
    pub surgery_day: i64,
    /// e.g. `L4-L5`.
    pub level: &'static str,
    /// `left`, `right` or `central`.
    pub side: &'static str,
    /// `M` or `F`.
    pub sex: &'static str,
    /// Age at surgery, years.
    pub age: u32,
    /// `hip_pain`: the patient reports hip pain.
    pub hip_pain: bool,
    /// `fusion_to_sacrum`: the fused segments end at S1 (else at L4-L5 and above).
    pub fusion_to_sacrum: bool,
    /// `fused_levels`: number of fused motion segments, 1 to 4.
    pub fused_levels: u8,
}

/// Spine shape parameters of one reading (degrees and mm).
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Pelvic incidence.
    pub pi: f64,
    /// Pelvic tilt.
    pub pt: f64,
    /// L1-S1 lordosis target.
    pub ll: f64,
    /// T4-T12 kyphosis target.
    pub tk: f64,
    /// Target SVA (mm), met exactly by construction.
    pub sva: f64,
    /// Target C7PL-CSVL (mm, + = C7 to the patient's right), met exactly.
    pub c7pl_csvl: f64,
    /// Lumbar scoliotic curve amplitude (mm of lateral deviation at the apex).
    pub curve_mm: f64,
    /// Pelvic obliquity (degrees).
    pub obliquity: f64,
}

/// Per-patient random anatomy that stays the same across timepoints.
#[derive(Clone, Debug)]
pub struct Anatomy {
    /// Vertebral body posterior heights T1..L5 (mm).
    pub body_h: [f64; 17],
    /// Disc heights above T2..L5 and S1 (the disc below each of T1..L5), mm.
    pub disc_h: [f64; 17],
    /// Sagittal depth of bodies T1..L5 (mm).
    pub depth: [f64; 17],
    /// Coronal width of bodies T1..L5 (mm).
    pub width: [f64; 17],
    /// Lumbar lordosis weights (10 transitions from S1 up to L1 superior).
    pub ll_weights: [f64; 10],
    /// Designed anterior slip of L4 on L5 (`l4_l5_slip_pct` of `landmarks.md`): percent of
    /// L5's superior endplate depth, the same at every timepoint. `None`: no slip is built
    /// in and the measure is what the disc's shape gives (see [`lateral_landmarks`]).
    pub slip_pct: Option<f64>,
}

fn normal(rng: &mut ChaCha8Rng, mean: f64, sd: f64) -> f64 {
    Normal::new(mean, sd).expect("finite sd").sample(rng)
}

fn clamp_normal(rng: &mut ChaCha8Rng, mean: f64, sd: f64, lo: f64, hi: f64) -> f64 {
    normal(rng, mean, sd).clamp(lo, hi)
}

/// One patient's full synthetic record: clinical facts, anatomy, shapes per timepoint.
#[derive(Clone, Debug)]
pub struct PatientModel {
    /// Design from the cohort assignment.
    pub design: PatientDesign,
    /// Clinical row.
    pub clinical: Clinical,
    /// Fixed anatomy.
    pub anatomy: Anatomy,
    /// Shape at each of [`TIMEPOINTS`].
    pub shapes: [Shape; 4],
    /// Study day offsets from surgery for each timepoint of [`Schedule::Discectomy`].
    pub study_offsets: [i64; 4],
    /// Study day offsets from surgery for each timepoint of [`Schedule::Fusion`].
    pub fusion_offsets: [i64; 4],
    /// Share of the height of the disc just above the fused segments lost by the last
    /// fusion visit (0 to 0.3), lost linearly over the 728 days from surgery to the
    /// nominal w104; fusion schedule only.
    pub adjacent_disc_loss: f64,
}

/// Stream number of the second per-patient random stream (same key as the patient's
/// generator, another ChaCha stream: independent of the first).
const EXTRA_STREAM: u64 = 0x706C_756D_625F_7632;

/// The generator of the draws added after the first version of the model: the patient's
/// seed (the key of `rng`) on stream [`EXTRA_STREAM`], whatever `rng` has drawn so far.
fn extra_stream(rng: &ChaCha8Rng) -> ChaCha8Rng {
    let mut x = ChaCha8Rng::from_seed(rng.get_seed());
    x.set_stream(EXTRA_STREAM);
    x
}

/// Days from 1970-01-01 of 2021-01-04, the first possible surgery date.
const FIRST_SURGERY_DAY: i64 = 18_631;

/// The draws of the second stream ([`extra_stream`]), all made, in this order, for
/// every patient.
struct LaterDraws {
    /// [`Anatomy::slip_pct`].
    slip_pct: Option<f64>,
    hip_pain: bool,
    fusion_to_sacrum: bool,
    fused_levels: u8,
    fusion_offsets: [i64; 4],
    adjacent_disc_loss: f64,
}

impl LaterDraws {
    fn draw(x: &mut ChaCha8Rng) -> LaterDraws {
        let slipped = x.random_bool(shares::SLIPPED);
        let slip = (x.random_range(shares::SLIP_PCT.0..shares::SLIP_PCT.1) * 10.0).round() / 10.0;
        let hip_pain = x.random_bool(shares::HIP_PAIN);
        let fusion_to_sacrum = x.random_bool(shares::FUSION_TO_SACRUM);
        let u: f64 = x.random();
        let mut fused_levels = 4;
        let mut acc = 0.0;
        for (k, share) in shares::FUSED_LEVELS.iter().enumerate() {
            acc += share;
            if u < acc {
                fused_levels = k as u8 + 1;
                break;
            }
        }
        let fusion_offsets =
            FUSION_DAYS.map(|d| d + x.random_range(-FUSION_JITTER_DAYS..=FUSION_JITTER_DAYS));
        let adjacent_disc_loss = x.random_range(0.0..0.3);
        LaterDraws {
            slip_pct: slipped.then_some(slip),
            hip_pain,
            fusion_to_sacrum,
            fused_levels,
            fusion_offsets,
            adjacent_disc_loss,
        }
    }
}

/// One value per level T1..L5 (index 0 = T1 ... 11 = T12, 12 = L1 ... 16 = L5), drawn
/// in level order.
fn per_level(rng: &mut ChaCha8Rng, f: impl Fn(usize, &mut ChaCha8Rng) -> f64) -> [f64; 17] {
    let mut a = [0.0; 17];
    for (i, v) in a.iter_mut().enumerate() {
        *v = f(i, rng);
    }
    a
}

impl Anatomy {
    /// Draws body heights, disc heights, depths, widths and lordosis weights.
    fn draw(rng: &mut ChaCha8Rng, slip_pct: Option<f64>) -> Anatomy {
        let body_h = per_level(rng, |i, r| {
            let base = if i < 12 {
                17.0 + 7.0 * i as f64 / 11.0
            } else {
                26.0 + (i - 12) as f64 * 0.8
            };
            base + normal(r, 0.0, 0.8)
        });
        let disc_h = per_level(rng, |i, r| {
            let base = if i < 12 {
                4.5
            } else {
                8.5 + (i - 12) as f64 * 0.4
            };
            (base + normal(r, 0.0, 0.6)).max(2.5)
        });
        let depth = per_level(rng, |i, r| {
            let base = if i < 12 {
                27.0 + 9.0 * i as f64 / 11.0
            } else {
                39.0 + (i - 12) as f64
            };
            base + normal(r, 0.0, 1.0)
        });
        let width = per_level(rng, |i, r| {
            let base = if i < 12 {
                28.0 + 12.0 * i as f64 / 11.0
            } else {
                44.0 + (i - 12) as f64 * 1.5
            };
            base + normal(r, 0.0, 1.0)
        });
        // From S1 upward: disc L5-S1, L5 body, disc L4-5, L4, disc L3-4, L3, L2-3, L2, L1-2, L1.
        let base_w = [0.22, 0.10, 0.16, 0.07, 0.12, 0.05, 0.10, 0.04, 0.09, 0.05];
        let mut ll_weights = [0.0; 10];
        for (w, b) in ll_weights.iter_mut().zip(base_w) {
            *w = (b * (1.0 + normal(rng, 0.0, 0.15))).max(0.005);
        }
        let total: f64 = ll_weights.iter().sum();
        ll_weights.iter_mut().for_each(|w| *w /= total);
        Anatomy {
            body_h,
            disc_h,
            depth,
            width,
            ll_weights,
            slip_pct,
        }
    }
}

impl Shape {
    /// The patient's own alignment from published norms (PI ~ N(52,10); PT = 0.44 PI -
    /// 11.4 + e; LL = 0.54 PI + 27.6 + e; TK ~ N(40,10)), balanced: SVA and C7PL-CSVL 0.
    fn draw_norms(rng: &mut ChaCha8Rng) -> Shape {
        let pi = clamp_normal(rng, 52.0, 10.0, 28.0, 85.0);
        let pt = (0.44 * pi - 11.4 + normal(rng, 0.0, 4.0)).clamp(-5.0, pi - 15.0);
        let ll = (0.54 * pi + 27.6 + normal(rng, 0.0, 6.0)).clamp(20.0, 85.0);
        let tk = clamp_normal(rng, 40.0, 10.0, 10.0, 75.0);
        let obliquity = normal(rng, 0.0, 1.2);
        let curve = normal(rng, 0.0, 3.0);
        Shape {
            pi,
            pt,
            ll,
            tk,
            sva: 0.0,
            c7pl_csvl: 0.0,
            curve_mm: curve,
            obliquity,
        }
    }
}

/// The shape at each of the four timepoints: `base` with small changes, or the designed
/// imbalance at the timepoints before [`PatientDesign::recovered_at`].
fn timepoint_shapes(
    rng: &mut ChaCha8Rng,
    design: &PatientDesign,
    base: Shape,
    herniation_right: bool,
) -> [Shape; 4] {
    let mut shapes = [base; 4];
    for (t, shape) in shapes.iter_mut().enumerate() {
        let imbalanced = t < design.recovered_at;
        // Balanced: |SVA| < 30, |C7PL-CSVL| < 12 (clear of the 40 / 20 thresholds even
        // after a second reader's jitter). Imbalanced: |SVA| 50..90, |C7PL-CSVL| 28..50.
        shape.sva = if imbalanced && design.design.sagittal() {
            let m = rng.random_range(50.0..90.0);
            if design.sagittal_forward { m } else { -m }
        } else {
            clamp_normal(rng, 8.0, 12.0, -28.0, 28.0)
        };
        shape.c7pl_csvl = if imbalanced && design.design.coronal() {
            let m = rng.random_range(28.0..50.0);
            // + = C7 to the patient's right. Away from a left herniation = right.
            let to_right = design.coronal_away != herniation_right;
            if to_right { m } else { -m }
        } else {
            clamp_normal(rng, 0.0, 5.0, -11.0, 11.0)
        };
        if imbalanced && design.design.coronal() {
            // Sciatic list: a lumbar curve bending with the shift.
            shape.curve_mm = shape.c7pl_csvl.signum() * rng.random_range(4.0..10.0);
        } else {
            shape.curve_mm = base.curve_mm + normal(rng, 0.0, 0.5);
        }
        if imbalanced && design.design.sagittal() && design.sagittal_forward {
            // Forward lean comes with a flattened lumbar spine.
            shape.ll = base.ll - rng.random_range(5.0..15.0);
        } else {
            shape.ll = base.ll + normal(rng, 0.0, 1.5);
        }
        shape.pt = base.pt + normal(rng, 0.0, 1.0);
        shape.tk = base.tk + normal(rng, 0.0, 1.5);
    }
    shapes
}

impl PatientModel {
    /// Draws a patient from its design and a per-patient RNG. The slip, the clinical
    /// columns `hip_pain`, `fusion_to_sacrum`, `fused_levels`, the fusion visit days and
    /// the adjacent-disc loss come from a second stream of the same seed (another ChaCha
    /// stream of `rng`'s key), so `rng` makes exactly the draws it made before they
    /// existed.
    pub fn new(design: PatientDesign, rng: &mut ChaCha8Rng) -> PatientModel {
        let surgery_day = FIRST_SURGERY_DAY + rng.random_range(0..700i64);
        let level = match rng.random_range(0..100) {
            0..50 => "L4-L5",
            50..90 => "L5-S1",
            _ => "L3-L4",
        };
        // Coronal cases need a lateral herniation to compare the shift with.
        let side = match (design.design.coronal(), rng.random_range(0..100)) {
            (_, 0..48) => "left",
            (true, _) | (false, 48..95) => "right",
            _ => "central",
        };
        let sex = if rng.random_bool(0.55) { "M" } else { "F" };
        let age = rng.random_range(22..75u32);
        // Later additions, from the second stream, always all drawn in this order.
        let later = LaterDraws::draw(&mut extra_stream(rng));
        let clinical = Clinical {
            surgery_day,
            level,
            side,
            sex,
            age,
            hip_pain: later.hip_pain,
            fusion_to_sacrum: later.fusion_to_sacrum,
            fused_levels: later.fused_levels,
        };
        let anatomy = Anatomy::draw(rng, later.slip_pct);
        let base = Shape::draw_norms(rng);
        let shapes = timepoint_shapes(rng, &design, base, side == "right");
        let study_offsets = [
            -rng.random_range(1..60i64),
            rng.random_range(1..8i64),
            rng.random_range(80..101i64),
            rng.random_range(170..201i64),
        ];
        PatientModel {
            design,
            clinical,
            anatomy,
            shapes,
            study_offsets,
            fusion_offsets: later.fusion_offsets,
            adjacent_disc_loss: later.adjacent_disc_loss,
        }
    }

    /// Study day offsets from surgery of the schedule's timepoints.
    pub fn offsets(&self, schedule: Schedule) -> &[i64] {
        match schedule {
            Schedule::Discectomy => &self.study_offsets,
            Schedule::Fusion => &self.fusion_offsets,
            Schedule::Survey => &self.study_offsets[..1],
        }
    }

    /// Index into [`Anatomy::disc_h`] of the disc just above the fused segments: the
    /// segments are L5-S1 and the `fused_levels - 1` above it with `fusion_to_sacrum`,
    /// else L4-L5 and the `fused_levels - 1` above it.
    pub fn adjacent_disc(&self) -> usize {
        let lowest = if self.clinical.fusion_to_sacrum {
            16
        } else {
            15
        };
        lowest - usize::from(self.clinical.fused_levels)
    }

    /// The anatomy at timepoint `t` of `schedule`: the fixed anatomy, except that under
    /// [`Schedule::Fusion`] the disc above the fused segments has lost
    /// `adjacent_disc_loss x days / 728` of its height (nothing before surgery).
    pub fn anatomy_at(&self, schedule: Schedule, t: usize) -> Anatomy {
        let mut a = self.anatomy.clone();
        if schedule == Schedule::Fusion {
            let days = self.fusion_offsets[t].max(0) as f64;
            let i = self.adjacent_disc();
            a.disc_h[i] *= 1.0 - self.adjacent_disc_loss * days / FUSION_DAYS[3] as f64;
        }
        a
    }
}

/// Landmark positions of one view in the spec's mm frame.
pub type MmLandmarks = Vec<(Landmark, Point)>;

fn rot(v: (f64, f64), deg: f64) -> (f64, f64) {
    let (s, c) = deg.to_radians().sin_cos();
    (v.0 * c - v.1 * s, v.0 * s + v.1 * c)
}

fn add(p: Point, v: (f64, f64)) -> Point {
    Point::new(p.x + v.0, p.y + v.1)
}

fn tl_level(i: usize) -> Level {
    if i < 12 {
        Level::T(i as u8 + 1)
    } else {
        Level::L(i as u8 - 11)
    }
}

/// Builds the lateral view in mm (x anterior, y up; S1 posterior corner at the origin).
///
/// Endplate tilts are chained from S1 upward so that the sagittal angles come out as
/// designed (SS = PI - PT, LL spread over the lumbar discs and bodies, TK over
/// T4-T12); the column above L3 is then sheared horizontally so that the C7 centroid
/// lands exactly at the designed SVA. The shear changes the angles above L3 slightly;
/// the truth table is always computed from the final coordinates.
///
/// Each body's posterior wall runs from its inferior to its superior posterior corner
/// along the mean of the two endplate tilts, and so does each disc's posterior side. A
/// lordotic disc (tilt change `delta` across it, height `h`) therefore puts the upper
/// body's posterior inferior corner `h sin(delta / 2)` behind the lower body's posterior
/// superior corner along the lower endplate: without a designed slip, the L4-L5 slip of
/// `landmarks.md` measures `-h sin(delta / 2) / depth x 100`, about -1% to -3% (a slight
/// retrolisthesis reading). With [`Anatomy::slip_pct`] set, L4 and everything above it
/// (C7 included, before the SVA shear, so SVA is still met exactly) is moved along the
/// L5 superior endplate, posterior to anterior, by the distance that makes the measure
/// exactly the designed percentage. The shear starts above L3's centroid, so it moves
/// neither L4's inferior corners nor L5. The AP view has no slip.
pub fn lateral_landmarks(a: &Anatomy, s: &Shape) -> MmLandmarks {
    let ss = s.pi - s.pt;
    let s1_tilt = -ss;
    let s1_post = Point::new(0.0, 0.0);
    let mut out = lateral_pelvis(a, s, s1_post, s1_tilt);
    let deltas = lateral_tilt_changes(a, s);
    let column = stack_lateral_column(a, &deltas, s1_post, s1_tilt, &mut out);
    // C7 centroid: one disc plus half a body above T1 along T1's axis.
    let mut c7 = add(
        centroid_of(&out, Level::T(1)),
        rot((0.0, a.disc_h[0] + a.body_h[0]), column.tilt),
    );
    if let Some(pct) = a.slip_pct {
        let v = slip_shift(&out, &column, pct);
        for (_, p) in out[column.first_l4..].iter_mut() {
            *p = add(*p, v);
        }
        c7 = add(c7, v);
    }
    shear_to_sva(&mut out, s.sva, c7);
    out.push((Landmark::Centroid(Level::C7), Point::new(s.sva, c7.y)));
    out
}

/// The S1 endplate (tilted by `s1_tilt`, posterior corner at `s1_post`) and the femoral
/// heads, placed so that PT is exactly the designed one.
fn lateral_pelvis(a: &Anatomy, s: &Shape, s1_post: Point, s1_tilt: f64) -> MmLandmarks {
    let s1_ant = add(s1_post, rot((a.depth[16] + 4.0, 0.0), s1_tilt));
    let m = s1_post.mid(s1_ant);
    // Heads: H = M + d (sin PT, -cos PT) gives PT exactly; left/right straddle H.
    let d = 95.0;
    let (pts, ptc) = s.pt.to_radians().sin_cos();
    let h = Point::new(m.x + d * pts, m.y - d * ptc);
    vec![
        (
            Landmark::Corner(Level::S1, Endplate::Sup, Corner::Post),
            s1_post,
        ),
        (
            Landmark::Corner(Level::S1, Endplate::Sup, Corner::Ant),
            s1_ant,
        ),
        (Landmark::FemoralHead(Side::Left), add(h, (-3.0, 1.5))),
        (Landmark::FemoralHead(Side::Right), add(h, (3.0, -1.5))),
    ]
}

/// The tilt changes from the S1 superior endplate upward: (disc, body) pairs for L5..T1;
/// index 2k is the disc below level (16 - k), 2k + 1 its body.
fn lateral_tilt_changes(a: &Anatomy, s: &Shape) -> [f64; 34] {
    let mut deltas = [0.0; 34];
    for (k, w) in a.ll_weights.iter().enumerate() {
        deltas[k] = w * s.ll;
    }
    // Thoracolumbar disc T12-L1 neutral (index 10); T12 body .. T4 body with the discs
    // between: 17 transitions summing to -TK (tilts decrease going up in a kyphosis).
    for d in deltas.iter_mut().skip(11).take(17) {
        *d = -s.tk / 17.0;
    }
    // Above T4: disc T3-4, T3 body, ..., T1 body: mild continuing kyphosis.
    for d in deltas.iter_mut().skip(28) {
        *d = -1.5;
    }
    deltas
}

/// What the rest of the lateral view needs from the stacked column.
struct LateralColumn {
    /// Tilt of T1's superior endplate (degrees).
    tilt: f64,
    /// Where L4's landmarks start in the view (L5's come before them).
    first_l4: usize,
    /// L5's superior endplate: (posterior, anterior) corner.
    l5_sup: (Point, Point),
}

/// Stacks disc and body from S1 up to T1 (each tilted by the next of `deltas`) and
/// appends each level's four corners and centroid to `out`, L5 first.
fn stack_lateral_column(
    a: &Anatomy,
    deltas: &[f64; 34],
    s1_post: Point,
    s1_tilt: f64,
    out: &mut MmLandmarks,
) -> LateralColumn {
    let mut post = s1_post;
    let mut tilt = s1_tilt;
    let mut step = 0;
    let mut first_l4 = 0;
    let mut l5_sup = (s1_post, s1_post);
    for i in (0..17).rev() {
        let level = tl_level(i);
        // Disc below this level.
        let new_tilt = tilt + deltas[step];
        step += 1;
        let up = rot((0.0, a.disc_h[i]), (tilt + new_tilt) / 2.0);
        let inf_post = add(post, up);
        let inf_ant = add(inf_post, rot((a.depth[i], 0.0), new_tilt));
        tilt = new_tilt;
        // Body.
        let new_tilt = tilt + deltas[step];
        step += 1;
        let up = rot((0.0, a.body_h[i]), (tilt + new_tilt) / 2.0);
        let sup_post = add(inf_post, up);
        let sup_ant = add(sup_post, rot((a.depth[i], 0.0), new_tilt));
        tilt = new_tilt;
        post = sup_post;
        let centroid = Point::new(
            (inf_post.x + inf_ant.x + sup_post.x + sup_ant.x) / 4.0,
            (inf_post.y + inf_ant.y + sup_post.y + sup_ant.y) / 4.0,
        );
        out.push((
            Landmark::Corner(level, Endplate::Inf, Corner::Post),
            inf_post,
        ));
        out.push((Landmark::Corner(level, Endplate::Inf, Corner::Ant), inf_ant));
        out.push((
            Landmark::Corner(level, Endplate::Sup, Corner::Post),
            sup_post,
        ));
        out.push((Landmark::Corner(level, Endplate::Sup, Corner::Ant), sup_ant));
        out.push((Landmark::Centroid(level), centroid));
        if i == 16 {
            first_l4 = out.len();
            l5_sup = (sup_post, sup_ant);
        }
    }
    LateralColumn {
        tilt,
        first_l4,
        l5_sup,
    }
}

/// The move of L4 and above along e (L5 superior endplate, posterior -> anterior) that
/// makes ((L4_inf_post - L5_sup_post) . e) / depth x 100 = `pct`.
fn slip_shift(out: &MmLandmarks, column: &LateralColumn, pct: f64) -> (f64, f64) {
    let (p5, a5) = column.l5_sup;
    let d = p5.dist(a5);
    let e = ((a5.x - p5.x) / d, (a5.y - p5.y) / d);
    let l4_inf_post = out[column.first_l4].1;
    debug_assert_eq!(
        out[column.first_l4].0,
        Landmark::Corner(Level::L(4), Endplate::Inf, Corner::Post)
    );
    let now = (l4_inf_post.x - p5.x) * e.0 + (l4_inf_post.y - p5.y) * e.1;
    let shift = pct / 100.0 * d - now;
    (shift * e.0, shift * e.1)
}

/// Shears the column above L3's centroid horizontally, growing linearly up to `c7`, so
/// that x(C7) - x(S1_sup_post) = `sva` exactly.
fn shear_to_sva(out: &mut MmLandmarks, sva: f64, c7: Point) {
    let y0 = centroid_of(out, Level::L(3)).y;
    let delta = sva - c7.x;
    let shear = |p: Point| {
        let f = ((p.y - y0) / (c7.y - y0)).clamp(0.0, 1.0);
        Point::new(p.x + delta * f, p.y)
    };
    for (_, p) in out.iter_mut() {
        *p = shear(*p);
    }
}

fn centroid_of(v: &MmLandmarks, level: Level) -> Point {
    v.iter()
        .find(|(k, _)| *k == Landmark::Centroid(level))
        .map(|(_, p)| *p)
        .expect("centroid built before use")
}

/// Builds the AP view in mm (x to the patient's left, y up; S1 endplate midpoint at the
/// origin). Vertebral heights follow the lateral chain; the coronal axis is a lumbar
/// curve plus a linear list that puts C7 exactly at the designed C7PL-CSVL.
pub fn ap_landmarks(a: &Anatomy, s: &Shape) -> MmLandmarks {
    let half_s1 = (a.width[16] + 4.0) / 2.0;
    let ob = s.obliquity.to_radians().tan();
    let mut out: MmLandmarks = vec![
        (
            Landmark::Corner(Level::S1, Endplate::Sup, Corner::Left),
            Point::new(half_s1, half_s1 * ob * 0.5),
        ),
        (
            Landmark::Corner(Level::S1, Endplate::Sup, Corner::Right),
            Point::new(-half_s1, -half_s1 * ob * 0.5),
        ),
        (
            Landmark::FemoralHead(Side::Left),
            Point::new(88.0, -75.0 + 88.0 * ob),
        ),
        (
            Landmark::FemoralHead(Side::Right),
            Point::new(-88.0, -75.0 - 88.0 * ob),
        ),
    ];
    // Heights: cumulative disc + body from S1 upward.
    let mut y = 0.0;
    let mut spans = [(0.0, 0.0); 17]; // (inf y, sup y) for T1..L5
    for i in (0..17).rev() {
        y += a.disc_h[i];
        let inf = y;
        y += a.body_h[i];
        spans[i] = (inf, y);
    }
    let c7_y = y + a.disc_h[0] + a.body_h[0] / 2.0;
    // Axis x(y): lumbar curve with apex near L2-L3, plus a linear list from 0 at S1 to
    // -C7PL-CSVL at C7 (C7PL-CSVL = x(M) - x(C7), M at x = 0).
    let lumbar_top = spans[12].1 + 40.0;
    let axis = |y: f64| {
        let curve = if y < lumbar_top {
            s.curve_mm * (std::f64::consts::PI * y / lumbar_top).sin()
        } else {
            0.0
        };
        curve - s.c7pl_csvl * y / c7_y
    };
    let slope = |y: f64| (axis(y + 0.5) - axis(y - 0.5)) / 1.0;
    for (i, &(inf, sup)) in spans.iter().enumerate() {
        let level = tl_level(i);
        let half = a.width[i] / 2.0;
        for (e, yy) in [(Endplate::Inf, inf), (Endplate::Sup, sup)] {
            // Endplate perpendicular to the axis: direction right -> left is (1, -slope).
            let (dx, dy): (f64, f64) = (1.0, -slope(yy));
            let n = dx.hypot(dy);
            let (ux, uy) = (dx / n * half, dy / n * half);
            let c = Point::new(axis(yy), yy);
            out.push((
                Landmark::Corner(level, e, Corner::Right),
                Point::new(c.x - ux, c.y - uy),
            ));
            out.push((
                Landmark::Corner(level, e, Corner::Left),
                Point::new(c.x + ux, c.y + uy),
            ));
        }
        let cy = (inf + sup) / 2.0;
        out.push((Landmark::Centroid(level), Point::new(axis(cy), cy)));
    }
    out.push((
        Landmark::Centroid(Level::C7),
        Point::new(-s.c7pl_csvl, c7_y),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use plumbline_geometry::*;

    #[test]
    fn split_counts_reproduces_wang_2022() {
        // 600 patients: 110 imbalanced = 31 sagittal, 38 coronal, 41 biplanar.
        assert_eq!(imbalanced_count(600), 110);
        assert_eq!(split_counts(110, &shares::TYPES), vec![31, 38, 41]);
        let d = CohortDesign::new(600, 1);
        let count = |f: &dyn Fn(&PatientDesign) -> bool| d.patients.iter().filter(|p| f(p)).count();
        assert_eq!(count(&|p| p.design == Design::Sagittal), 31);
        assert_eq!(count(&|p| p.design == Design::Coronal), 38);
        assert_eq!(count(&|p| p.design == Design::Biplanar), 41);
        // Coronal shifts away: round(0.772 * 79) = 61; forward: round(0.653 * 72) = 47.
        assert_eq!(count(&|p| p.design.coronal() && p.coronal_away), 61);
        assert_eq!(count(&|p| p.design.sagittal() && p.sagittal_forward), 47);
        // Balanced right after surgery: ceil(0.8 * 110) = 88 >= 75%; all by m6.
        assert_eq!(
            count(&|p| p.design != Design::Balanced && p.recovered_at == 1),
            88
        );
        assert_eq!(count(&|p| p.recovered_at > 3), 0);
    }

    #[test]
    fn built_views_meet_their_design_exactly() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let design = PatientDesign {
            design: Design::Biplanar,
            coronal_away: true,
            sagittal_forward: true,
            recovered_at: 2,
        };
        let p = PatientModel::new(design, &mut rng);
        let s = p.shapes[0];
        let lat = ViewLandmarks::from_mm(
            ViewKind::Lateral,
            lateral_landmarks(&p.anatomy, &s),
            OrientationSource::Header,
        );
        let ap = ViewLandmarks::from_mm(
            ViewKind::Ap,
            ap_landmarks(&p.anatomy, &s),
            OrientationSource::Header,
        );
        let m = Metrics::compute(Some(&lat), Some(&ap), &MetricOptions::default());
        assert!((m.get(Metric::SvaMm).unwrap() - s.sva).abs() < 1e-9);
        assert!((m.get(Metric::PtDeg).unwrap() - s.pt).abs() < 1e-9);
        assert!((m.get(Metric::PiDeg).unwrap() - s.pi).abs() < 1e-9);
        assert!((m.get(Metric::C7plCsvlMm).unwrap() - s.c7pl_csvl).abs() < 1e-9);
        assert!(s.sva > 40.0 && s.c7pl_csvl.abs() > 20.0);
        assert_eq!(
            classify(&m, &Thresholds::default()).kind,
            Some(ImbalanceType::Biplanar)
        );
        // LL: the lumbar chain below L3 is not sheared, so L4-S1 is exact; LL itself
        // moves only by the shear of L1-L2.
        assert!((m.get(Metric::LlDeg).unwrap() - s.ll).abs() < 15.0);
        assert_eq!(lat.points().len(), 4 + 17 * 5 + 1);
        assert_eq!(ap.points().len(), 4 + 17 * 5 + 1);
    }
}
