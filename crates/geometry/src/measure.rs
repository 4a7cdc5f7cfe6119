//! The measure stage for one reading: its views in; its metrics, classification and the
//! plausibility checks each view failed out.

use crate::{
    Classification, Implausible, MetricOptions, Metrics, Thresholds, ViewLandmarks, check_view,
    classify,
};

/// What one reading measures: the result of [`measure`].
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    /// Every metric the views allow.
    pub metrics: Metrics,
    /// Imbalance type, SRS-Schwab modifiers and wedging by the thresholds given.
    pub class: Classification,
    /// The checks of `landmarks.md` section 7 the lateral view failed, in check order.
    pub lateral_implausible: Vec<Implausible>,
    /// The same for the AP view.
    pub ap_implausible: Vec<Implausible>,
}

/// Measures one reading: metrics from its lateral and AP views, their classification and
/// each view's plausibility checks. (Checks across timepoints, such as a jump of pelvic
/// incidence, need the patient's other readings: see [`crate::pi_jumps`].)
///
/// ```
/// use plumbline_geometry::*;
/// let lateral = ViewLandmarks::from_mm(
///     ViewKind::Lateral,
///     [
///         ("C7_centroid".parse().unwrap(), Point::new(60.0, 600.0)),
///         ("S1_sup_post".parse().unwrap(), Point::new(0.0, 0.0)),
///     ],
///     OrientationSource::Header,
/// );
/// let m = measure(Some(&lateral), None, &MetricOptions::default(), &Thresholds::default());
/// assert_eq!(m.metrics.get(Metric::SvaMm), Some(60.0));
/// assert_eq!(m.class.sagittal, Some(true)); // |SVA| over 50 mm
/// assert_eq!(m.class.kind, None); // the type needs the AP view's C7PL-CSVL too
/// assert!(m.lateral_implausible.is_empty() && m.ap_implausible.is_empty());
/// ```
pub fn measure(
    lateral: Option<&ViewLandmarks>,
    ap: Option<&ViewLandmarks>,
    options: &MetricOptions,
    thresholds: &Thresholds,
) -> Measurement {
    let metrics = Metrics::compute(lateral, ap, options);
    let class = classify(&metrics, thresholds);
    Measurement {
        metrics,
        class,
        lateral_implausible: lateral.map(check_view).unwrap_or_default(),
        ap_implausible: ap.map(check_view).unwrap_or_default(),
    }
}
