//! Classification of a reading (`landmarks.md` section 6): imbalance, the SRS-Schwab
//! sagittal modifiers and abnormal vertebral wedging.

use crate::metrics::{Metric, Metrics};

/// Thresholds of the classification; the pipeline file holds the values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    /// Sagittal imbalance when |SVA| is strictly greater than this (mm). Default 40.
    pub sagittal_sva_mm: f64,
    /// Coronal imbalance when |C7PL-CSVL| is strictly greater than this (mm). Default 20.
    pub coronal_c7pl_csvl_mm: f64,
    /// The SRS-Schwab grade limits.
    pub schwab: SchwabThresholds,
    /// `{lv}_wedge_abnormal` when `{lv}_wedge_index_pct` is strictly greater than this
    /// (%). Default 8.3.
    pub wedge_abnormal_pct: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            sagittal_sva_mm: 40.0,
            coronal_c7pl_csvl_mm: 20.0,
            schwab: SchwabThresholds::default(),
            wedge_abnormal_pct: 8.3,
        }
    }
}

/// The limits of one SRS-Schwab modifier: grade `0` below `plus`, `+` from `plus` up to
/// and including `plus_plus`, `++` above `plus_plus` (signed values: a negative SVA is
/// `0`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SchwabLimits {
    /// Lowest value graded `+`.
    pub plus: f64,
    /// Highest value graded `+`; above it is `++`.
    pub plus_plus: f64,
}

impl SchwabLimits {
    /// The grade of `value`.
    ///
    /// ```
    /// use plumbline_geometry::{SchwabGrade, SchwabLimits};
    /// let pi_ll = SchwabLimits { plus: 10.0, plus_plus: 20.0 };
    /// assert_eq!(pi_ll.grade(9.99), SchwabGrade::Zero);
    /// assert_eq!(pi_ll.grade(10.0), SchwabGrade::Plus);
    /// assert_eq!(pi_ll.grade(20.0), SchwabGrade::Plus);
    /// assert_eq!(pi_ll.grade(20.01), SchwabGrade::PlusPlus);
    /// ```
    pub fn grade(self, value: f64) -> SchwabGrade {
        if value < self.plus {
            SchwabGrade::Zero
        } else if value <= self.plus_plus {
            SchwabGrade::Plus
        } else {
            SchwabGrade::PlusPlus
        }
    }
}

/// The limits of the three SRS-Schwab sagittal modifiers (Schwab et al., Spine
/// 2012;37:1077). Defaults: PI-LL 10 / 20 deg, PT 20 / 30 deg, SVA 40 / 95 mm.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SchwabThresholds {
    /// `schwab_pi_ll` from `pi_ll_deg`.
    pub pi_ll_deg: SchwabLimits,
    /// `schwab_pt` from `pt_deg`.
    pub pt_deg: SchwabLimits,
    /// `schwab_sva` from `sva_mm`.
    pub sva_mm: SchwabLimits,
}

impl Default for SchwabThresholds {
    fn default() -> Self {
        SchwabThresholds {
            pi_ll_deg: SchwabLimits {
                plus: 10.0,
                plus_plus: 20.0,
            },
            pt_deg: SchwabLimits {
                plus: 20.0,
                plus_plus: 30.0,
            },
            sva_mm: SchwabLimits {
                plus: 40.0,
                plus_plus: 95.0,
            },
        }
    }
}

/// One SRS-Schwab modifier grade.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SchwabGrade {
    /// `0`
    Zero,
    /// `+`
    Plus,
    /// `++`
    PlusPlus,
}

impl SchwabGrade {
    /// The three grades in order.
    pub const ALL: [SchwabGrade; 3] = [SchwabGrade::Zero, SchwabGrade::Plus, SchwabGrade::PlusPlus];

    /// Table value: `0`, `+` or `++`.
    pub fn as_str(self) -> &'static str {
        match self {
            SchwabGrade::Zero => "0",
            SchwabGrade::Plus => "+",
            SchwabGrade::PlusPlus => "++",
        }
    }
}

/// The three SRS-Schwab sagittal modifiers of a reading; `None` where the metric is
/// missing.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Schwab {
    /// `schwab_pi_ll`.
    pub pi_ll: Option<SchwabGrade>,
    /// `schwab_pt`.
    pub pt: Option<SchwabGrade>,
    /// `schwab_sva`.
    pub sva: Option<SchwabGrade>,
}

/// One of the three SRS-Schwab sagittal modifiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SchwabModifier {
    /// PI-LL.
    PiLl,
    /// Pelvic tilt.
    Pt,
    /// SVA.
    Sva,
}

impl SchwabModifier {
    /// The three modifiers in column order.
    pub const ALL: [SchwabModifier; 3] = [
        SchwabModifier::PiLl,
        SchwabModifier::Pt,
        SchwabModifier::Sva,
    ];

    /// Column name: `schwab_pi_ll`, `schwab_pt`, `schwab_sva`.
    pub fn name(self) -> &'static str {
        match self {
            SchwabModifier::PiLl => "schwab_pi_ll",
            SchwabModifier::Pt => "schwab_pt",
            SchwabModifier::Sva => "schwab_sva",
        }
    }
}

impl Schwab {
    /// Grades a reading's PI-LL, PT and SVA.
    pub fn grade(m: &Metrics, t: &SchwabThresholds) -> Schwab {
        Schwab {
            pi_ll: m.get(Metric::PiLlDeg).map(|v| t.pi_ll_deg.grade(v)),
            pt: m.get(Metric::PtDeg).map(|v| t.pt_deg.grade(v)),
            sva: m.get(Metric::SvaMm).map(|v| t.sva_mm.grade(v)),
        }
    }

    /// The grade of one modifier.
    pub fn get(&self, k: SchwabModifier) -> Option<SchwabGrade> {
        match k {
            SchwabModifier::PiLl => self.pi_ll,
            SchwabModifier::Pt => self.pt,
            SchwabModifier::Sva => self.sva,
        }
    }
}

/// The imbalance type of one reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ImbalanceType {
    /// Neither plane imbalanced.
    Balanced,
    /// Sagittal only.
    Sagittal,
    /// Coronal only.
    Coronal,
    /// Both planes.
    Biplanar,
}

impl ImbalanceType {
    /// Lower-case table value.
    pub fn as_str(self) -> &'static str {
        match self {
            ImbalanceType::Balanced => "balanced",
            ImbalanceType::Sagittal => "sagittal",
            ImbalanceType::Coronal => "coronal",
            ImbalanceType::Biplanar => "biplanar",
        }
    }
}

/// Side of the disc herniation, from the clinical table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HerniationSide {
    /// Patient left.
    Left,
    /// Patient right.
    Right,
    /// Central: no side to compare a shift with.
    Central,
}

/// Direction of a coronal shift of C7 relative to the herniation side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ShiftRelation {
    /// C7 lies on the side away from the herniation.
    Opposite,
    /// C7 lies on the herniated side.
    Same,
}

/// Direction of a sagittal shift.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SagittalDirection {
    /// C7 plumb line anterior to S1 (SVA > 0).
    Forward,
    /// C7 plumb line posterior (SVA < 0).
    Backward,
}

/// Classification of one reading. `None` fields are unknown (a metric was missing).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Classification {
    /// |SVA| above threshold.
    pub sagittal: Option<bool>,
    /// |C7PL-CSVL| above threshold.
    pub coronal: Option<bool>,
    /// Combined type; unknown when a plane is unknown, except that a known imbalance
    /// in one plane with the other unknown is still unknown (sagittal vs biplanar).
    pub kind: Option<ImbalanceType>,
    /// The SRS-Schwab sagittal modifiers.
    pub schwab: Schwab,
    /// `l1_wedge_abnormal` .. `l5_wedge_abnormal`: the wedge index above the cut-off;
    /// `None` where the index is missing.
    pub wedge_abnormal: [Option<bool>; 5],
}

/// Classifies a reading from its metrics. The coronal plane uses the magnitude of
/// C7PL-CSVL, which is known even on an AP view without left/right orientation.
///
/// ```
/// use plumbline_geometry::{classify, Thresholds, ImbalanceType, Metrics, MetricOptions};
/// let m = Metrics::compute(None, None, &MetricOptions::default());
/// assert_eq!(classify(&m, &Thresholds::default()).kind, None);
/// ```
pub fn classify(m: &Metrics, t: &Thresholds) -> Classification {
    let sagittal = m.get(Metric::SvaMm).map(|v| v.abs() > t.sagittal_sva_mm);
    let coronal = m.c7pl_csvl_magnitude_mm.map(|v| v > t.coronal_c7pl_csvl_mm);
    let kind = match (sagittal, coronal) {
        (Some(false), Some(false)) => Some(ImbalanceType::Balanced),
        (Some(true), Some(false)) => Some(ImbalanceType::Sagittal),
        (Some(false), Some(true)) => Some(ImbalanceType::Coronal),
        (Some(true), Some(true)) => Some(ImbalanceType::Biplanar),
        _ => None,
    };
    let wedge_abnormal = [1, 2, 3, 4, 5].map(|n| {
        m.get(Metric::WedgeIndexPct(n))
            .map(|v| v > t.wedge_abnormal_pct)
    });
    Classification {
        sagittal,
        coronal,
        kind,
        schwab: Schwab::grade(m, &t.schwab),
        wedge_abnormal,
    }
}

/// Where C7 lies relative to the herniation: `c7pl_csvl_mm > 0` means C7 to the
/// patient's right. `None` for a central herniation or a zero offset.
pub fn shift_relation(c7pl_csvl_mm: f64, side: HerniationSide) -> Option<ShiftRelation> {
    let c7_side = if c7pl_csvl_mm > 0.0 {
        HerniationSide::Right
    } else if c7pl_csvl_mm < 0.0 {
        HerniationSide::Left
    } else {
        return None;
    };
    match side {
        HerniationSide::Central => None,
        s if s == c7_side => Some(ShiftRelation::Same),
        _ => Some(ShiftRelation::Opposite),
    }
}

/// Forward or backward from the sign of SVA; `None` at exactly 0.
pub fn sagittal_direction(sva_mm: f64) -> Option<SagittalDirection> {
    if sva_mm > 0.0 {
        Some(SagittalDirection::Forward)
    } else if sva_mm < 0.0 {
        Some(SagittalDirection::Backward)
    } else {
        None
    }
}
