//! Plumbline's render stage: QC overlays (landmarks and the construction lines of every
//! metric drawn on the radiograph) and the self-contained HTML cohort report.

pub mod decode;
pub mod overlay;
pub mod overlay_files;
pub mod report;
