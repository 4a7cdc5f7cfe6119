//! Plumbline's geometry core: typed spine landmarks, the millimetre frame of a view,
//! every alignment metric of `landmarks.md` section 5, the imbalance classification
//! of section 6 and the plausibility checks of section 7. Pure functions on plain data: no I/O.
//!
//! ```
//! use plumbline_geometry::*;
//! // A lateral view in mm (x anterior, y up): C7 40 mm ahead of the S1 posterior corner.
//! let v = ViewLandmarks::from_mm(
//!     ViewKind::Lateral,
//!     [
//!         ("C7_centroid".parse().unwrap(), Point::new(40.0, 600.0)),
//!         ("S1_sup_post".parse().unwrap(), Point::new(0.0, 0.0)),
//!     ],
//!     OrientationSource::Header,
//! );
//! assert_eq!(sva_mm(&v), Some(40.0));
//! assert_eq!(ss_deg(&v), None); // needs S1_sup_ant too
//! ```

mod by_landmark;
mod classify;
mod frame;
mod landmark;
mod measure;
mod metrics;
mod plausibility;

pub use by_landmark::ByLandmark;
pub use classify::*;
pub use frame::*;
pub use landmark::*;
pub use measure::*;
pub use metrics::*;
pub use plausibility::*;
