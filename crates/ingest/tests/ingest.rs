//! The ingest stage end to end: the committed synthetic cohort reproduces `truth.csv`
//! through geometry; real CR files and broken inputs give the expected QC codes and
//! never a panic.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use plumbline_geometry::{MetricOptions, Metrics, PatientDirection};
use plumbline_ingest::clinical::read_clinical;
use plumbline_ingest::qc::codes;
use plumbline_ingest::{Orientation, QcIssue, ScanOptions, Severity, default_windows, group, scan};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("plumbline-ingest-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn codes_for<'a>(issues: &'a [QcIssue], path_part: &str) -> BTreeSet<&'a str> {
    issues
        .iter()
        .filter(|i| i.path.to_string_lossy().contains(path_part))
        .map(|i| i.code)
        .collect()
}

// Long (~100 lines): one scan of the committed cohort, checked against truth.csv step by step.
#[test]
fn committed_cohort_reproduces_truth() {
    let cohort = root().join("fixtures/cohort-small");
    let s = scan(&cohort.join("dicom"), &ScanOptions::default(), &|_| {}).unwrap();
    assert_eq!(s.counts.files, 122);
    assert_eq!(s.counts.images, 64);
    assert_eq!(s.counts.srs, 58);
    assert_eq!(
        s.counts.broken + s.counts.not_dicom + s.counts.other_dicom,
        0
    );
    let (clinical, clinical_issues) = read_clinical(&cohort.join("clinical.csv")).unwrap();
    assert!(clinical_issues.is_empty(), "{clinical_issues:?}");
    let g = group(&s, Some(&clinical), &default_windows());
    // Only warnings for images without orientation: nothing lost.
    let errors: Vec<_> = g
        .issues
        .iter()
        .filter(|i| i.severity == Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // Messages speak plainly: no Rust `None`/`Some(..)` in them.
    for i in &g.issues {
        assert!(
            i.message
                .starts_with("PatientOrientation is empty or absent and gives no "),
            "{}",
            i.message
        );
        assert!(
            !i.message.contains("None") && !i.message.contains("Some("),
            "{}",
            i.message
        );
    }
    assert!(
        g.issues.iter().all(|i| i.code == codes::NO_ORIENTATION),
        "{:#?}",
        g.issues
    );

    let mut ours: BTreeMap<(String, String, String, String), f64> = BTreeMap::new();
    for r in &g.readings {
        let m = Metrics::compute(
            r.lateral.as_ref().map(|v| &v.landmarks),
            r.ap.as_ref().map(|v| &v.landmarks),
            &MetricOptions::default(),
        );
        for (k, v) in m.iter() {
            if let Some(v) = v {
                ours.insert(
                    (
                        r.patient_id.clone(),
                        r.timepoint.clone(),
                        r.observer.clone(),
                        k.name(),
                    ),
                    v,
                );
            }
        }
    }
    let mut truth = BTreeMap::new();
    let mut rdr = csv::Reader::from_path(cohort.join("truth.csv")).unwrap();
    for rec in rdr.records() {
        let rec = rec.unwrap();
        truth.insert(
            (
                rec[0].to_string(),
                rec[1].to_string(),
                rec[2].to_string(),
                rec[3].to_string(),
            ),
            rec[4].parse::<f64>().unwrap(),
        );
    }
    assert_eq!(truth.len(), 2971);
    let a: BTreeSet<_> = ours.keys().collect();
    let b: BTreeSet<_> = truth.keys().collect();
    assert_eq!(a, b, "different readings or metrics");
    for (k, v) in &truth {
        let o = ours[k];
        assert!((o - v).abs() < 1e-4, "{k:?}: ingest {o} vs truth {v}");
    }
    // 8 patients x 4 timepoints, with a second reader on some studies.
    let patients: BTreeSet<_> = g.readings.iter().map(|r| &r.patient_id).collect();
    assert_eq!(patients.len(), 8);
    assert!(g.readings.iter().any(|r| r.observer == "Reader^Beta"));
    // Sorted by patient, then window order, then observer.
    let keys: Vec<_> = g
        .readings
        .iter()
        .map(|r| (r.patient_id.clone(), r.timepoint_index, r.observer.clone()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
}

#[test]
fn scan_result_does_not_depend_on_thread_count() {
    let dir = root().join("fixtures/cohort-small/dicom");
    let run = |n| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap();
        pool.install(|| scan(&dir, &ScanOptions::default(), &|_| {}).unwrap())
    };
    let (a, b) = (run(1), run(2));
    assert_eq!(a.images, b.images);
    assert_eq!(a.docs, b.docs);
    assert_eq!(a.issues, b.issues);
}

#[test]
fn real_cr_files_zero_spacing_is_a_qc_error_and_pixels_are_never_decoded() {
    let cr = root().join("fixtures/interop/cr");
    let s = scan(&cr, &ScanOptions::default(), &|_| {}).unwrap();
    // Uncompressed, JPEG 2000 lossless and lossy, RLE: all four scanned as images, though
    // this crate has no JPEG 2000 decoder: the scan never touches pixel data.
    assert_eq!(s.counts.images, 4, "{:#?}", s.issues);
    for im in &s.images {
        assert_eq!((im.rows, im.cols), (1955, 1841));
        assert_eq!(im.spacing, None, "{}", im.path.display());
        assert_eq!(im.orientation, Some(Orientation::new("L", "F")));
        let o = im.orientation.as_ref().unwrap();
        assert_eq!(
            (o.column, o.row),
            (Some(PatientDirection::L), Some(PatientDirection::F))
        );
        let c = codes_for(&s.issues, &im.path.file_name().unwrap().to_string_lossy());
        assert!(c.contains(codes::NO_SPACING), "{c:?}");
        let msg = &s
            .issues
            .iter()
            .find(|i| i.path == im.path && i.code == codes::NO_SPACING)
            .unwrap()
            .message;
        assert!(
            msg.contains("PixelSpacing (0028,0030) is `0.000\\0.000`"),
            "{msg}"
        );
    }
    let ts: BTreeSet<_> = s
        .images
        .iter()
        .map(|i| i.transfer_syntax.as_str())
        .collect();
    assert!(ts.contains("1.2.840.10008.1.2.4.90") && ts.contains("1.2.840.10008.1.2.5"));
    // A JPEG 2000 file cut in the middle of its pixel data still scans: nothing past the
    // header is read.
    let dir = temp_dir("j2k");
    let bytes = std::fs::read(cr.join("RG1_J2KR.dcm")).unwrap();
    std::fs::write(dir.join("cut.dcm"), &bytes[..bytes.len() / 2]).unwrap();
    let s = scan(&dir, &ScanOptions::default(), &|_| {}).unwrap();
    assert_eq!(s.counts.images, 1);
}

// Long (~150 lines): the whole SR is built inline, element by element, so its structure reads top to bottom.
/// An SR whose content tree nests `depth` containers with a point at the bottom.
// Long (over 80 lines): builds one SR of a given depth element by element, in the order of the IOD's modules.
fn deep_sr(depth: usize, image_uid: &str, patient: &str) -> dicom_object::DefaultDicomObject {
    let code = |v: &str, s: &str, m: &str| {
        let mut o = InMemDicomObject::new_empty();
        o.put(DataElement::new(
            tags::CODE_VALUE,
            VR::SH,
            PrimitiveValue::from(v),
        ));
        o.put(DataElement::new(
            tags::CODING_SCHEME_DESIGNATOR,
            VR::SH,
            PrimitiveValue::from(s),
        ));
        o.put(DataElement::new(
            tags::CODE_MEANING,
            VR::LO,
            PrimitiveValue::from(m),
        ));
        o
    };
    let item = |rel: &str, vt: &str, name: InMemDicomObject| {
        let mut o = InMemDicomObject::new_empty();
        o.put(DataElement::new(
            tags::RELATIONSHIP_TYPE,
            VR::CS,
            PrimitiveValue::from(rel),
        ));
        o.put(DataElement::new(
            tags::VALUE_TYPE,
            VR::CS,
            PrimitiveValue::from(vt),
        ));
        o.put(DataElement::new(
            tags::CONCEPT_NAME_CODE_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(vec![name]),
        ));
        o
    };
    let mut image = item(
        "SELECTED FROM",
        "IMAGE",
        code("121324", "DCM", "Source Image"),
    );
    let mut sop = InMemDicomObject::new_empty();
    sop.put(DataElement::new(
        tags::REFERENCED_SOP_CLASS_UID,
        VR::UI,
        PrimitiveValue::from("1.2.840.10008.5.1.4.1.1.1.1"),
    ));
    sop.put(DataElement::new(
        tags::REFERENCED_SOP_INSTANCE_UID,
        VR::UI,
        PrimitiveValue::from(image_uid),
    ));
    image.put(DataElement::new(
        tags::REFERENCED_SOP_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(vec![sop]),
    ));
    let mut point = item(
        "CONTAINS",
        "SCOORD",
        code(
            "S1_sup_post",
            "99SPINE",
            "S1 superior endplate, posterior corner",
        ),
    );
    point.put(DataElement::new(
        tags::GRAPHIC_TYPE,
        VR::CS,
        PrimitiveValue::from("POINT"),
    ));
    point.put(DataElement::new(
        tags::GRAPHIC_DATA,
        VR::FL,
        PrimitiveValue::from([10.0f32, 20.0]),
    ));
    point.put(DataElement::new(
        tags::CONTENT_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(vec![image]),
    ));
    let mut node = point;
    for _ in 0..depth {
        let mut c = item(
            "CONTAINS",
            "CONTAINER",
            code("125007", "DCM", "Measurement Group"),
        );
        c.put(DataElement::new(
            tags::CONTINUITY_OF_CONTENT,
            VR::CS,
            PrimitiveValue::from("SEPARATE"),
        ));
        c.put(DataElement::new(
            tags::CONTENT_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(vec![node]),
        ));
        node = c;
    }
    let mut root = InMemDicomObject::new_empty();
    let sr_uid = "2.25.1234567890";
    root.put(DataElement::new(
        tags::SOP_CLASS_UID,
        VR::UI,
        PrimitiveValue::from("1.2.840.10008.5.1.4.1.1.88.33"),
    ));
    root.put(DataElement::new(
        tags::SOP_INSTANCE_UID,
        VR::UI,
        PrimitiveValue::from(sr_uid),
    ));
    root.put(DataElement::new(
        tags::PATIENT_ID,
        VR::LO,
        PrimitiveValue::from(patient),
    ));
    root.put(DataElement::new(
        tags::MODALITY,
        VR::CS,
        PrimitiveValue::from("SR"),
    ));
    root.put(DataElement::new(
        tags::VALUE_TYPE,
        VR::CS,
        PrimitiveValue::from("CONTAINER"),
    ));
    root.put(DataElement::new(
        tags::CONCEPT_NAME_CODE_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(vec![code("126000", "DCM", "Imaging Measurement Report")]),
    ));
    root.put(DataElement::new(
        tags::CONTENT_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(vec![node]),
    ));
    root.with_meta(
        FileMetaTableBuilder::new()
            .transfer_syntax("1.2.840.10008.1.2.1")
            .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.88.33")
            .media_storage_sop_instance_uid(sr_uid),
    )
    .unwrap()
}

fn copy_study(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
}

// Long (~150 lines): one folder of broken inputs, each made next to the QC code it must get, scanned once.
#[test]
fn broken_inputs_give_qc_codes_never_a_panic() {
    let cohort = root().join("fixtures/cohort-small");
    let dir = temp_dir("broken");
    // A good patient (all four studies) stays usable throughout.
    for e in std::fs::read_dir(cohort.join("dicom/P0001")).unwrap() {
        let p = e.unwrap().path();
        copy_study(&p, &dir.join("good/P0001").join(p.file_name().unwrap()));
    }
    // Truncated copies of an image and of an SR at several offsets.
    let study = std::fs::read_dir(cohort.join("dicom/P0002"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&study)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    sources.sort();
    let image = sources
        .iter()
        .find(|p| !p.file_name().unwrap().to_string_lossy().starts_with("SR"))
        .unwrap();
    let sr = sources
        .iter()
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("SR"))
        .unwrap();
    let mut truncated = Vec::new();
    for (kind, src) in [("image", image), ("sr", sr)] {
        let bytes = std::fs::read(src).unwrap();
        for cut in [
            0,
            10,
            100,
            131,
            132,
            200,
            700,
            2000,
            bytes.len() / 2,
            bytes.len() - 1,
        ] {
            let p = dir.join(format!("trunc/{kind}_{cut}.dcm"));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, &bytes[..cut]).unwrap();
            truncated.push(p);
        }
    }
    // A text file named .dcm.
    std::fs::write(dir.join("notes.dcm"), "this is not DICOM\n").unwrap();
    // A DICOM image with no SOP Instance UID.
    let mut obj = dicom_object::open_file(image).unwrap();
    obj.remove_element(tags::SOP_INSTANCE_UID);
    obj.write_to_file(dir.join("no_uid.dcm")).unwrap();
    // An SR whose images are absent (the SR of another patient, alone).
    let lonely = std::fs::read_dir(cohort.join("dicom/P0003"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let lonely_sr = std::fs::read_dir(&lonely)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("SR"))
        .unwrap();
    std::fs::copy(&lonely_sr, dir.join("orphan_sr.dcm")).unwrap();
    // SRs with a 100- and a 200-deep content tree pointing at a good image: the first is
    // read down to the depth cap (64), the second is nested deeper than the structure
    // check lets through to dicom-rs (4 * 64 + 16 sequence and item levels).
    let s0 = scan(&dir.join("good"), &ScanOptions::default(), &|_| {}).unwrap();
    let target = &s0.images[0];
    for (depth, name) in [(100, "deep_sr.dcm"), (200, "deeper_sr.dcm")] {
        let (uid, pid, out) = (
            target.sop_instance_uid.clone(),
            target.patient_id.clone(),
            dir.join(name),
        );
        // Building and writing a deep tree recurses in dicom-rs: give it a big stack.
        std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn(move || deep_sr(depth, &uid, &pid).write_to_file(out).unwrap())
            .unwrap()
            .join()
            .unwrap();
    }

    let s = scan(&dir, &ScanOptions::default(), &|_| {}).unwrap();
    let (clinical, _) = read_clinical(&cohort.join("clinical.csv")).unwrap();
    let g = group(&s, Some(&clinical), &default_windows());
    let all: Vec<QcIssue> = s.issues.iter().chain(&g.issues).cloned().collect();

    for p in &truncated {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let c = codes_for(&all, &name);
        assert!(
            c.contains(codes::BROKEN_FILE) || c.contains(codes::NOT_DICOM),
            "{name}: {c:?}"
        );
    }
    // Cut before the magic: not DICOM; cut later: broken.
    assert!(codes_for(&all, "image_10.dcm").contains(codes::NOT_DICOM));
    assert!(codes_for(&all, "image_700.dcm").contains(codes::BROKEN_FILE));
    assert!(codes_for(&all, "image_").len() <= 2);
    let notes: Vec<_> = all
        .iter()
        .filter(|i| i.path.ends_with("notes.dcm"))
        .collect();
    assert_eq!(notes.len(), 1);
    assert_eq!(
        (notes[0].code, notes[0].severity),
        (codes::NOT_DICOM, Severity::Warning)
    );
    assert!(codes_for(&all, "no_uid.dcm").contains(codes::MISSING_ATTRIBUTE));
    let orphan = codes_for(&all, "orphan_sr.dcm");
    assert!(orphan.contains(codes::IMAGE_NOT_FOUND), "{orphan:?}");
    let deep = codes_for(&all, "/deep_sr.dcm");
    assert!(deep.contains(codes::SR_TOO_DEEP), "{deep:?}");
    let deeper = codes_for(&all, "deeper_sr.dcm");
    assert_eq!(deeper, BTreeSet::from([codes::HOSTILE_STRUCTURE]));
    // Every file is accounted for: read as image or landmarks, or listed in QC.
    let listed: BTreeSet<&Path> = all.iter().map(|i| i.path.as_path()).collect();
    let used: BTreeSet<&Path> = s
        .images
        .iter()
        .map(|i| i.path.as_path())
        .chain(s.docs.iter().map(|d| d.path.as_path()))
        .collect();
    let (files, _) = plumbline_ingest::scan::list_files(&dir).unwrap();
    for f in &files {
        assert!(
            listed.contains(f.as_path()) || used.contains(f.as_path()),
            "{} lost",
            f.display()
        );
    }
    // The good patient still yields all four timepoints, with both readers where the
    // cohort has two.
    let good: Vec<_> = g
        .readings
        .iter()
        .filter(|r| r.patient_id == "P0001")
        .collect();
    let tps: BTreeSet<_> = good.iter().map(|r| r.timepoint.as_str()).collect();
    assert_eq!(tps, BTreeSet::from(["preop", "postop", "m3", "m6"]));
    assert!(good.iter().all(|r| r.lateral.is_some() && r.ap.is_some()));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn two_readers_on_one_image_are_two_landmark_sets() {
    let cohort = root().join("fixtures/cohort-small");
    let s = scan(&cohort.join("dicom"), &ScanOptions::default(), &|_| {}).unwrap();
    let (clinical, _) = read_clinical(&cohort.join("clinical.csv")).unwrap();
    let g = group(&s, Some(&clinical), &default_windows());
    let mut by_image: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for r in &g.readings {
        for v in [&r.lateral, &r.ap].into_iter().flatten() {
            by_image
                .entry(v.image_uid.as_str())
                .or_default()
                .insert(r.observer.as_str());
        }
    }
    let doubly = by_image.values().filter(|o| o.len() == 2).count();
    assert!(doubly >= 2, "{doubly} images read twice");
    assert!(by_image.values().all(|o| o.contains("Reader^Alpha")));
}

// Long (~110 lines): one folder of join and grouping problems, each made next to the QC code it must get, grouped once.
#[test]
fn join_and_grouping_problems_are_reported() {
    let cohort = root().join("fixtures/cohort-small");
    let dir = temp_dir("join");
    for pid in ["P0001", "P0002", "P0003"] {
        for e in std::fs::read_dir(cohort.join("dicom").join(pid)).unwrap() {
            let p = e.unwrap().path();
            copy_study(&p, &dir.join("tree").join(pid).join(p.file_name().unwrap()));
        }
    }
    let s0 = scan(&dir.join("tree"), &ScanOptions::default(), &|_| {}).unwrap();
    let lat = s0
        .images
        .iter()
        .find(|i| i.patient_id == "P0001" && i.view_position.as_deref() == Some("LL"))
        .unwrap()
        .clone();
    // The same image stored again without the 128-byte preamble: read all the same, and
    // a duplicate SOP Instance UID.
    let bytes = std::fs::read(&lat.path).unwrap();
    std::fs::write(dir.join("tree/copy_without_preamble"), &bytes[128..]).unwrap();
    // ViewPosition that contradicts the landmarks.
    let mut obj = dicom_object::open_file(&lat.path).unwrap();
    obj.put(DataElement::new(
        tags::VIEW_POSITION,
        VR::CS,
        PrimitiveValue::from("AP"),
    ));
    obj.write_to_file(&lat.path).unwrap();
    // A landmark CSV by a third reader: one point outside the image, one landmark twice,
    // and an AP corner among lateral ones.
    let csv = format!(
        "sop_instance_uid,landmark,column,row,observer\n\
         {u},C7_centroid,{c},10,Reader^Gamma\n\
         {u},L1_sup_ant,72,40,Reader^Gamma\n\
         {u},L1_sup_left,60,40,Reader^Gamma\n\
         {u},S1_sup_post,50,60,Reader^Gamma\n\
         {u},S1_sup_post,51,61,Reader^Gamma\n\
         {u},S1_sup_ant,70,60,Reader^Gamma\n\
         {u},FH_left,60,100,Reader^Gamma\n",
        u = lat.sop_instance_uid,
        c = lat.cols + 5
    );
    std::fs::write(dir.join("tree/gamma.csv"), csv).unwrap();
    // Clinical table: P0002 missing, an extra patient without images, and P0003's
    // surgery moved so that its studies leave the windows.
    let text = std::fs::read_to_string(cohort.join("clinical.csv")).unwrap();
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with("P0002,"))
        .map(|l| {
            if l.starts_with("P0003,") {
                let f: Vec<&str> = l.split(',').collect();
                format!("P0003,2019-01-01,{}", f[2..].join(","))
            } else {
                l.to_string()
            }
        })
        .collect();
    lines.push("P9999,2022-01-01,L4-L5,left,F,50,no,yes,2".into());
    std::fs::write(dir.join("clinical.csv"), lines.join("\n") + "\n").unwrap();

    let s = scan(&dir.join("tree"), &ScanOptions::default(), &|_| {}).unwrap();
    assert_eq!(
        s.counts.images,
        s0.counts.images + 1,
        "no-preamble copy read as an image"
    );
    assert_eq!(s.counts.landmark_files, 1);
    let (clinical, _) = read_clinical(&dir.join("clinical.csv")).unwrap();
    let g = group(&s, Some(&clinical), &default_windows());
    let has = |code: &str, needle: &str| {
        g.issues
            .iter()
            .any(|i| i.code == code && (i.message.contains(needle) || i.patient_id == needle))
    };
    assert!(
        has(codes::DUPLICATE_SOP_INSTANCE, "XR_LAT.dcm")
            || has(codes::DUPLICATE_SOP_INSTANCE, "copy_without_preamble")
    );
    assert!(
        has(codes::VIEW_CONFLICT, "`AP` says AP but"),
        "{:#?}",
        g.issues
    );
    assert!(has(codes::POINT_OUT_OF_BOUNDS, "C7_centroid"));
    assert!(has(codes::DUPLICATE_LANDMARK, "S1_sup_post"));
    assert!(has(
        codes::WRONG_VIEW_LANDMARK,
        "L1_sup_left (reader `Reader^Gamma`) belongs on the other view, this image is lateral"
    ));
    assert!(has(codes::PATIENT_NOT_IN_CLINICAL, "P0002"));
    assert!(has(codes::CLINICAL_WITHOUT_IMAGES, "P9999"));
    // P0003's studies without a ClinicalTrialTimePointID now lie years after surgery.
    assert!(has(codes::OUTSIDE_WINDOWS, "P0003"));
    // Gamma's reading keeps only the unambiguous, in-bounds landmarks.
    let gamma = g
        .readings
        .iter()
        .find(|r| r.observer == "Reader^Gamma")
        .unwrap();
    let lm = &gamma.lateral.as_ref().unwrap().landmarks;
    let names: Vec<String> = lm.points().keys().map(|k| k.to_string()).collect();
    assert_eq!(names, vec!["L1_sup_ant", "S1_sup_ant", "FH_left"]);
    // P0002 has no surgery date: only its studies with a timepoint ID are placed, and the
    // others are not silently dropped (each is in QC).
    let p2_tp: BTreeSet<_> = g
        .readings
        .iter()
        .filter(|r| r.patient_id == "P0002")
        .map(|r| &r.timepoint)
        .collect();
    assert!(p2_tp.len() < 4);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A design without surgery and with several timepoints: a study is placed only by its
/// ClinicalTrialTimePointID (the generator writes one on about half of the studies); every
/// other study is in QC, and no surgery date is read.
#[test]
fn unanchored_timepoints_are_placed_by_their_id_only() {
    use plumbline_ingest::clinical::read_clinical_for;
    use plumbline_ingest::group::{Pick, Window};
    let cohort = root().join("fixtures/cohort-small");
    let s = scan(&cohort.join("dicom"), &ScanOptions::default(), &|_| {}).unwrap();
    let (clinical, _) = read_clinical_for(&cohort.join("clinical.csv"), false).unwrap();
    let names = ["preop", "postop", "m3", "m6"];
    let windows: Vec<Window> = names
        .iter()
        .map(|n| Window::unanchored(n, Pick::Latest))
        .collect();
    let by_id = group(&s, Some(&clinical), &windows);
    // With the surgery dates (the default windows) every study is placed; the studies
    // with an ID land at the same timepoint either way.
    let dated = group(&s, Some(&clinical), &default_windows());
    let place = |g: &plumbline_ingest::Grouped| -> BTreeMap<String, String> {
        g.readings
            .iter()
            .map(|r| (r.study_uid.clone(), r.timepoint.clone()))
            .collect()
    };
    let (ided, all) = (place(&by_id), place(&dated));
    assert!(
        !ided.is_empty() && ided.len() < all.len(),
        "{} of {}",
        ided.len(),
        all.len()
    );
    for (study, tp) in &ided {
        assert_eq!(all.get(study), Some(tp), "{study}");
    }
    let refused: BTreeSet<&str> = by_id
        .issues
        .iter()
        .filter(|i| i.code == codes::OUTSIDE_WINDOWS && i.message.contains("by that ID only"))
        .map(|i| i.sop_instance_uid.as_str())
        .collect();
    assert!(!refused.is_empty());
    // Placed and refused studies together are every study of the dated grouping.
    let studies_refused: BTreeSet<&str> = by_id
        .issues
        .iter()
        .filter(|i| i.code == codes::OUTSIDE_WINDOWS)
        .filter_map(|i| i.message.split_whitespace().nth(1))
        .collect();
    for study in all.keys() {
        assert!(
            ided.contains_key(study) || studies_refused.contains(study.as_str()),
            "{study} neither placed nor in QC"
        );
    }
    // No surgery date is needed: no patient is reported missing from the table.
    assert!(
        !by_id
            .issues
            .iter()
            .any(|i| i.code == codes::PATIENT_NOT_IN_CLINICAL)
    );
}
