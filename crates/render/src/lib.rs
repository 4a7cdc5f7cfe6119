//! Plumbline's render stage: QC overlays (landmarks and the construction lines of every
//! metric drawn on the radiograph) and the self-contained HTML cohort report.
//!
//! * [`decode`]: a radiograph's frame 0 as an 8-bit picture of bounded height (codecs
//!   chosen by transfer syntax, Modality LUT, VOI, area resize), one file per stage under
//!   `src/decode/`;
//! * [`overlay`]: the landmarks and construction lines drawn on that picture;
//! * [`report`]: `report.html`, with the study-design sections in `src/report/designs.rs`.

#![forbid(unsafe_code)]

pub mod decode;
pub mod overlay;
pub mod overlay_files;
pub mod report;
