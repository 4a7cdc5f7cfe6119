//! Results as DICOM: one Comprehensive SR per reading, a TID 1500 Measurement Report
//! (`pipeline-io.md`, `sr/{patient}/{timepoint}_{reader}.dcm`), which a PACS stores next
//! to the radiographs and a viewer shows beside them.
//!
//! The document, in order:
//! - Patient and General Study copied from the reading's first image (lateral, else AP),
//!   so the SR joins the study it measures; its own series (number 990, "Plumbline
//!   alignment metrics"), General and Enhanced General Equipment naming Plumbline and its
//!   version; `SpecificCharacterSet` `ISO_IR 192` (UTF-8).
//! - ContentDate and ContentTime from the newest landmark SR the reading used (the metrics
//!   are a function of those landmarks), else its images', else the study's: never the
//!   clock, so that the same reading gives the same bytes on every run.
//! - Evidence (CurrentRequestedProcedureEvidenceSequence): the source images and landmark
//!   SRs, by study and series.
//! - The content tree: language (en-US); the reader as a person observer (TID 1002) and
//!   Plumbline as a device observer (TID 1004, model name `plumbline {version}`); procedure
//!   reported (SCT 363680008 "Radiographic imaging procedure"); an Image Library of the
//!   source images; Imaging Measurements with one Measurement Group (TID 1501) per view,
//!   tracking identifier `lateral` or `ap`, the view's image as its Source, a NUM per
//!   computable metric of that view (UCUM `mm`, `deg`, `%`, `1`; NumericValue as DS text of
//!   at most 16 characters and FloatingPointValue with the exact value) and the view's
//!   classification as CODE items (sagittal imbalance, the SRS-Schwab modifiers and
//!   abnormal wedging on the lateral view; coronal imbalance on the AP view); and, when both
//!   planes are known, a third group `reading` holding the imbalance type.
//!
//! Codes: DICOM (DCM) for the template's structure; SNOMED CT for "Cobb angle" (285285000,
//! a member of DICOM CID 7550, as dcmtk's generated CID tables list it), "Source"
//! (260753009), "Yes"/"No" (373066001/373067005) and the procedure; every other
//! metric and classification has no DICOM, SNOMED or LOINC concept we could find, and uses
//! the private scheme `99PLUMBLINE`, declared in the file's Coding Scheme Identification
//! Sequence ([`metric_code`], [`CLASS_CODES`]).
//!
//! UIDs are `2.25.` and the first 128 bits of a SHA-256 of the reading (patient, study,
//! timepoint, reader, its images and landmark SRs), the pipeline file's hash (its
//! thresholds decide the CODE items) and the tool version ([`derived_uid`]): a rerun writes
//! the same instance, and a PACS never gets duplicates. The series UID is derived from the
//! study and the tool version, so a study's results SRs share one series.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, Length, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject, OpenFileOptions};
use plumbline_geometry::{ImbalanceType, Metric, SchwabGrade, SchwabModifier};
use plumbline_ingest::{ImageFiles, QcIssue, Severity, View};
use sha2::{Digest, Sha256};

use crate::tables::Measured;
use crate::{Durability, file_safe, write_atomic_as};

/// Comprehensive SR Storage.
pub const COMPREHENSIVE_SR: &str = "1.2.840.10008.5.1.4.1.1.88.33";
/// Explicit VR Little Endian.
const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
/// Plumbline's implementation class UID in the file meta (a `2.25.` UID of its name).
const IMPLEMENTATION_CLASS_UID: &str = "2.25.150148393101238372858412212520381052741";
/// The private coding scheme of the metrics and classes that have no public code.
pub const SCHEME: &str = "99PLUMBLINE";
/// The series number of the results SRs.
pub const SERIES_NUMBER: u32 = 990;
/// The QC code of a reading whose SR could not be written.
pub const SR_FAILED: &str = "sr_failed";

/// A coded concept: value, scheme, meaning.
type Code = (&'static str, &'static str, &'static str);

const YES: Code = ("373066001", "SCT", "Yes");
const NO: Code = ("373067005", "SCT", "No");

/// The classification concepts (scheme [`SCHEME`]): the per-plane flags, the type, the
/// SRS-Schwab modifiers and their grades, and abnormal wedging of L1..L5.
pub const CLASS_CODES: &[Code] = &[
    ("SAGIMB", SCHEME, "Sagittal imbalance"),
    ("CORIMB", SCHEME, "Coronal imbalance"),
    ("IMBTYPE", SCHEME, "Spinal imbalance type"),
    ("BALANCED", SCHEME, "Balanced"),
    ("SAGITTAL", SCHEME, "Sagittal imbalance only"),
    ("CORONAL", SCHEME, "Coronal imbalance only"),
    ("BIPLANAR", SCHEME, "Biplanar imbalance"),
    ("SCHWABPILL", SCHEME, "SRS-Schwab PI-LL modifier"),
    ("SCHWABPT", SCHEME, "SRS-Schwab pelvic tilt modifier"),
    ("SCHWABSVA", SCHEME, "SRS-Schwab SVA modifier"),
    ("SCHWAB0", SCHEME, "SRS-Schwab grade 0"),
    ("SCHWAB1", SCHEME, "SRS-Schwab grade +"),
    ("SCHWAB2", SCHEME, "SRS-Schwab grade ++"),
];

fn class_code(value: &str) -> Code {
    *CLASS_CODES
        .iter()
        .find(|c| c.0 == value)
        .expect("a code of CLASS_CODES")
}

/// What the writer needs besides the reading: the tool version and the pipeline file's
/// hash, both part of every derived UID.
#[derive(Clone, Debug)]
pub struct SrSettings {
    /// Plumbline's version (`CARGO_PKG_VERSION` of the binary).
    pub version: String,
    /// SHA-256 of the pipeline file (as `run.json` reports it).
    pub pipeline_sha256: String,
}

/// One SR written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrWritten {
    /// Path below the output folder: `sr/{patient}/{timepoint}_{reader}.dcm`.
    pub rel: String,
    /// Its StudyInstanceUID (where STOW-RS stores it).
    pub study_uid: String,
    /// Its SOP Instance UID.
    pub sop_instance_uid: String,
}

/// `2.25.` and the first 128 bits of SHA-256 over `parts` (each ended by a NUL), as a
/// decimal number: a UID that names exactly these inputs.
///
/// ```
/// use plumbline_export::results_sr::derived_uid;
/// let a = derived_uid(&["1.2.3", "preop"]);
/// assert!(a.starts_with("2.25.") && a.len() <= 64);
/// assert_eq!(a, derived_uid(&["1.2.3", "preop"]));
/// assert_ne!(a, derived_uid(&["1.2.3", "postop"]));
/// assert_ne!(derived_uid(&["ab", "c"]), derived_uid(&["a", "bc"]));
/// ```
pub fn derived_uid(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    let d = h.finalize();
    let mut n = [0u8; 16];
    n.copy_from_slice(&d[..16]);
    format!("2.25.{}", u128::from_be_bytes(n))
}

/// The code of a metric: SNOMED CT "Cobb angle" for `cobb_deg`, else a short code of
/// [`SCHEME`] (CodeValue is at most 16 characters) with a readable meaning.
///
/// ```
/// use plumbline_geometry::{Metric, Segment};
/// use plumbline_export::results_sr::metric_code;
/// assert_eq!(metric_code(Metric::CobbDeg), ("285285000".into(), "SCT", "Cobb angle".into()));
/// assert_eq!(metric_code(Metric::SvaMm).0, "SVA");
/// let slip = metric_code(Metric::SlipPct(Segment::parse("l4_l5").unwrap()));
/// assert_eq!((slip.0.as_str(), slip.2.as_str()), ("L4L5SLIP", "L4-L5 slip"));
/// ```
pub fn metric_code(m: Metric) -> (String, &'static str, String) {
    let seg = |g: plumbline_geometry::Segment| {
        format!("{}{}", g.upper(), g.lower())
            .to_uppercase()
            .replace('-', "")
    };
    let seg_name = |g: plumbline_geometry::Segment| format!("{}-{}", g.upper(), g.lower());
    let (value, meaning) = match m {
        Metric::CobbDeg => return ("285285000".into(), "SCT", "Cobb angle".into()),
        Metric::SvaMm => ("SVA".into(), "Sagittal vertical axis".into()),
        Metric::SsDeg => ("SS".into(), "Sacral slope".into()),
        Metric::PtDeg => ("PT".into(), "Pelvic tilt".into()),
        Metric::PiDeg => ("PI".into(), "Pelvic incidence".into()),
        Metric::LlDeg => ("LL".into(), "Lumbar lordosis".into()),
        Metric::L4S1LordosisDeg => ("L4S1LL".into(), "L4-S1 lordosis".into()),
        Metric::TkDeg => ("TK".into(), "Thoracic kyphosis".into()),
        Metric::PiLlDeg => (
            "PILL".into(),
            "Pelvic incidence minus lumbar lordosis".into(),
        ),
        Metric::TpaDeg => ("TPA".into(), "T1 pelvic angle".into()),
        Metric::WedgeAngleDeg(n) => (format!("L{n}WEDGEANG"), format!("L{n} wedge angle")),
        Metric::WedgeIndexPct(n) => (format!("L{n}WEDGEIDX"), format!("L{n} wedge index")),
        Metric::C7plCsvlMm => (
            "C7PLCSVL".into(),
            "C7 plumb line to central sacral vertical line".into(),
        ),
        Metric::PelvicObliquityDeg => ("PELVOBL".into(), "Pelvic obliquity".into()),
        Metric::AntHeightMm(n) => (
            format!("L{n}ANTHT"),
            format!("L{n} anterior vertebral body height"),
        ),
        Metric::PostHeightMm(n) => (
            format!("L{n}POSTHT"),
            format!("L{n} posterior vertebral body height"),
        ),
        Metric::DiscAngleDeg(g) => (
            format!("{}DA", seg(g)),
            format!("{} disc angle", seg_name(g)),
        ),
        Metric::SegmentalLordosisDeg(g) => (
            format!("{}SL", seg(g)),
            format!("{} segmental lordosis", seg_name(g)),
        ),
        Metric::DiscHeightAntMm(g) => (
            format!("{}DHA", seg(g)),
            format!("{} anterior disc height", seg_name(g)),
        ),
        Metric::DiscHeightPostMm(g) => (
            format!("{}DHP", seg(g)),
            format!("{} posterior disc height", seg_name(g)),
        ),
        Metric::DiscHeightIndex(g) => (
            format!("{}DHI", seg(g)),
            format!("{} disc height index", seg_name(g)),
        ),
        Metric::SlipPct(g) => (format!("{}SLIP", seg(g)), format!("{} slip", seg_name(g))),
    };
    (value, SCHEME, meaning)
}

/// Whether a metric is measured on the AP view (else the lateral).
fn on_ap(m: Metric) -> bool {
    matches!(
        m,
        Metric::C7plCsvlMm | Metric::CobbDeg | Metric::PelvicObliquityDeg
    )
}

/// The UCUM code of a unit of [`Metric::unit`].
fn ucum(unit: &str) -> (&str, &'static str, &'static str) {
    match unit {
        "mm" => ("mm", "UCUM", "millimeter"),
        "deg" => ("deg", "UCUM", "degree"),
        "%" => ("%", "UCUM", "percent"),
        _ => ("1", "UCUM", "no units"),
    }
}

/// A number as DS text: the shortest text that reads back as `v` when it fits in 16
/// characters, else as many decimals as fit.
///
/// ```
/// use plumbline_export::results_sr::ds_text;
/// assert_eq!(ds_text(41.5), "41.5");
/// assert_eq!(ds_text(-0.1234567890123456789), "-0.1234567890123");
/// assert_eq!(ds_text(12345.678901234567), "12345.6789012346");
/// assert_eq!(ds_text(-9.99999999999999999), "-10");
/// assert_eq!(ds_text(99.999999999999), "99.999999999999");
/// assert!(ds_text(-999.99999999999999).len() <= 16);
/// ```
pub fn ds_text(v: f64) -> String {
    let s = format!("{v}");
    if s.len() <= 16 && !s.contains('e') {
        return s;
    }
    // The integer part's digits plus the sign; rounding may add a digit (9.99.. -> 10.0),
    // so one fewer decimal is tried when the text comes out too long.
    let int_len = format!("{:.0}", v.abs().trunc()).len() + usize::from(v.is_sign_negative());
    let mut decimals = 16usize.saturating_sub(int_len + 1);
    let mut t = format!("{v:.decimals$}");
    while t.len() > 16 && decimals > 0 {
        decimals -= 1;
        t = format!("{v:.decimals$}");
    }
    if t.contains('.') {
        while t.ends_with('0') {
            t.pop();
        }
        if t.ends_with('.') {
            t.pop();
        }
    }
    t
}

/// The header facts of one source file the SR copies or references.
#[derive(Clone, Debug, Default)]
struct SourceHeader {
    sop_class: String,
    sop_instance: String,
    study_uid: String,
    series_uid: String,
    patient_name: String,
    patient_id: String,
    birth_date: String,
    sex: String,
    study_date: String,
    study_time: String,
    referring: String,
    study_id: String,
    accession: String,
    content_date: String,
    content_time: String,
}

impl SourceHeader {
    /// Reads `path` up to its content tree or pixel data.
    fn read(path: &Path) -> Result<SourceHeader, String> {
        let obj = OpenFileOptions::new()
            .read_until(tags::CONTENT_SEQUENCE)
            .open_file(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let s = |tag: Tag| -> String {
            obj.get(tag)
                .and_then(|e| e.to_str().ok())
                .map(|v| v.trim_end_matches(['\0', ' ']).to_string())
                .unwrap_or_default()
        };
        let h = SourceHeader {
            sop_class: s(tags::SOP_CLASS_UID),
            sop_instance: s(tags::SOP_INSTANCE_UID),
            study_uid: s(tags::STUDY_INSTANCE_UID),
            series_uid: s(tags::SERIES_INSTANCE_UID),
            patient_name: s(tags::PATIENT_NAME),
            patient_id: s(tags::PATIENT_ID),
            birth_date: s(tags::PATIENT_BIRTH_DATE),
            sex: s(tags::PATIENT_SEX),
            study_date: s(tags::STUDY_DATE),
            study_time: s(tags::STUDY_TIME),
            referring: s(tags::REFERRING_PHYSICIAN_NAME),
            study_id: s(tags::STUDY_ID),
            accession: s(tags::ACCESSION_NUMBER),
            content_date: s(tags::CONTENT_DATE),
            content_time: s(tags::CONTENT_TIME),
        };
        for (name, v) in [
            ("SOPClassUID", &h.sop_class),
            ("SOPInstanceUID", &h.sop_instance),
            ("StudyInstanceUID", &h.study_uid),
            ("SeriesInstanceUID", &h.series_uid),
        ] {
            if v.is_empty() {
                return Err(format!("{} has no {name}", path.display()));
            }
        }
        Ok(h)
    }
}

/// Writes one SR per reading of `measured` into `out/sr/`, the reading's source files read
/// from `files`; the SRs written, and a QC warning per reading that got none.
/// `done` is called after each reading (progress).
pub fn write_reading_srs(
    out: &Path,
    measured: &[Measured],
    files: &ImageFiles,
    settings: &SrSettings,
    done: &(dyn Fn() + Sync),
) -> (Vec<SrWritten>, Vec<QcIssue>) {
    use rayon::prelude::*;
    let results: Vec<Result<SrWritten, QcIssue>> = measured
        .par_iter()
        .map(|m| {
            let r = write_reading_sr(out, m, files, settings);
            done();
            r
        })
        .collect();
    let (mut written, mut issues) = (Vec::new(), Vec::new());
    for r in results {
        match r {
            Ok(w) => written.push(w),
            Err(i) => issues.push(i),
        }
    }
    (written, issues)
}

/// The file name of a reading's SR below the output folder.
pub fn sr_rel_path(m: &Measured) -> String {
    let row = &m.row;
    format!(
        "sr/{}/{}_{}.dcm",
        file_safe(&row.patient_id),
        file_safe(&row.timepoint),
        file_safe(&row.observer)
    )
}

/// Writes the SR of one reading ([`reading_sr`]) atomically.
pub fn write_reading_sr(
    out: &Path,
    m: &Measured,
    files: &ImageFiles,
    settings: &SrSettings,
) -> Result<SrWritten, QcIssue> {
    let rel = sr_rel_path(m);
    let fail = |msg: String| {
        let at = m
            .reading
            .lateral
            .as_ref()
            .or(m.reading.ap.as_ref())
            .map_or_else(PathBuf::new, |v| v.path.clone());
        QcIssue::file(
            &at,
            Severity::Warning,
            SR_FAILED,
            format!("no {rel}: {msg}"),
        )
        .with_ids("", &m.reading.patient_id)
    };
    let (bytes, study_uid, sop_instance_uid) = reading_sr(m, files, settings).map_err(fail)?;
    write_atomic_as(out, &rel, &bytes, Durability::Cached).map_err(|e| fail(e.to_string()))?;
    Ok(SrWritten {
        rel,
        study_uid,
        sop_instance_uid,
    })
}

/// The SR of one reading as Part 10 bytes, with its StudyInstanceUID and SOP Instance UID;
/// an error naming what could not be read.
pub fn reading_sr(
    m: &Measured,
    files: &ImageFiles,
    settings: &SrSettings,
) -> Result<(Vec<u8>, String, String), String> {
    let r = &m.reading;
    let views: Vec<(&str, &View)> = [("lateral", r.lateral.as_ref()), ("ap", r.ap.as_ref())]
        .into_iter()
        .filter_map(|(n, v)| v.map(|v| (n, v)))
        .collect();
    if views.is_empty() {
        return Err("the reading has no view".into());
    }
    let header_of = |uid: &str| -> Result<SourceHeader, String> {
        let path = files
            .get(uid)
            .ok_or_else(|| format!("the file of {uid} is not known"))?;
        SourceHeader::read(path)
    };
    let images: Vec<(&str, SourceHeader)> = views
        .iter()
        .map(|(n, v)| header_of(&v.image_uid).map(|h| (*n, h)))
        .collect::<Result<_, _>>()?;
    let mut sr_uids: Vec<&str> = views
        .iter()
        .flat_map(|(_, v)| v.landmark_srs.iter().map(String::as_str))
        .collect();
    sr_uids.sort_unstable();
    sr_uids.dedup();
    let landmark_srs: Vec<SourceHeader> = sr_uids
        .iter()
        .map(|u| header_of(u))
        .collect::<Result<_, _>>()?;

    let first = &images[0].1;
    let mut key: Vec<&str> = vec![
        "plumbline results SR",
        &settings.version,
        &settings.pipeline_sha256,
        &r.patient_id,
        &r.study_uid,
        &r.timepoint,
        &r.observer,
    ];
    key.extend(views.iter().flat_map(|(n, v)| [*n, v.image_uid.as_str()]));
    key.extend(sr_uids.iter().copied());
    let sop_uid = derived_uid(&key);
    let series_uid = derived_uid(&[
        "plumbline results series",
        &settings.version,
        &first.study_uid,
    ]);
    let (content_date, content_time) = content_date_time(&landmark_srs, &images, first)
        .ok_or("no ContentDate or StudyDate in its landmark SRs or images")?;

    let mut o = InMemDicomObject::new_empty();
    put_str(&mut o, tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192");
    put_str(&mut o, tags::SOP_CLASS_UID, VR::UI, COMPREHENSIVE_SR);
    put_str(&mut o, tags::SOP_INSTANCE_UID, VR::UI, &sop_uid);
    put_str(&mut o, tags::STUDY_DATE, VR::DA, &first.study_date);
    put_str(&mut o, tags::CONTENT_DATE, VR::DA, &content_date);
    put_str(&mut o, tags::STUDY_TIME, VR::TM, &first.study_time);
    put_str(&mut o, tags::CONTENT_TIME, VR::TM, &content_time);
    put_str(&mut o, tags::ACCESSION_NUMBER, VR::SH, &first.accession);
    put_str(&mut o, tags::MODALITY, VR::CS, "SR");
    put_str(&mut o, tags::MANUFACTURER, VR::LO, "Plumbline");
    put_str(
        &mut o,
        tags::REFERRING_PHYSICIAN_NAME,
        VR::PN,
        &first.referring,
    );
    put_seq(
        &mut o,
        tags::CODING_SCHEME_IDENTIFICATION_SEQUENCE,
        vec![scheme_item()],
    );
    put_str(
        &mut o,
        tags::SERIES_DESCRIPTION,
        VR::LO,
        "Plumbline alignment metrics",
    );
    put_str(&mut o, tags::MANUFACTURER_MODEL_NAME, VR::LO, "plumbline");
    put_seq(
        &mut o,
        tags::REFERENCED_PERFORMED_PROCEDURE_STEP_SEQUENCE,
        vec![],
    );
    put_str(&mut o, tags::PATIENT_NAME, VR::PN, &first.patient_name);
    put_str(&mut o, tags::PATIENT_ID, VR::LO, &first.patient_id);
    put_str(&mut o, tags::PATIENT_BIRTH_DATE, VR::DA, &first.birth_date);
    put_str(&mut o, tags::PATIENT_SEX, VR::CS, &first.sex);
    put_str(&mut o, tags::DEVICE_SERIAL_NUMBER, VR::LO, "none");
    put_str(&mut o, tags::SOFTWARE_VERSIONS, VR::LO, &settings.version);
    put_str(&mut o, tags::STUDY_INSTANCE_UID, VR::UI, &first.study_uid);
    put_str(&mut o, tags::SERIES_INSTANCE_UID, VR::UI, &series_uid);
    put_str(&mut o, tags::STUDY_ID, VR::SH, &first.study_id);
    put_str(
        &mut o,
        tags::SERIES_NUMBER,
        VR::IS,
        &SERIES_NUMBER.to_string(),
    );
    put_str(&mut o, tags::INSTANCE_NUMBER, VR::IS, "1");
    // SR Document Content: the root container.
    put_str(&mut o, tags::VALUE_TYPE, VR::CS, "CONTAINER");
    put_seq(
        &mut o,
        tags::CONCEPT_NAME_CODE_SEQUENCE,
        vec![code_item(("126000", "DCM", "Imaging Measurement Report"))],
    );
    put_str(&mut o, tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE");
    let mut template = InMemDicomObject::new_empty();
    put_str(&mut template, tags::MAPPING_RESOURCE, VR::CS, "DCMR");
    put_str(&mut template, tags::TEMPLATE_IDENTIFIER, VR::CS, "1500");
    put_seq(&mut o, tags::CONTENT_TEMPLATE_SEQUENCE, vec![template]);
    put_str(&mut o, tags::COMPLETION_FLAG, VR::CS, "COMPLETE");
    put_str(&mut o, tags::VERIFICATION_FLAG, VR::CS, "UNVERIFIED");
    let mut evidence: Vec<&SourceHeader> = images.iter().map(|(_, h)| h).collect();
    evidence.extend(landmark_srs.iter());
    put_seq(
        &mut o,
        tags::CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE,
        evidence_items(&evidence),
    );
    put_seq(&mut o, tags::PERFORMED_PROCEDURE_CODE_SEQUENCE, vec![]);
    put_seq(
        &mut o,
        tags::CONTENT_SEQUENCE,
        content(m, &views, &images, settings, &sop_uid),
    );

    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(COMPREHENSIVE_SR)
        .media_storage_sop_instance_uid(&sop_uid)
        .transfer_syntax(EXPLICIT_VR_LE)
        .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
        .implementation_version_name(format!("PLUMBLINE_{}", settings.version))
        .build()
        .map_err(|e| format!("cannot build the file meta: {e}"))?;
    let mut bytes = Vec::new();
    o.with_exact_meta(meta)
        .write_all(&mut bytes)
        .map_err(|e| format!("cannot encode: {e}"))?;
    Ok((bytes, first.study_uid.clone(), sop_uid))
}

/// The newest (ContentDate, ContentTime) of the landmark SRs, else of the images, else the
/// study's date and time.
fn content_date_time(
    srs: &[SourceHeader],
    images: &[(&str, SourceHeader)],
    first: &SourceHeader,
) -> Option<(String, String)> {
    let newest = |hs: Vec<&SourceHeader>| {
        hs.into_iter()
            .filter(|h| !h.content_date.is_empty())
            .map(|h| (h.content_date.clone(), h.content_time.clone()))
            .max()
    };
    newest(srs.iter().collect())
        .or_else(|| newest(images.iter().map(|(_, h)| h).collect()))
        .or_else(|| {
            (!first.study_date.is_empty())
                .then(|| (first.study_date.clone(), first.study_time.clone()))
        })
}

/// The 99PLUMBLINE scheme's item of the Coding Scheme Identification Sequence.
fn scheme_item() -> InMemDicomObject {
    let mut it = InMemDicomObject::new_empty();
    put_str(&mut it, tags::CODING_SCHEME_DESIGNATOR, VR::SH, SCHEME);
    put_str(
        &mut it,
        tags::CODING_SCHEME_NAME,
        VR::ST,
        "Plumbline spine alignment metrics and classes",
    );
    put_str(
        &mut it,
        tags::CODING_SCHEME_RESPONSIBLE_ORGANIZATION,
        VR::ST,
        "Plumbline",
    );
    it
}

/// CurrentRequestedProcedureEvidenceSequence: the instances by study, then series.
fn evidence_items(sources: &[&SourceHeader]) -> Vec<InMemDicomObject> {
    let mut by: BTreeMap<&str, BTreeMap<&str, BTreeMap<&str, &str>>> = BTreeMap::new();
    for h in sources {
        by.entry(&h.study_uid)
            .or_default()
            .entry(&h.series_uid)
            .or_default()
            .insert(&h.sop_instance, &h.sop_class);
    }
    by.into_iter()
        .map(|(study, series)| {
            let mut st = InMemDicomObject::new_empty();
            let series_items = series
                .into_iter()
                .map(|(series, sops)| {
                    let mut se = InMemDicomObject::new_empty();
                    let refs = sops
                        .into_iter()
                        .map(|(inst, class)| sop_ref(class, inst))
                        .collect();
                    put_seq(&mut se, tags::REFERENCED_SOP_SEQUENCE, refs);
                    put_str(&mut se, tags::SERIES_INSTANCE_UID, VR::UI, series);
                    se
                })
                .collect();
            put_seq(&mut st, tags::REFERENCED_SERIES_SEQUENCE, series_items);
            put_str(&mut st, tags::STUDY_INSTANCE_UID, VR::UI, study);
            st
        })
        .collect()
}

/// The root container's children (TID 1500).
fn content(
    m: &Measured,
    views: &[(&str, &View)],
    images: &[(&str, SourceHeader)],
    settings: &SrSettings,
    sop_uid: &str,
) -> Vec<InMemDicomObject> {
    let mut items = vec![code_content(
        "HAS CONCEPT MOD",
        ("121049", "DCM", "Language of Content Item and Descendants"),
        ("en-US", "RFC5646", "English (United States)"),
    )];
    if !m.reading.observer.is_empty() {
        items.push(code_content(
            "HAS OBS CONTEXT",
            ("121005", "DCM", "Observer Type"),
            ("121006", "DCM", "Person"),
        ));
        let mut name = content_item(
            "HAS OBS CONTEXT",
            "PNAME",
            ("121008", "DCM", "Person Observer Name"),
        );
        put_str(&mut name, tags::PERSON_NAME, VR::PN, &m.reading.observer);
        items.push(name);
    }
    items.push(code_content(
        "HAS OBS CONTEXT",
        ("121005", "DCM", "Observer Type"),
        ("121007", "DCM", "Device"),
    ));
    let device_uid = derived_uid(&["plumbline device", &settings.version]);
    let mut uid = content_item(
        "HAS OBS CONTEXT",
        "UIDREF",
        ("121012", "DCM", "Device Observer UID"),
    );
    put_str(&mut uid, tags::UID, VR::UI, &device_uid);
    items.push(uid);
    items.push(text_content(
        "HAS OBS CONTEXT",
        ("121013", "DCM", "Device Observer Name"),
        "Plumbline",
    ));
    items.push(text_content(
        "HAS OBS CONTEXT",
        ("121014", "DCM", "Device Observer Manufacturer"),
        "Plumbline",
    ));
    items.push(text_content(
        "HAS OBS CONTEXT",
        ("121015", "DCM", "Device Observer Model Name"),
        &format!("plumbline {}", settings.version),
    ));
    items.push(code_content(
        "HAS CONCEPT MOD",
        ("121058", "DCM", "Procedure reported"),
        ("363680008", "SCT", "Radiographic imaging procedure"),
    ));
    let library_group = container(
        "CONTAINS",
        ("126200", "DCM", "Image Library Group"),
        images
            .iter()
            .map(|(_, h)| image_content("CONTAINS", None, h))
            .collect(),
    );
    items.push(container(
        "CONTAINS",
        ("111028", "DCM", "Image Library"),
        vec![library_group],
    ));
    let mut groups: Vec<InMemDicomObject> = views
        .iter()
        .zip(images)
        .map(|((name, _), (_, h))| view_group(m, name, h, sop_uid))
        .collect();
    if let Some(kind) = m.row.class.kind {
        let value = match kind {
            ImbalanceType::Balanced => "BALANCED",
            ImbalanceType::Sagittal => "SAGITTAL",
            ImbalanceType::Coronal => "CORONAL",
            ImbalanceType::Biplanar => "BIPLANAR",
        };
        groups.push(container(
            "CONTAINS",
            ("125007", "DCM", "Measurement Group"),
            vec![
                tracking_id("reading"),
                tracking_uid(sop_uid, "reading"),
                code_content("CONTAINS", class_code("IMBTYPE"), class_code(value)),
            ],
        ));
    }
    items.push(container(
        "CONTAINS",
        ("126010", "DCM", "Imaging Measurements"),
        groups,
    ));
    items
}

fn tracking_id(name: &str) -> InMemDicomObject {
    text_content(
        "HAS OBS CONTEXT",
        ("112039", "DCM", "Tracking Identifier"),
        name,
    )
}

fn tracking_uid(sop_uid: &str, name: &str) -> InMemDicomObject {
    let mut it = content_item(
        "HAS OBS CONTEXT",
        "UIDREF",
        ("112040", "DCM", "Tracking Unique Identifier"),
    );
    put_str(&mut it, tags::UID, VR::UI, &derived_uid(&[sop_uid, name]));
    it
}

/// The Measurement Group of one view (`lateral` or `ap`).
fn view_group(m: &Measured, view: &str, image: &SourceHeader, sop_uid: &str) -> InMemDicomObject {
    let lateral = view == "lateral";
    let mut children = vec![
        tracking_id(view),
        tracking_uid(sop_uid, view),
        image_content("CONTAINS", Some(("260753009", "SCT", "Source")), image),
    ];
    for metric in Metric::all().into_iter().filter(|k| on_ap(*k) != lateral) {
        if let Some(v) = m.row.metrics.get(metric).filter(|v| v.is_finite()) {
            children.push(num_content(metric, v));
        }
    }
    let class = &m.row.class;
    let yes_no = |b: bool| if b { YES } else { NO };
    if lateral {
        if let Some(s) = class.sagittal {
            children.push(code_content("CONTAINS", class_code("SAGIMB"), yes_no(s)));
        }
        for (k, code) in
            SchwabModifier::ALL
                .into_iter()
                .zip(["SCHWABPILL", "SCHWABPT", "SCHWABSVA"])
        {
            if let Some(g) = class.schwab.get(k) {
                let grade = match g {
                    SchwabGrade::Zero => "SCHWAB0",
                    SchwabGrade::Plus => "SCHWAB1",
                    SchwabGrade::PlusPlus => "SCHWAB2",
                };
                children.push(code_content(
                    "CONTAINS",
                    class_code(code),
                    class_code(grade),
                ));
            }
        }
        for (i, w) in class.wedge_abnormal.iter().enumerate() {
            if let Some(w) = w {
                let name = wedge_code(i + 1);
                children.push(code_content("CONTAINS", name, yes_no(*w)));
            }
        }
    } else if let Some(c) = class.coronal {
        children.push(code_content("CONTAINS", class_code("CORIMB"), yes_no(c)));
    }
    container("CONTAINS", ("125007", "DCM", "Measurement Group"), children)
}

/// The concept of abnormal wedging of L`n`.
fn wedge_code(n: usize) -> Code {
    const CODES: [Code; 5] = [
        ("L1WEDGEABN", SCHEME, "L1 abnormal wedging"),
        ("L2WEDGEABN", SCHEME, "L2 abnormal wedging"),
        ("L3WEDGEABN", SCHEME, "L3 abnormal wedging"),
        ("L4WEDGEABN", SCHEME, "L4 abnormal wedging"),
        ("L5WEDGEABN", SCHEME, "L5 abnormal wedging"),
    ];
    CODES[n - 1]
}

/// A NUM item of one metric.
fn num_content(metric: Metric, v: f64) -> InMemDicomObject {
    let (value, scheme, meaning) = metric_code(metric);
    let mut it = InMemDicomObject::new_empty();
    put_str(&mut it, tags::RELATIONSHIP_TYPE, VR::CS, "CONTAINS");
    put_str(&mut it, tags::VALUE_TYPE, VR::CS, "NUM");
    let mut name = InMemDicomObject::new_empty();
    put_str(&mut name, tags::CODE_VALUE, VR::SH, &value);
    put_str(&mut name, tags::CODING_SCHEME_DESIGNATOR, VR::SH, scheme);
    put_str(&mut name, tags::CODE_MEANING, VR::LO, &meaning);
    put_seq(&mut it, tags::CONCEPT_NAME_CODE_SEQUENCE, vec![name]);
    let mut measured = InMemDicomObject::new_empty();
    put_seq(
        &mut measured,
        tags::MEASUREMENT_UNITS_CODE_SEQUENCE,
        vec![code_item(ucum(metric.unit()))],
    );
    put_str(&mut measured, tags::NUMERIC_VALUE, VR::DS, &ds_text(v));
    measured.put(DataElement::new(
        tags::FLOATING_POINT_VALUE,
        VR::FD,
        PrimitiveValue::from(v),
    ));
    put_seq(&mut it, tags::MEASURED_VALUE_SEQUENCE, vec![measured]);
    it
}

fn content_item(relationship: &str, value_type: &str, name: Code) -> InMemDicomObject {
    let mut it = InMemDicomObject::new_empty();
    put_str(&mut it, tags::RELATIONSHIP_TYPE, VR::CS, relationship);
    put_str(&mut it, tags::VALUE_TYPE, VR::CS, value_type);
    put_seq(
        &mut it,
        tags::CONCEPT_NAME_CODE_SEQUENCE,
        vec![code_item(name)],
    );
    it
}

fn text_content(relationship: &str, name: Code, text: &str) -> InMemDicomObject {
    let mut it = content_item(relationship, "TEXT", name);
    put_str(&mut it, tags::TEXT_VALUE, VR::UT, text);
    it
}

fn code_content(relationship: &str, name: Code, value: Code) -> InMemDicomObject {
    let mut it = content_item(relationship, "CODE", name);
    put_seq(&mut it, tags::CONCEPT_CODE_SEQUENCE, vec![code_item(value)]);
    it
}

fn container(relationship: &str, name: Code, children: Vec<InMemDicomObject>) -> InMemDicomObject {
    let mut it = content_item(relationship, "CONTAINER", name);
    put_str(&mut it, tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE");
    if !children.is_empty() {
        put_seq(&mut it, tags::CONTENT_SEQUENCE, children);
    }
    it
}

fn image_content(relationship: &str, name: Option<Code>, h: &SourceHeader) -> InMemDicomObject {
    let mut it = InMemDicomObject::new_empty();
    put_str(&mut it, tags::RELATIONSHIP_TYPE, VR::CS, relationship);
    put_str(&mut it, tags::VALUE_TYPE, VR::CS, "IMAGE");
    if let Some(name) = name {
        put_seq(
            &mut it,
            tags::CONCEPT_NAME_CODE_SEQUENCE,
            vec![code_item(name)],
        );
    }
    put_seq(
        &mut it,
        tags::REFERENCED_SOP_SEQUENCE,
        vec![sop_ref(&h.sop_class, &h.sop_instance)],
    );
    it
}

fn code_item((value, scheme, meaning): (&str, &str, &str)) -> InMemDicomObject {
    let mut it = InMemDicomObject::new_empty();
    put_str(&mut it, tags::CODE_VALUE, VR::SH, value);
    put_str(&mut it, tags::CODING_SCHEME_DESIGNATOR, VR::SH, scheme);
    put_str(&mut it, tags::CODE_MEANING, VR::LO, meaning);
    it
}

fn sop_ref(class: &str, instance: &str) -> InMemDicomObject {
    let mut it = InMemDicomObject::new_empty();
    put_str(&mut it, tags::REFERENCED_SOP_CLASS_UID, VR::UI, class);
    put_str(&mut it, tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, instance);
    it
}

fn put_str(o: &mut InMemDicomObject, tag: Tag, vr: VR, s: &str) {
    let value = if s.is_empty() {
        PrimitiveValue::Empty
    } else {
        PrimitiveValue::from(s)
    };
    o.put(DataElement::new(tag, vr, value));
}

fn put_seq(o: &mut InMemDicomObject, tag: Tag, items: Vec<InMemDicomObject>) {
    o.put(DataElement::new(
        tag,
        VR::SQ,
        DataSetSequence::new(items, Length::UNDEFINED),
    ));
}
