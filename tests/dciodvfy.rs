//! Writes every image variant and an SR, validates them with dicom3tools' `dciodvfy` and
//! dcmtk's `dsrdump` (and `dcmdrle` for RLE), and reads them back with dicom-rs; and
//! validates every file of a generated 16-patient cohort the same way.
//!
//! The read-back checks always run; each outside tool's check is its own test, ignored
//! outside CI when the tool is missing and failed under `CI=true` (see `lib.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;

use dicom_dictionary_std::tags;
use dicom_object::open_file;
use dicom_pixeldata::PixelDecoder;
use plumbline_e2e::{DCIODVFY, DCMDRLE, DSRDUMP, require};
use plumbline_synth::dicom_writer::{
    ImageInfo, ImageRef, PatientInfo, SpacingInfo, SrInfo, SrPoint, StudyInfo, View, format_ds,
    image_sop_class, parse_ds, write_image, write_sr,
};
use plumbline_synth::raster::Canvas;

const STUDY_UID: &str = "2.25.1000001";
const SERIES_UID: &str = "2.25.1000002";

fn patient() -> PatientInfo {
    PatientInfo {
        patient_id: "P0001".into(),
        patient_name: "SYNTH^P0001".into(),
        birth_date: "19600101".into(),
        sex: "F".into(),
    }
}

fn study() -> StudyInfo {
    StudyInfo {
        study_uid: STUDY_UID.into(),
        study_date: "20240102".into(),
        study_time: "101500".into(),
        accession: "ACC0001".into(),
        study_id: "S0001".into(),
        description: "Whole spine synthetic".into(),
        timepoint_id: Some("BASELINE".into()),
    }
}

/// A small synthetic radiograph with flat areas (runs) and a gradient (literals).
fn canvas(rows: u32, cols: u32) -> Canvas {
    let mut c = Canvas::new(rows, cols, 200);
    for r in 0..rows {
        for col in 0..cols / 3 {
            c.data[(r * cols + col) as usize] = ((r * 7 + col * 13) % 4096) as u16;
        }
    }
    c.fill_polygon(
        &[(20.0, 30.0), (70.0, 25.5), (75.2, 60.0), (22.0, 66.0)],
        3000,
    );
    c.fill_disc((60.0, 100.0), 12.5, 4095);
    c
}

struct Variant {
    name: &'static str,
    view: View,
    rle: bool,
    pixel_spacing: Option<(f64, f64)>,
    magnification: Option<f64>,
    orientation: Option<(&'static str, &'static str)>,
}

const VARIANTS: &[Variant] = &[
    Variant {
        name: "lat_plain_orient",
        view: View::Lateral,
        rle: false,
        pixel_spacing: None,
        magnification: None,
        orientation: Some(("A", "F")),
    },
    Variant {
        name: "lat_rle_ps_mag_noorient",
        view: View::Lateral,
        rle: true,
        pixel_spacing: Some((0.1388888888888889, 0.1388888888888889)),
        magnification: Some(1.08),
        orientation: None,
    },
    Variant {
        name: "ap_plain_mag_orient",
        view: View::Ap,
        rle: false,
        pixel_spacing: None,
        magnification: Some(1.125),
        orientation: Some(("R", "F")),
    },
    Variant {
        name: "ap_rle_ps_noorient",
        view: View::Ap,
        rle: true,
        pixel_spacing: Some((0.143, 0.1435)),
        magnification: None,
        orientation: None,
    },
];

fn image(i: usize, v: &Variant) -> ImageInfo {
    ImageInfo {
        sop_uid: format!("2.25.2000{i}"),
        series_uid: SERIES_UID.into(),
        series_number: 1,
        instance_number: i as u32 + 1,
        view: v.view,
        canvas: canvas(150, 101),
        window_center: 2047.5,
        window_width: 4096.0,
        spacing: SpacingInfo {
            imager_pixel_spacing: (0.15, 0.15),
            pixel_spacing: v.pixel_spacing,
            magnification: v.magnification,
        },
        orientation: v.orientation.map(|(a, b)| (a.to_string(), b.to_string())),
        rle: v.rle,
        content_date: "20240102".into(),
        content_time: "101600".into(),
    }
}

fn sr_info(images: &[ImageInfo]) -> SrInfo {
    let names = [
        ("S1_sup_post", "S1 superior endplate, posterior corner"),
        ("S1_sup_ant", "S1 superior endplate, anterior corner"),
        ("C7_centroid", "Centre of the C7 vertebral body"),
    ];
    SrInfo {
        sop_uid: "2.25.3000001".into(),
        series_uid: "2.25.3000002".into(),
        series_number: 100,
        instance_number: 1,
        observer: "Reader^Alpha".into(),
        image_series_uid: SERIES_UID.into(),
        images: images
            .iter()
            .map(|im| ImageRef {
                sop_uid: im.sop_uid.clone(),
                sop_class: image_sop_class(im),
            })
            .collect(),
        points: names
            .iter()
            .enumerate()
            .map(|(k, (name, meaning))| SrPoint {
                name: name.to_string(),
                meaning: meaning.to_string(),
                image_sop_uid: images[k % images.len()].sop_uid.clone(),
                col: 10.25 + k as f32 * 0.1,
                row: 100.1 + k as f32 / 3.0,
            })
            .collect(),
        content_date: "20240103".into(),
        content_time: "090000".into(),
    }
}

fn out_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("plumbline-dciodvfy-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// The files of one test: every variant's image and the SR, written to `out_dir(name)`.
struct Written {
    dir: PathBuf,
    images: Vec<ImageInfo>,
    files: Vec<PathBuf>,
    sr: SrInfo,
    sr_path: PathBuf,
}

fn write_all(name: &str) -> Written {
    let dir = out_dir(name);
    let images: Vec<ImageInfo> = VARIANTS
        .iter()
        .enumerate()
        .map(|(i, v)| image(i, v))
        .collect();
    let mut files = Vec::new();
    for (v, im) in VARIANTS.iter().zip(&images) {
        let path = dir.join("nested").join(format!("{}.dcm", v.name));
        write_image(&path, &patient(), &study(), im).unwrap();
        files.push(path);
    }
    let sr = sr_info(&images);
    let sr_path = dir.join("sr.dcm");
    write_sr(&sr_path, &patient(), &study(), &sr).unwrap();
    Written {
        dir,
        images,
        files,
        sr,
        sr_path,
    }
}

/// Run a tool, returning (success, stdout+stderr).
fn run(tool: &str, args: &[&str], file: &Path) -> (bool, String) {
    let out = Command::new(tool)
        .args(args)
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("running {tool}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn assert_dciodvfy_clean(file: &Path, allowed: &[&str]) {
    let (_, text) = run("dciodvfy", &[], file);
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("Error") && !allowed.contains(&l.trim_end()))
        .collect();
    assert!(
        errors.is_empty(),
        "dciodvfy reports errors for {}:\n{text}",
        file.display()
    );
    eprintln!("dciodvfy {}:\n{text}", file.display());
}

fn str_of(obj: &dicom_object::DefaultDicomObject, tag: dicom_object::Tag) -> String {
    obj.element(tag)
        .unwrap_or_else(|e| panic!("{tag}: {e}"))
        .to_str()
        .unwrap()
        .trim_end_matches([' ', '\0'])
        .to_string()
}

// Long (over 80 lines): every attribute the writer sets, read back in the order of the modules that hold it.
#[test]
fn written_files_read_back() {
    let Written {
        dir,
        images,
        files,
        sr,
        sr_path,
    } = write_all("read-back");

    // Determinism: writing again gives identical bytes.
    let again = dir.join("again.dcm");
    write_image(&again, &patient(), &study(), &images[1]).unwrap();
    assert_eq!(
        std::fs::read(&again).unwrap(),
        std::fs::read(&files[1]).unwrap()
    );
    write_sr(&again, &patient(), &study(), &sr).unwrap();
    assert_eq!(
        std::fs::read(&again).unwrap(),
        std::fs::read(&sr_path).unwrap()
    );

    // Read back with dicom-rs.
    for ((v, im), path) in VARIANTS.iter().zip(&images).zip(&files) {
        let obj = open_file(path).unwrap();
        let ts = obj.meta().transfer_syntax().trim_end_matches('\0');
        assert_eq!(
            ts,
            if v.rle {
                "1.2.840.10008.1.2.5"
            } else {
                "1.2.840.10008.1.2.1"
            }
        );
        let rows: u16 = obj.element(tags::ROWS).unwrap().to_int().unwrap();
        assert_eq!(u32::from(rows), im.canvas.rows);
        assert_eq!(
            str_of(&obj, tags::IMAGER_PIXEL_SPACING),
            format!("{}\\{}", format_ds(0.15), format_ds(0.15))
        );
        match v.pixel_spacing {
            Some((r, c)) => {
                let s = str_of(&obj, tags::PIXEL_SPACING);
                assert_eq!(s, format!("{}\\{}", format_ds(r), format_ds(c)));
                let (a, b) = s.split_once('\\').unwrap();
                assert!((parse_ds(a).unwrap() - r).abs() < 1e-12);
                assert!((parse_ds(b).unwrap() - c).abs() < 1e-12);
            }
            None => assert!(obj.element(tags::PIXEL_SPACING).is_err()),
        }
        match v.magnification {
            Some(m) => assert_eq!(
                parse_ds(&str_of(
                    &obj,
                    tags::ESTIMATED_RADIOGRAPHIC_MAGNIFICATION_FACTOR
                )),
                Some(m)
            ),
            None => assert!(
                obj.element(tags::ESTIMATED_RADIOGRAPHIC_MAGNIFICATION_FACTOR)
                    .is_err()
            ),
        }
        assert_eq!(parse_ds(&str_of(&obj, tags::WINDOW_CENTER)), Some(2047.5));
        assert_eq!(
            str_of(&obj, tags::VIEW_POSITION),
            if v.view == View::Lateral { "LL" } else { "AP" }
        );
        let orient = str_of(&obj, tags::PATIENT_ORIENTATION);
        match v.orientation {
            Some((a, b)) => assert_eq!(orient, format!("{a}\\{b}")),
            None => assert_eq!(orient, ""),
        }
        if !v.rle {
            let px: Vec<u16> = obj
                .element(tags::PIXEL_DATA)
                .unwrap()
                .to_multi_int()
                .unwrap();
            assert_eq!(px, im.canvas.data);
        } else {
            let frags = obj.element(tags::PIXEL_DATA).unwrap().fragments().unwrap();
            assert_eq!(frags.len(), 1);
        }
        // Decode through dicom-pixeldata, as the pipeline's reader does.
        let decoded = obj.decode_pixel_data().unwrap();
        assert_eq!(
            decoded.to_vec::<u16>().unwrap(),
            im.canvas.data,
            "{}",
            v.name
        );
    }
    let obj = open_file(&sr_path).unwrap();
    assert_eq!(str_of(&obj, tags::STUDY_INSTANCE_UID), STUDY_UID);
    // Root -> Imaging Measurements (last child) -> first group -> SCOORD (last child).
    let root = obj
        .element(tags::CONTENT_SEQUENCE)
        .unwrap()
        .items()
        .unwrap();
    let measurements = root.last().unwrap();
    let groups = measurements
        .element(tags::CONTENT_SEQUENCE)
        .unwrap()
        .items()
        .unwrap();
    assert_eq!(groups.len(), sr.points.len());
    let scoord = groups[0]
        .element(tags::CONTENT_SEQUENCE)
        .unwrap()
        .items()
        .unwrap()
        .last()
        .unwrap();
    let gd: Vec<f32> = scoord
        .element(tags::GRAPHIC_DATA)
        .unwrap()
        .to_multi_float32()
        .unwrap();
    assert_eq!(gd, vec![sr.points[0].col, sr.points[0].row]);

    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[cfg_attr(
    missing_tool = "dciodvfy",
    ignore = "needs dciodvfy: apt-get install dicom3tools"
)]
fn written_files_pass_dciodvfy() {
    require(&DCIODVFY);
    let Written {
        dir,
        files,
        sr_path,
        ..
    } = write_all("dciodvfy");
    {
        for (v, f) in VARIANTS.iter().zip(&files) {
            // No orientation: written as CR, where an empty PatientOrientation is valid.
            let (_, text) = run("dciodvfy", &[], f);
            let iod = if v.orientation.is_none() {
                "CRImage"
            } else {
                "DXImageForPresentation"
            };
            assert!(text.lines().next() == Some(iod), "{}: {text}", v.name);
            assert_dciodvfy_clean(f, &[]);
        }
        assert_dciodvfy_clean(&sr_path, &[]);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[cfg_attr(
    missing_tool = "dsrdump",
    ignore = "needs dsrdump: apt-get install dcmtk"
)]
fn written_sr_reads_in_dsrdump() {
    require(&DSRDUMP);
    let Written { dir, sr_path, .. } = write_all("dsrdump");
    {
        let (ok, text) = run("dsrdump", &[], &sr_path);
        assert!(ok, "dsrdump failed:\n{text}");
        assert!(text.contains("Imaging Measurement Report"), "{text}");
        assert!(text.contains("S1_sup_post"), "{text}");
        assert!(text.contains("Reader^Alpha"), "{text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[cfg_attr(
    missing_tool = "dcmdrle",
    ignore = "needs dcmdrle: apt-get install dcmtk"
)]
fn written_rle_decodes_in_dcmdrle() {
    require(&DCMDRLE);
    let Written {
        dir, images, files, ..
    } = write_all("dcmdrle");
    {
        for ((v, im), path) in VARIANTS.iter().zip(&images).zip(&files) {
            if !v.rle {
                continue;
            }
            let out = dir.join(format!("{}_decoded.dcm", v.name));
            let status = Command::new("dcmdrle")
                .arg(path)
                .arg(&out)
                .status()
                .unwrap();
            assert!(status.success(), "dcmdrle failed on {}", path.display());
            let dec = open_file(&out).unwrap();
            let px: Vec<u16> = dec
                .element(tags::PIXEL_DATA)
                .unwrap()
                .to_multi_int()
                .unwrap();
            assert_eq!(px, im.canvas.data, "dcmdrle-decoded pixels of {}", v.name);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A generated 16-patient cohort (seed 5, every variant: see
/// `crates/synth/tests/cohort.rs`) and its files.
fn generated_cohort(name: &str) -> (PathBuf, Vec<PathBuf>) {
    let dir = out_dir(name);
    plumbline_synth::generate(&plumbline_synth::SynthOptions {
        patients: 16,
        seed: 5,
        out: dir.clone(),
        image_size: plumbline_synth::ImageSize::Small,
        plant_errors: false,
        schedule: Default::default(),
    })
    .unwrap();
    let files = plumbline_ingest::scan::list_files(&dir.join("dicom"))
        .unwrap()
        .0;
    assert!(files.len() > 200, "{} files", files.len());
    (dir, files)
}

#[test]
#[cfg_attr(
    missing_tool = "dciodvfy",
    ignore = "needs dciodvfy: apt-get install dicom3tools"
)]
fn generated_cohort_passes_dciodvfy() {
    require(&DCIODVFY);
    let (dir, all) = generated_cohort("cohort-dciodvfy");
    for f in &all {
        let (_, text) = run("dciodvfy", &[], f);
        assert!(
            !text.lines().any(|l| l.starts_with("Error")),
            "dciodvfy {}:\n{text}",
            f.display()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[cfg_attr(
    missing_tool = "dsrdump",
    ignore = "needs dsrdump: apt-get install dcmtk"
)]
fn generated_cohort_srs_read_in_dsrdump() {
    require(&DSRDUMP);
    let (dir, all) = generated_cohort("cohort-dsrdump");
    let mut dumped = 0;
    for f in all
        .iter()
        .filter(|f| f.file_name().unwrap().to_string_lossy().starts_with("SR_"))
    {
        let (ok, text) = run("dsrdump", &[], f);
        assert!(ok, "dsrdump {}: {text}", f.display());
        assert!(
            text.contains("Imaging Measurement Report") && text.contains("99SPINE"),
            "{text}"
        );
        dumped += 1;
    }
    assert!(dumped >= 64, "{dumped} SRs dumped");
    let _ = std::fs::remove_dir_all(&dir);
}
