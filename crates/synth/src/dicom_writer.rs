//! Writes the synthetic cohort's DICOM files: DX (For Presentation) images and
//! Comprehensive SR landmark documents built on TID 1500 (see `spec/landmarks.md` §2-4).
//!
//! Output is fully deterministic: every value comes from the inputs or from constants
//! (no clock, no randomness), so the same inputs always give byte-identical files.

use std::path::{Path, PathBuf};

use dicom_core::value::{DataSetSequence, PixelFragmentSequence};
use dicom_core::{DataElement, Length, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::mem::InMemElement;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

use crate::raster::{Canvas, MAX_12BIT};

/// Implementation Class UID written in every file meta header.
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.180238729837296526407931398012883451757";
/// Implementation Version Name written in every file meta header.
pub const IMPLEMENTATION_VERSION_NAME: &str = "PLUMBLINE_0_1";
/// Manufacturer (0008,0070) of every written instance.
pub const MANUFACTURER: &str = "Plumbline synth";
/// Coding scheme designator of the landmark vocabulary (spec §3).
pub const LANDMARK_SCHEME: &str = "99SPINE";

/// Patient module attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatientInfo {
    /// Patient ID (0010,0020), LO.
    pub patient_id: String,
    /// Patient's Name (0010,0010), PN such as `SYNTH^P0001`.
    pub patient_name: String,
    /// Patient's Birth Date (0010,0030), `YYYYMMDD`.
    pub birth_date: String,
    /// Patient's Sex (0010,0040), `M` or `F` (also `O` or empty).
    pub sex: String,
}

/// General Study module attributes, shared by a study's images and SRs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StudyInfo {
    /// Study Instance UID (0020,000D).
    pub study_uid: String,
    /// Study Date (0008,0020), `YYYYMMDD`.
    pub study_date: String,
    /// Study Time (0008,0030), `HHMMSS`.
    pub study_time: String,
    /// Accession Number (0008,0050), SH (at most 16 characters).
    pub accession: String,
    /// Study ID (0020,0010), SH (at most 16 characters).
    pub study_id: String,
    /// Study Description (0008,1030), LO.
    pub description: String,
    /// Clinical Trial Time Point ID (0012,0050), written only when `Some`.
    pub timepoint_id: Option<String>,
}

/// Projection of a radiograph.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum View {
    /// Lateral view, written with View Position `LL`.
    Lateral,
    /// Antero-posterior view, written with View Position `AP`.
    Ap,
}

/// Spacing attributes of an image (spec §4). Pairs are `(row spacing, column spacing)` in mm.
#[derive(Clone, Debug, PartialEq)]
pub struct SpacingInfo {
    /// Imager Pixel Spacing (0018,1164); always written (type 1 in the DX Detector module).
    pub imager_pixel_spacing: (f64, f64),
    /// Pixel Spacing (0028,0030), calibrated at the patient; written only when `Some`,
    /// together with Pixel Spacing Calibration Type `GEOMETRY`.
    pub pixel_spacing: Option<(f64, f64)>,
    /// Estimated Radiographic Magnification Factor (0018,1114), written only when `Some`.
    pub magnification: Option<f64>,
}

/// One DX image to write.
#[derive(Clone, Debug)]
pub struct ImageInfo {
    /// SOP Instance UID.
    pub sop_uid: String,
    /// Series Instance UID.
    pub series_uid: String,
    /// Series Number (0020,0011).
    pub series_number: u32,
    /// Instance Number (0020,0013).
    pub instance_number: u32,
    /// Lateral or AP.
    pub view: View,
    /// Pixels: 12-bit values (at most 4095), 1 to 65535 rows and columns.
    pub canvas: Canvas,
    /// Window Center (0028,1050).
    pub window_center: f64,
    /// Window Width (0028,1051), at least 1.
    pub window_width: f64,
    /// Spacing attributes.
    pub spacing: SpacingInfo,
    /// Patient Orientation (0020,0020) as (direction of increasing column, of increasing
    /// row), e.g. `("A", "F")`; `None` writes an empty (type 2) value.
    pub orientation: Option<(String, String)>,
    /// Encode the pixel data with RLE Lossless instead of Explicit VR Little Endian.
    pub rle: bool,
    /// Content Date (0008,0023), `YYYYMMDD`.
    pub content_date: String,
    /// Content Time (0008,0033), `HHMMSS`.
    pub content_time: String,
}

/// One landmark of an SR: a POINT on one image.
#[derive(Clone, Debug, PartialEq)]
pub struct SrPoint {
    /// Canonical landmark name, e.g. `S1_sup_post`: the Tracking Identifier and the
    /// `99SPINE` Finding code value.
    pub name: String,
    /// Readable phrase: the Finding code meaning.
    pub meaning: String,
    /// SOP Instance UID of the image the point lies on; must be listed in [`SrInfo::images`].
    pub image_sop_uid: String,
    /// Column coordinate (pixel centre of the top-left pixel at 0.5).
    pub col: f32,
    /// Row coordinate (pixel centre of the top-left pixel at 0.5).
    pub row: f32,
}

/// One landmark SR document to write.
#[derive(Clone, Debug, PartialEq)]
pub struct SrInfo {
    /// SOP Instance UID of the SR.
    pub sop_uid: String,
    /// Series Instance UID of the SR's own series.
    pub series_uid: String,
    /// Series Number (0020,0011).
    pub series_number: u32,
    /// Instance Number (0020,0013).
    pub instance_number: u32,
    /// Person Observer Name (DCM 121008), PN such as `Reader^Alpha`.
    pub observer: String,
    /// Series Instance UID of the images in [`SrInfo::images`] (all in one series).
    pub image_series_uid: String,
    /// The images listed in the evidence (same study, same series
    /// [`SrInfo::image_series_uid`]).
    pub images: Vec<ImageRef>,
    /// The landmarks, one Measurement Group each, in this order.
    pub points: Vec<SrPoint>,
    /// Content Date (0008,0023), `YYYYMMDD`.
    pub content_date: String,
    /// Content Time (0008,0033), `HHMMSS`.
    pub content_time: String,
}

/// Failure to write a DICOM file; every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The inputs cannot be written as valid DICOM.
    #[error("{}: invalid input: {reason}", path.display())]
    Invalid {
        /// File that was to be written.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// dicom-rs failed to build or encode the object.
    #[error("{}: DICOM encoding failed: {source}", path.display())]
    Encode {
        /// File that was to be written.
        path: PathBuf,
        /// Underlying dicom-rs error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// Creating the parent directory or writing the file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// File that was to be written.
        path: PathBuf,
        /// Underlying I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Format a number as a DICOM Decimal String of at most 16 characters, keeping as many
/// decimals as fit: `0.139`, `1.08333333333333`, `-2.5`, `2`. Fixed notation is used
/// down to 1e-6 in magnitude and up to 16 characters; beyond that, exponent notation such
/// as `1.2345678901e20` or `1.5e-7`.
///
/// Use [`parse_ds`] on the result to get exactly the value a reader sees. Non-finite input
/// has no DS form and yields an empty string (the writers reject such values).
pub fn format_ds(v: f64) -> String {
    if !v.is_finite() {
        return String::new();
    }
    // Fixed notation, as many decimals as fit. Values below 1e-6 in magnitude
    // would lose most digits, so they go to the exponent form unless zero.
    if v == 0.0 || v.abs() >= 1e-6 {
        for prec in (0..=15usize).rev() {
            let s = trim_fraction(format!("{v:.prec$}"));
            if s.len() <= 16 {
                if s == "-0" {
                    return "0".to_string();
                }
                return s;
            }
        }
    }
    for prec in (0..=15usize).rev() {
        let s = format!("{v:.prec$e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mut mant = mant.to_string();
        if parse_ds(&s).is_none() {
            // Rounding overflowed past f64::MAX: truncate the mantissa instead.
            let full = format!("{v:.20e}");
            let keep = if prec == 0 { 0 } else { prec + 1 };
            mant = full[..full.find('.').unwrap_or(1) + keep].to_string();
        }
        let s = format!("{}e{}", trim_fraction(mant), exp);
        if s.len() <= 16 {
            return s;
        }
    }
    String::new() // unreachable for finite f64: "-1e-308" fits
}

/// Remove trailing zeros (and a trailing dot) after a decimal point.
fn trim_fraction(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Parse one DICOM Decimal String value (surrounding spaces allowed); `None` when it is not
/// a finite number.
pub fn parse_ds(s: &str) -> Option<f64> {
    let t = s.trim_matches(|c| c == ' ' || c == '\0');
    if t.is_empty()
        || !t
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
    {
        return None;
    }
    t.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A deterministic UID `2.25.<decimal>` derived from `parts` with 128-bit FNV-1a
/// (stable across platforms and Rust versions). Parts are separated by a NUL byte.
pub fn hashed_uid(parts: &[&str]) -> String {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let mut h = OFFSET;
    let mut feed = |b: u8| {
        h ^= u128::from(b);
        h = h.wrapping_mul(PRIME);
    };
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            feed(0);
        }
        part.bytes().for_each(&mut feed);
    }
    // A 2.25 UID's integer has no leading zero; 0 itself is written as "0".
    format!("2.25.{h}")
}

/// An image an SR refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// SOP Instance UID.
    pub sop_uid: String,
    /// SOP Class UID ([`image_sop_class`] of the image).
    pub sop_class: &'static str,
}

/// The SOP class [`write_image`] uses for `image`: DX For Presentation, or CR when the
/// image has no orientation.
pub fn image_sop_class(image: &ImageInfo) -> &'static str {
    if image.orientation.is_none() {
        uids::COMPUTED_RADIOGRAPHY_IMAGE_STORAGE
    } else {
        uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION
    }
}

/// Write one DX For Presentation image to `path` (parent directories are created); an
/// image without orientation is written as CR (see the comment in the body).
pub fn write_image(
    path: &Path,
    patient: &PatientInfo,
    study: &StudyInfo,
    image: &ImageInfo,
) -> Result<(), WriteError> {
    let v = Validator { path };
    v.common(patient, study)?;
    v.image(image)?;

    // DX For Presentation requires a non-empty PatientOrientation (DX Image module,
    // Type 1C, enforced by dciodvfy). An image without usable orientation is therefore
    // written as a CR image, whose General Image module lets it be empty (Type 2C):
    // the same pixels and spacing, as real archives mixing CR and DX hold them.
    let cr = image.orientation.is_none();
    let mut o = InMemDicomObject::new_empty();
    put_common(
        &mut o,
        patient,
        study,
        image_sop_class(image),
        &image.sop_uid,
    );

    // General Series + DX Series (or CR Series)
    put_str(&mut o, tags::MODALITY, VR::CS, if cr { "CR" } else { "DX" });
    put_str(&mut o, tags::SERIES_INSTANCE_UID, VR::UI, &image.series_uid);
    put_is(&mut o, tags::SERIES_NUMBER, image.series_number);
    if !cr {
        put_str(
            &mut o,
            tags::PRESENTATION_INTENT_TYPE,
            VR::CS,
            "FOR PRESENTATION",
        );
    }

    put_equipment(&mut o);
    put_general_image(&mut o, image);
    put_image_pixel(&mut o, &image.canvas);
    put_dx_acquisition(&mut o, image);

    // VOI LUT
    put_str(
        &mut o,
        tags::WINDOW_CENTER,
        VR::DS,
        &format_ds(image.window_center),
    );
    put_str(
        &mut o,
        tags::WINDOW_WIDTH,
        VR::DS,
        &format_ds(image.window_width),
    );

    // Acquisition Context
    put_seq(&mut o, tags::ACQUISITION_CONTEXT_SEQUENCE, vec![]);

    let ts = put_pixel_data(&mut o, image);
    write_object(path, o, image_sop_class(image), &image.sop_uid, ts)
}

/// General Image and DX Image modules.
fn put_general_image(o: &mut InMemDicomObject, image: &ImageInfo) {
    put_is(o, tags::INSTANCE_NUMBER, image.instance_number);
    put_str(o, tags::CONTENT_DATE, VR::DA, &image.content_date);
    put_str(o, tags::CONTENT_TIME, VR::TM, &image.content_time);
    put_strs(o, tags::IMAGE_TYPE, VR::CS, &["DERIVED", "PRIMARY"]);
    put_str(
        o,
        tags::DERIVATION_DESCRIPTION,
        VR::ST,
        "Synthetic radiograph",
    );
    match &image.orientation {
        Some((a, b)) => put_strs(o, tags::PATIENT_ORIENTATION, VR::CS, &[a, b]),
        None => put_str(o, tags::PATIENT_ORIENTATION, VR::CS, ""),
    }
    put_str(o, tags::BURNED_IN_ANNOTATION, VR::CS, "NO");
    put_str(o, tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00");
    put_str(o, tags::PIXEL_INTENSITY_RELATIONSHIP, VR::CS, "LIN");
    put(
        o,
        tags::PIXEL_INTENSITY_RELATIONSHIP_SIGN,
        VR::SS,
        PrimitiveValue::from(1i16),
    );
    put_str(o, tags::RESCALE_INTERCEPT, VR::DS, "0");
    put_str(o, tags::RESCALE_SLOPE, VR::DS, "1");
    put_str(o, tags::RESCALE_TYPE, VR::LO, "US");
    put_str(o, tags::PRESENTATION_LUT_SHAPE, VR::CS, "IDENTITY");
}

/// Image Pixel module (without the pixel data): 12 bits stored in 16, MONOCHROME2.
fn put_image_pixel(o: &mut InMemDicomObject, c: &Canvas) {
    put_u16(o, tags::SAMPLES_PER_PIXEL, 1);
    put_str(o, tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2");
    put_u16(o, tags::ROWS, c.rows as u16);
    put_u16(o, tags::COLUMNS, c.cols as u16);
    put_u16(o, tags::BITS_ALLOCATED, 16);
    put_u16(o, tags::BITS_STORED, 12);
    put_u16(o, tags::HIGH_BIT, 11);
    put_u16(o, tags::PIXEL_REPRESENTATION, 0);
}

/// DX Anatomy Imaged, DX Detector (with the Basic Pixel Spacing Calibration macro) and
/// DX Positioning modules.
fn put_dx_acquisition(o: &mut InMemDicomObject, image: &ImageInfo) {
    // DX Anatomy Imaged
    put_str(o, tags::BODY_PART_EXAMINED, VR::CS, "SPINE");
    put_seq(
        o,
        tags::ANATOMIC_REGION_SEQUENCE,
        vec![code_item("421060004", "SCT", "Spine")],
    );
    put_str(o, tags::IMAGE_LATERALITY, VR::CS, "U");

    // DX Detector (+ Basic Pixel Spacing Calibration macro)
    let sp = &image.spacing;
    put_str(o, tags::DETECTOR_TYPE, VR::CS, "");
    put_ds_pair(o, tags::IMAGER_PIXEL_SPACING, sp.imager_pixel_spacing);
    if let Some(ps) = sp.pixel_spacing {
        put_ds_pair(o, tags::PIXEL_SPACING, ps);
        put_str(o, tags::PIXEL_SPACING_CALIBRATION_TYPE, VR::CS, "GEOMETRY");
        put_str(
            o,
            tags::PIXEL_SPACING_CALIBRATION_DESCRIPTION,
            VR::LO,
            "Imager pixel spacing corrected for geometric magnification",
        );
    }

    // DX Positioning
    let (view_position, view_code) = match image.view {
        View::Lateral => ("LL", ("399173006", "SCT", "left lateral")),
        View::Ap => ("AP", ("399348003", "SCT", "antero-posterior")),
    };
    put_str(o, tags::VIEW_POSITION, VR::CS, view_position);
    put_seq(
        o,
        tags::VIEW_CODE_SEQUENCE,
        vec![code_item(view_code.0, view_code.1, view_code.2)],
    );
    put_str(o, tags::POSITIONER_TYPE, VR::CS, "");
    if let Some(m) = sp.magnification {
        put_str(
            o,
            tags::ESTIMATED_RADIOGRAPHIC_MAGNIFICATION_FACTOR,
            VR::DS,
            &format_ds(m),
        );
    }
}

/// Pixel Data, RLE Lossless (one fragment) or native; returns the transfer syntax UID.
fn put_pixel_data(o: &mut InMemDicomObject, image: &ImageInfo) -> &'static str {
    let c = &image.canvas;
    if image.rle {
        let frame = encode_rle_frame(c);
        let pixels: PixelFragmentSequence<Vec<u8>> =
            PixelFragmentSequence::new(Vec::<u32>::new(), vec![frame]);
        o.put(DataElement::new(tags::PIXEL_DATA, VR::OB, pixels));
        uids::RLE_LOSSLESS
    } else {
        put(
            o,
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U16(c.data.clone().into()),
        );
        uids::EXPLICIT_VR_LITTLE_ENDIAN
    }
}

/// Write one Comprehensive SR (TID 1500 Measurement Report) holding `sr.points` to `path`
/// (parent directories are created).
///
/// Each point becomes a Measurement Group with a Tracking Identifier (the landmark name),
/// a Tracking Unique Identifier ([`hashed_uid`] of the SR UID and the point index), a
/// Finding code (`99SPINE`, name, meaning) and an Image Region SCOORD POINT selected from
/// its image.
pub fn write_sr(
    path: &Path,
    patient: &PatientInfo,
    study: &StudyInfo,
    sr: &SrInfo,
) -> Result<(), WriteError> {
    let v = Validator { path };
    v.common(patient, study)?;
    v.sr(sr)?;

    let mut o = InMemDicomObject::new_empty();
    put_common(
        &mut o,
        patient,
        study,
        uids::COMPREHENSIVE_SR_STORAGE,
        &sr.sop_uid,
    );

    // SOP Common: declare the private landmark coding scheme
    put_seq(
        &mut o,
        tags::CODING_SCHEME_IDENTIFICATION_SEQUENCE,
        vec![landmark_scheme()],
    );

    // SR Document Series
    put_str(&mut o, tags::MODALITY, VR::CS, "SR");
    put_str(&mut o, tags::SERIES_INSTANCE_UID, VR::UI, &sr.series_uid);
    put_is(&mut o, tags::SERIES_NUMBER, sr.series_number);
    put_seq(
        &mut o,
        tags::REFERENCED_PERFORMED_PROCEDURE_STEP_SEQUENCE,
        vec![],
    );

    put_equipment(&mut o);

    // SR Document General
    put_is(&mut o, tags::INSTANCE_NUMBER, sr.instance_number);
    put_str(&mut o, tags::COMPLETION_FLAG, VR::CS, "COMPLETE");
    put_str(&mut o, tags::VERIFICATION_FLAG, VR::CS, "UNVERIFIED");
    put_str(&mut o, tags::CONTENT_DATE, VR::DA, &sr.content_date);
    put_str(&mut o, tags::CONTENT_TIME, VR::TM, &sr.content_time);
    put_seq(&mut o, tags::PERFORMED_PROCEDURE_CODE_SEQUENCE, vec![]);
    put_seq(
        &mut o,
        tags::CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE,
        vec![evidence(study, sr)],
    );

    // SR Document Content: root of TID 1500
    put_str(&mut o, tags::VALUE_TYPE, VR::CS, "CONTAINER");
    put_seq(
        &mut o,
        tags::CONCEPT_NAME_CODE_SEQUENCE,
        vec![code_item("126000", "DCM", "Imaging Measurement Report")],
    );
    put_str(&mut o, tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE");
    put_seq(
        &mut o,
        tags::CONTENT_TEMPLATE_SEQUENCE,
        vec![template_item("1500")],
    );
    put_seq(&mut o, tags::CONTENT_SEQUENCE, report_content(sr));

    write_object(
        path,
        o,
        uids::COMPREHENSIVE_SR_STORAGE,
        &sr.sop_uid,
        uids::EXPLICIT_VR_LITTLE_ENDIAN,
    )
}

/// The Coding Scheme Identification item declaring [`LANDMARK_SCHEME`].
fn landmark_scheme() -> InMemDicomObject {
    let mut scheme = InMemDicomObject::new_empty();
    put_str(
        &mut scheme,
        tags::CODING_SCHEME_DESIGNATOR,
        VR::SH,
        LANDMARK_SCHEME,
    );
    put_str(
        &mut scheme,
        tags::CODING_SCHEME_NAME,
        VR::ST,
        "Plumbline spine landmarks",
    );
    put_str(
        &mut scheme,
        tags::CODING_SCHEME_RESPONSIBLE_ORGANIZATION,
        VR::ST,
        "Plumbline project",
    );
    scheme
}

/// The Current Requested Procedure Evidence item: the study, the images' series, the
/// images.
fn evidence(study: &StudyInfo, sr: &SrInfo) -> InMemDicomObject {
    let sop_refs: Vec<InMemDicomObject> = sr
        .images
        .iter()
        .map(|im| sop_ref(im.sop_class, &im.sop_uid))
        .collect();
    let mut series_item = InMemDicomObject::new_empty();
    put_str(
        &mut series_item,
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        &sr.image_series_uid,
    );
    put_seq(&mut series_item, tags::REFERENCED_SOP_SEQUENCE, sop_refs);
    let mut study_item = InMemDicomObject::new_empty();
    put_str(
        &mut study_item,
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        &study.study_uid,
    );
    put_seq(
        &mut study_item,
        tags::REFERENCED_SERIES_SEQUENCE,
        vec![series_item],
    );
    study_item
}

/// The content of the TID 1500 root: language, observer context, procedure, the Image
/// Library and the Imaging Measurements (one Measurement Group per landmark).
fn report_content(sr: &SrInfo) -> Vec<InMemDicomObject> {
    let mut content = vec![
        code_content(
            "HAS CONCEPT MOD",
            ("121049", "DCM", "Language of Content Item and Descendants"),
            ("en-US", "RFC5646", "English (United States)"),
        ),
        code_content(
            "HAS OBS CONTEXT",
            ("121005", "DCM", "Observer Type"),
            ("121006", "DCM", "Person"),
        ),
        {
            let mut it = content_item(
                "HAS OBS CONTEXT",
                "PNAME",
                Some(("121008", "DCM", "Person Observer Name")),
            );
            put_str(&mut it, tags::PERSON_NAME, VR::PN, &sr.observer);
            it
        },
        code_content(
            "HAS CONCEPT MOD",
            ("121058", "DCM", "Procedure reported"),
            ("363680008", "SCT", "Radiographic imaging procedure"),
        ),
    ];

    // Image Library
    let library_entries: Vec<InMemDicomObject> = sr
        .images
        .iter()
        .map(|im| image_content("CONTAINS", None, im))
        .collect();
    let group = container(
        "CONTAINS",
        ("126200", "DCM", "Image Library Group"),
        library_entries,
    );
    content.push(container(
        "CONTAINS",
        ("111028", "DCM", "Image Library"),
        vec![group],
    ));

    // Imaging Measurements: one Measurement Group per landmark
    let groups: Vec<InMemDicomObject> = sr
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| measurement_group(&sr.sop_uid, i, p, &sr.images))
        .collect();
    content.push(container(
        "CONTAINS",
        ("126010", "DCM", "Imaging Measurements"),
        groups,
    ));
    content
}

/// Encode one 16-bit single-sample frame as an RLE Lossless fragment (PS3.5 Annex G):
/// a 64-byte header, then two PackBits segments (most significant bytes first), each row
/// encoded separately and each segment padded to an even length.
pub fn encode_rle_frame(canvas: &Canvas) -> Vec<u8> {
    let cols = canvas.cols.max(1) as usize;
    let mut hi = Vec::new();
    let mut lo = Vec::new();
    let mut row_bytes = Vec::with_capacity(cols);
    for row in canvas.data.chunks(cols) {
        row_bytes.clear();
        row_bytes.extend(row.iter().map(|v| (v >> 8) as u8));
        packbits_row(&row_bytes, &mut hi);
        row_bytes.clear();
        row_bytes.extend(row.iter().map(|v| (v & 0xff) as u8));
        packbits_row(&row_bytes, &mut lo);
    }
    for seg in [&mut hi, &mut lo] {
        if seg.len() % 2 == 1 {
            seg.push(0);
        }
    }
    let mut header = [0u32; 16];
    header[0] = 2;
    header[1] = 64;
    header[2] = 64 + hi.len() as u32;
    let mut out = Vec::with_capacity(64 + hi.len() + lo.len());
    for h in header {
        out.extend_from_slice(&h.to_le_bytes());
    }
    out.extend_from_slice(&hi);
    out.extend_from_slice(&lo);
    out
}

/// PackBits-encode one row of bytes (PS3.5 G.3.1), appending to `out`.
fn packbits_row(row: &[u8], out: &mut Vec<u8>) {
    let n = row.len();
    let run_len = |i: usize| {
        let mut k = 1;
        while i + k < n && k < 128 && row[i + k] == row[i] {
            k += 1;
        }
        k
    };
    let mut i = 0;
    while i < n {
        let run = run_len(i);
        if run >= 2 {
            // Replicate run: header -(run-1) as a signed byte.
            out.push((257 - run) as u8);
            out.push(row[i]);
            i += run;
        } else {
            // Literal run, ended by a replicate run of 3+ bytes, the row end or 128 bytes.
            let start = i;
            let mut j = i + 1;
            while j < n
                && j - start < 128
                && !(j + 2 < n && row[j] == row[j + 1] && row[j] == row[j + 2])
            {
                j += 1;
            }
            out.push((j - start - 1) as u8);
            out.extend_from_slice(&row[start..j]);
            i = j;
        }
    }
}

// ---------------------------------------------------------------------------------------
// SR content helpers

type Code<'a> = (&'a str, &'a str, &'a str);

fn measurement_group(
    sr_uid: &str,
    index: usize,
    p: &SrPoint,
    images: &[ImageRef],
) -> InMemDicomObject {
    let image = images
        .iter()
        .find(|im| im.sop_uid == p.image_sop_uid)
        .expect("validated: every point's image is in the SR's list");
    let mut tracking_id = content_item(
        "CONTAINS",
        "TEXT",
        Some(("112039", "DCM", "Tracking Identifier")),
    );
    put_str(&mut tracking_id, tags::TEXT_VALUE, VR::UT, &p.name);

    let mut tracking_uid = content_item(
        "CONTAINS",
        "UIDREF",
        Some(("112040", "DCM", "Tracking Unique Identifier")),
    );
    let idx = index.to_string();
    put_str(
        &mut tracking_uid,
        tags::UID,
        VR::UI,
        &hashed_uid(&[sr_uid, "tracking", &idx]),
    );

    let finding = code_content(
        "CONTAINS",
        ("121071", "DCM", "Finding"),
        (&p.name, LANDMARK_SCHEME, &p.meaning),
    );

    let mut region = content_item(
        "CONTAINS",
        "SCOORD",
        Some(("111030", "DCM", "Image Region")),
    );
    put_str(&mut region, tags::GRAPHIC_TYPE, VR::CS, "POINT");
    put(
        &mut region,
        tags::GRAPHIC_DATA,
        VR::FL,
        PrimitiveValue::from([p.col, p.row]),
    );
    put_seq(
        &mut region,
        tags::CONTENT_SEQUENCE,
        vec![image_content(
            "SELECTED FROM",
            Some(("121324", "DCM", "Source Image")),
            image,
        )],
    );

    container(
        "CONTAINS",
        ("125007", "DCM", "Measurement Group"),
        vec![tracking_id, tracking_uid, finding, region],
    )
}

fn content_item(relationship: &str, value_type: &str, name: Option<Code>) -> InMemDicomObject {
    let mut it = InMemDicomObject::new_empty();
    put_str(&mut it, tags::RELATIONSHIP_TYPE, VR::CS, relationship);
    put_str(&mut it, tags::VALUE_TYPE, VR::CS, value_type);
    if let Some((v, s, m)) = name {
        put_seq(
            &mut it,
            tags::CONCEPT_NAME_CODE_SEQUENCE,
            vec![code_item(v, s, m)],
        );
    }
    it
}

fn code_content(relationship: &str, name: Code, value: Code) -> InMemDicomObject {
    let mut it = content_item(relationship, "CODE", Some(name));
    put_seq(
        &mut it,
        tags::CONCEPT_CODE_SEQUENCE,
        vec![code_item(value.0, value.1, value.2)],
    );
    it
}

fn container(relationship: &str, name: Code, children: Vec<InMemDicomObject>) -> InMemDicomObject {
    let mut it = content_item(relationship, "CONTAINER", Some(name));
    put_str(&mut it, tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE");
    if !children.is_empty() {
        put_seq(&mut it, tags::CONTENT_SEQUENCE, children);
    }
    it
}

fn image_content(relationship: &str, name: Option<Code>, image: &ImageRef) -> InMemDicomObject {
    let mut it = content_item(relationship, "IMAGE", name);
    put_seq(
        &mut it,
        tags::REFERENCED_SOP_SEQUENCE,
        vec![sop_ref(image.sop_class, &image.sop_uid)],
    );
    it
}

fn template_item(tid: &str) -> InMemDicomObject {
    let mut it = InMemDicomObject::new_empty();
    put_str(&mut it, tags::MAPPING_RESOURCE, VR::CS, "DCMR");
    put_str(&mut it, tags::TEMPLATE_IDENTIFIER, VR::CS, tid);
    it
}

fn code_item(value: &str, scheme: &str, meaning: &str) -> InMemDicomObject {
    let mut it = InMemDicomObject::new_empty();
    put_str(&mut it, tags::CODE_VALUE, VR::SH, value);
    put_str(&mut it, tags::CODING_SCHEME_DESIGNATOR, VR::SH, scheme);
    put_str(&mut it, tags::CODE_MEANING, VR::LO, meaning);
    it
}

fn sop_ref(class_uid: &str, instance_uid: &str) -> InMemDicomObject {
    let mut it = InMemDicomObject::new_empty();
    put_str(&mut it, tags::REFERENCED_SOP_CLASS_UID, VR::UI, class_uid);
    put_str(
        &mut it,
        tags::REFERENCED_SOP_INSTANCE_UID,
        VR::UI,
        instance_uid,
    );
    it
}

// ---------------------------------------------------------------------------------------
// Modules shared by images and SRs

/// Patient, General Study, Clinical Trial Study (time point) and SOP Common.
fn put_common(
    o: &mut InMemDicomObject,
    patient: &PatientInfo,
    study: &StudyInfo,
    sop_class: &str,
    sop_uid: &str,
) {
    put_str(o, tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 100");
    put_str(o, tags::SOP_CLASS_UID, VR::UI, sop_class);
    put_str(o, tags::SOP_INSTANCE_UID, VR::UI, sop_uid);

    put_str(o, tags::PATIENT_NAME, VR::PN, &patient.patient_name);
    put_str(o, tags::PATIENT_ID, VR::LO, &patient.patient_id);
    put_str(o, tags::PATIENT_BIRTH_DATE, VR::DA, &patient.birth_date);
    put_str(o, tags::PATIENT_SEX, VR::CS, &patient.sex);

    put_str(o, tags::STUDY_INSTANCE_UID, VR::UI, &study.study_uid);
    put_str(o, tags::STUDY_DATE, VR::DA, &study.study_date);
    put_str(o, tags::STUDY_TIME, VR::TM, &study.study_time);
    put_str(o, tags::REFERRING_PHYSICIAN_NAME, VR::PN, "");
    put_str(o, tags::STUDY_ID, VR::SH, &study.study_id);
    put_str(o, tags::ACCESSION_NUMBER, VR::SH, &study.accession);
    if !study.description.is_empty() {
        put_str(o, tags::STUDY_DESCRIPTION, VR::LO, &study.description);
    }
    if let Some(tp) = &study.timepoint_id {
        put_str(o, tags::CLINICAL_TRIAL_TIME_POINT_ID, VR::LO, tp);
    }
}

fn put_equipment(o: &mut InMemDicomObject) {
    put_str(o, tags::MANUFACTURER, VR::LO, MANUFACTURER);
    put_str(o, tags::MANUFACTURER_MODEL_NAME, VR::LO, "plumbline-synth");
    put_str(
        o,
        tags::SOFTWARE_VERSIONS,
        VR::LO,
        env!("CARGO_PKG_VERSION"),
    );
}

fn write_object(
    path: &Path,
    o: InMemDicomObject,
    sop_class: &str,
    sop_uid: &str,
    ts: &str,
) -> Result<(), WriteError> {
    let encode_err = |e: Box<dyn std::error::Error + Send + Sync>| WriteError::Encode {
        path: path.to_path_buf(),
        source: e,
    };
    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(sop_class)
        .media_storage_sop_instance_uid(sop_uid)
        .transfer_syntax(ts)
        .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
        .implementation_version_name(IMPLEMENTATION_VERSION_NAME)
        .build()
        .map_err(|e| encode_err(Box::new(e)))?;
    let file = o.with_exact_meta(meta);
    let mut bytes = Vec::new();
    file.write_all(&mut bytes)
        .map_err(|e| encode_err(Box::new(e)))?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| WriteError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(path, bytes).map_err(|source| WriteError::Io {
        path: path.to_path_buf(),
        source,
    })
}

// ---------------------------------------------------------------------------------------
// Element helpers

fn put(o: &mut InMemDicomObject, tag: Tag, vr: VR, value: PrimitiveValue) {
    o.put(DataElement::new(tag, vr, value));
}

fn put_str(o: &mut InMemDicomObject, tag: Tag, vr: VR, s: &str) {
    let value = if s.is_empty() {
        PrimitiveValue::Empty
    } else {
        PrimitiveValue::from(s)
    };
    put(o, tag, vr, value);
}

fn put_strs<S: AsRef<str>>(o: &mut InMemDicomObject, tag: Tag, vr: VR, parts: &[S]) {
    let v: Vec<String> = parts.iter().map(|s| s.as_ref().to_string()).collect();
    put(o, tag, vr, PrimitiveValue::Strs(v.into()));
}

fn put_is(o: &mut InMemDicomObject, tag: Tag, n: u32) {
    put_str(o, tag, VR::IS, &n.to_string());
}

fn put_u16(o: &mut InMemDicomObject, tag: Tag, n: u16) {
    put(o, tag, VR::US, PrimitiveValue::from(n));
}

fn put_ds_pair(o: &mut InMemDicomObject, tag: Tag, (a, b): (f64, f64)) {
    put_strs(o, tag, VR::DS, &[format_ds(a), format_ds(b)]);
}

fn put_seq(o: &mut InMemDicomObject, tag: Tag, items: Vec<InMemDicomObject>) {
    let elem: InMemElement =
        DataElement::new(tag, VR::SQ, DataSetSequence::new(items, Length::UNDEFINED));
    o.put(elem);
}

// ---------------------------------------------------------------------------------------
// Input validation (catches generator bugs with a message naming the file)

struct Validator<'a> {
    path: &'a Path,
}

impl Validator<'_> {
    fn invalid(&self, reason: String) -> WriteError {
        WriteError::Invalid {
            path: self.path.to_path_buf(),
            reason,
        }
    }

    fn common(&self, p: &PatientInfo, s: &StudyInfo) -> Result<(), WriteError> {
        self.max_len("Patient ID", &p.patient_id, 64)?;
        self.pn("Patient's Name", &p.patient_name)?;
        if !p.birth_date.is_empty() {
            self.date("Patient's Birth Date", &p.birth_date)?;
        }
        if !["", "M", "F", "O"].contains(&p.sex.as_str()) {
            return Err(self.invalid(format!("Patient's Sex {:?} is not M, F, O or empty", p.sex)));
        }
        self.uid("Study Instance UID", &s.study_uid)?;
        self.date("Study Date", &s.study_date)?;
        self.time("Study Time", &s.study_time)?;
        self.max_len("Accession Number", &s.accession, 16)?;
        self.max_len("Study ID", &s.study_id, 16)?;
        self.max_len("Study Description", &s.description, 64)?;
        if let Some(tp) = &s.timepoint_id {
            self.max_len("Clinical Trial Time Point ID", tp, 64)?;
        }
        Ok(())
    }

    /// An image's UIDs, date and time, pixel matrix, window, spacing and orientation.
    fn image(&self, image: &ImageInfo) -> Result<(), WriteError> {
        self.uid("SOP Instance UID", &image.sop_uid)?;
        self.uid("Series Instance UID", &image.series_uid)?;
        self.date("Content Date", &image.content_date)?;
        self.time("Content Time", &image.content_time)?;
        let c = &image.canvas;
        if c.rows == 0 || c.cols == 0 || c.rows > 65535 || c.cols > 65535 {
            return Err(self.invalid(format!(
                "image size {}x{} (rows x cols) must be 1..=65535 each",
                c.rows, c.cols
            )));
        }
        if c.data.len() != c.rows as usize * c.cols as usize {
            return Err(self.invalid(format!(
                "canvas has {} samples, expected rows*cols = {}",
                c.data.len(),
                c.rows as usize * c.cols as usize
            )));
        }
        if c.max_value() > MAX_12BIT {
            return Err(self.invalid(format!(
                "pixel value {} exceeds 12 bits (max {MAX_12BIT})",
                c.max_value()
            )));
        }
        self.positive("window width", image.window_width, 1.0)?;
        self.finite("window center", image.window_center)?;
        let sp = &image.spacing;
        self.positive("imager pixel spacing (row)", sp.imager_pixel_spacing.0, 0.0)?;
        self.positive("imager pixel spacing (col)", sp.imager_pixel_spacing.1, 0.0)?;
        if let Some((r, col)) = sp.pixel_spacing {
            self.positive("pixel spacing (row)", r, 0.0)?;
            self.positive("pixel spacing (col)", col, 0.0)?;
        }
        if let Some(m) = sp.magnification {
            self.positive("magnification", m, 0.0)?;
        }
        if let Some((a, b)) = &image.orientation {
            self.orientation(a)?;
            self.orientation(b)?;
        }
        Ok(())
    }

    /// An SR's UIDs, date and time, observer, images, and its points: names that fit a
    /// code value, each on one of the SR's images, finite.
    fn sr(&self, sr: &SrInfo) -> Result<(), WriteError> {
        self.uid("SR SOP Instance UID", &sr.sop_uid)?;
        self.uid("SR Series Instance UID", &sr.series_uid)?;
        self.uid("image Series Instance UID", &sr.image_series_uid)?;
        self.date("Content Date", &sr.content_date)?;
        self.time("Content Time", &sr.content_time)?;
        self.pn("observer", &sr.observer)?;
        if sr.images.is_empty() {
            return Err(self.invalid("an SR must reference at least one image".into()));
        }
        for im in &sr.images {
            self.uid("referenced image SOP Instance UID", &im.sop_uid)?;
        }
        for (i, p) in sr.points.iter().enumerate() {
            if p.name.is_empty() || p.name.len() > 16 {
                return Err(self.invalid(format!(
                    "point {i}: landmark name {:?} must be 1..=16 characters (SH code value)",
                    p.name
                )));
            }
            self.max_len("landmark meaning", &p.meaning, 64)?;
            if !sr.images.iter().any(|im| im.sop_uid == p.image_sop_uid) {
                return Err(self.invalid(format!(
                    "point {i} ({}) references image {} which is not in the SR's image list",
                    p.name, p.image_sop_uid
                )));
            }
            if !p.col.is_finite() || !p.row.is_finite() {
                return Err(self.invalid(format!("point {i} ({}) is not finite", p.name)));
            }
        }
        Ok(())
    }

    fn max_len(&self, what: &str, s: &str, max: usize) -> Result<(), WriteError> {
        if s.chars().count() > max || s.contains('\\') || s.chars().any(char::is_control) {
            return Err(self.invalid(format!(
                "{what} {s:?} must be at most {max} characters without backslash or control characters"
            )));
        }
        Ok(())
    }

    fn pn(&self, what: &str, s: &str) -> Result<(), WriteError> {
        if s.split('^').count() > 5 || s.contains('=') {
            return Err(self.invalid(format!("{what} {s:?} is not a single-group PN")));
        }
        self.max_len(what, s, 64)
    }

    fn uid(&self, what: &str, s: &str) -> Result<(), WriteError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.split('.').all(|c| {
                !c.is_empty()
                    && c.bytes().all(|b| b.is_ascii_digit())
                    && (c == "0" || !c.starts_with('0'))
            });
        if !ok {
            return Err(self.invalid(format!("{what} {s:?} is not a valid UID")));
        }
        Ok(())
    }

    fn digits(&self, what: &str, s: &str, n: usize, form: &str) -> Result<(), WriteError> {
        if s.len() != n || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.invalid(format!("{what} {s:?} must be {form}")));
        }
        Ok(())
    }

    fn date(&self, what: &str, s: &str) -> Result<(), WriteError> {
        self.digits(what, s, 8, "YYYYMMDD")
    }

    fn time(&self, what: &str, s: &str) -> Result<(), WriteError> {
        self.digits(what, s, 6, "HHMMSS")
    }

    fn finite(&self, what: &str, x: f64) -> Result<(), WriteError> {
        if !x.is_finite() {
            return Err(self.invalid(format!("{what} {x} is not finite")));
        }
        Ok(())
    }

    /// Finite and `> 0` (when `min == 0`) or `>= min`.
    fn positive(&self, what: &str, x: f64, min: f64) -> Result<(), WriteError> {
        let ok = x.is_finite() && if min == 0.0 { x > 0.0 } else { x >= min };
        if !ok {
            return Err(self.invalid(format!("{what} {x} is out of range")));
        }
        Ok(())
    }

    fn orientation(&self, s: &str) -> Result<(), WriteError> {
        let ok = !s.is_empty() && s.len() <= 16 && s.bytes().all(|b| b"APLRHF".contains(&b));
        if !ok {
            return Err(self.invalid(format!(
                "Patient Orientation value {s:?} must be made of A, P, L, R, H, F"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Independent PackBits decoder for one segment (PS3.5 G.3.2).
    fn unpackbits(seg: &[u8], expected: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(expected);
        let mut i = 0;
        while i < seg.len() && out.len() < expected {
            let h = seg[i] as i8;
            i += 1;
            if h >= 0 {
                let n = h as usize + 1;
                out.extend_from_slice(&seg[i..i + n]);
                i += n;
            } else if h != -128 {
                let n = 1 - h as isize;
                out.extend(std::iter::repeat_n(seg[i], n as usize));
                i += 1;
            }
        }
        out
    }

    fn decode_frame(frame: &[u8], rows: u32, cols: u32) -> Vec<u16> {
        let word = |k: usize| u32::from_le_bytes(frame[4 * k..4 * k + 4].try_into().unwrap());
        assert_eq!(word(0), 2, "segment count");
        assert_eq!(word(1), 64, "first segment offset");
        for k in 3..16 {
            assert_eq!(word(k), 0, "unused header offset {k}");
        }
        let (o1, o2) = (word(1) as usize, word(2) as usize);
        assert_eq!(o2 % 2, 0, "segments padded to even length");
        assert_eq!(frame.len() % 2, 0, "fragment has even length");
        let n = rows as usize * cols as usize;
        let hi = unpackbits(&frame[o1..o2], n);
        let lo = unpackbits(&frame[o2..], n);
        assert_eq!(hi.len(), n);
        assert_eq!(lo.len(), n);
        hi.iter()
            .zip(&lo)
            .map(|(&h, &l)| (u16::from(h) << 8) | u16::from(l))
            .collect()
    }

    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed >> 33
    }

    #[test]
    fn rle_roundtrip_on_varied_content() {
        let mut seed = 7u64;
        for &(rows, cols) in &[(1u32, 1u32), (1, 2), (3, 1), (7, 129), (16, 300), (5, 257)] {
            let mut c = Canvas::new(rows, cols, 100);
            // Mix runs, noise and long literal stretches.
            for (k, v) in c.data.iter_mut().enumerate() {
                let r = lcg(&mut seed);
                *v = match (k / 37) % 4 {
                    0 => 100,
                    1 => (r % 4096) as u16,
                    2 => (k % 3) as u16 * 1000,
                    _ => (r % 2) as u16 + 300,
                };
            }
            c.fill_disc((cols as f64 / 2.0, rows as f64 / 2.0), 3.0, 4095);
            let frame = encode_rle_frame(&c);
            assert_eq!(decode_frame(&frame, rows, cols), c.data, "{rows}x{cols}");
        }
    }

    #[test]
    fn rle_rows_are_encoded_separately_and_runs_compress() {
        let c = Canvas::new(4, 1000, 1234);
        let frame = encode_rle_frame(&c);
        // Each row: 1000 = 7*128 + 104 -> 8 replicate runs of 2 bytes, per segment.
        assert_eq!(frame.len(), 64 + 2 * 4 * 8 * 2);
        assert_eq!(decode_frame(&frame, 4, 1000), c.data);
    }

    #[test]
    fn packbits_literal_and_replicate_limits() {
        let row: Vec<u8> = (0..300u32).map(|i| (i % 251) as u8).collect();
        let mut out = Vec::new();
        packbits_row(&row, &mut out);
        assert_eq!(out[0], 127, "first literal run is 128 bytes");
        assert_eq!(unpackbits(&out, row.len()), row);
        let mut out = Vec::new();
        packbits_row(&[9; 129], &mut out);
        assert_eq!(out, vec![129, 9, 0, 9]);
        let mut out = Vec::new();
        packbits_row(&[1, 2, 2, 3, 4, 4, 4, 5], &mut out);
        assert_eq!(unpackbits(&out, 8), vec![1, 2, 2, 3, 4, 4, 4, 5]);
        assert!(!out.contains(&0x80), "never emits the no-op header");
    }

    #[test]
    fn ds_formatting_fits_and_roundtrips() {
        let cases = [
            0.0,
            -0.0,
            0.139,
            0.1388888888888889,
            1.0833333333333333,
            -2.5,
            1234567.891,
            1e20,
            -1e20,
            1.5e-7,
            -3.3e-300,
            f64::MAX,
            f64::MIN_POSITIVE,
            4095.0,
            2047.5,
        ];
        for v in cases {
            let s = format_ds(v);
            assert!(!s.is_empty() && s.len() <= 16, "{v} -> {s:?}");
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_digit() || b"+-.e".contains(&b)),
                "{s}"
            );
            let back = parse_ds(&s).unwrap();
            let tol = v.abs() * 1e-9 + 1e-300;
            assert!((back - v).abs() <= tol, "{v} -> {s} -> {back}");
        }
        assert_eq!(format_ds(0.139), "0.139");
        assert_eq!(format_ds(-0.0), "0");
        assert_eq!(format_ds(2.0), "2");
        assert_eq!(format_ds(0.1388888888888889), "0.13888888888889");
        assert_eq!(format_ds(1.0833333333333333), "1.08333333333333");
        assert_eq!(format_ds(1.5e-7), "1.5e-7");
        assert_eq!(format_ds(12345678901234567890.0), "1.23456789012e19");
        assert_eq!(format_ds(f64::NAN), "");
        assert_eq!(parse_ds(" 1.5 "), Some(1.5));
        assert_eq!(parse_ds("1e3"), Some(1000.0));
        assert_eq!(parse_ds("inf"), None);
        assert_eq!(parse_ds("NaN"), None);
        assert_eq!(parse_ds(""), None);
    }

    #[test]
    fn hashed_uids_are_valid_stable_and_distinct() {
        let a = hashed_uid(&["1.2.3", "0"]);
        let b = hashed_uid(&["1.2.3", "1"]);
        let c = hashed_uid(&["1.2.30", ""]);
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, hashed_uid(&["1.2.3", "0"]));
        // FNV-1a 128 of the empty input is the offset basis.
        assert_eq!(
            hashed_uid(&[]),
            format!("2.25.{}", 0x6c62_272e_07bb_0142_62b8_2175_6295_c58du128)
        );
        let v = Validator {
            path: Path::new("x"),
        };
        for u in [&a, &b, &c, &IMPLEMENTATION_CLASS_UID.to_string()] {
            assert!(u.len() <= 64);
            v.uid("uid", u).unwrap();
        }
    }

    #[test]
    fn validator_rejects_bad_uids() {
        let v = Validator {
            path: Path::new("x.dcm"),
        };
        for bad in ["", "1..2", "1.02", "1.2.a", &"1.".repeat(40)] {
            let e = v.uid("UID", bad).unwrap_err();
            assert!(e.to_string().contains("x.dcm"), "{e}");
        }
        v.uid("UID", "1.2.0.3").unwrap();
    }
}
