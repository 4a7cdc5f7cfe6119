//! Imbalance classification (`landmarks.md` section 6).

use crate::metrics::{Metric, Metrics};

/// Thresholds of the classification; the pipeline file holds the values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    /// Sagittal imbalance when |SVA| is strictly greater than this (mm). Default 40.
    pub sagittal_sva_mm: f64,
    /// Coronal imbalance when |C7PL-CSVL| is strictly greater than this (mm). Default 20.
    pub coronal_c7pl_csvl_mm: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            sagittal_sva_mm: 40.0,
            coronal_c7pl_csvl_mm: 20.0,
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
    Classification {
        sagittal,
        coronal,
        kind,
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
