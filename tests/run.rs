//! `plumbline run` end to end on the committed cohort: truth reproduced, the summary's
//! prevalence and types equal the generator's design, byte-identical tables whatever the
//! thread count, and bad files all listed in qc.csv without losing a good patient.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use plumbline::run::{RunOptions, run};
use plumbline_e2e::{read_csv, repo_root};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("plumbline-run-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn run_on(input: &Path, clinical: &Path, out: &Path, threads: usize) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        run(&RunOptions::new(
            input.to_path_buf(),
            clinical.to_path_buf(),
            out.to_path_buf(),
        ))
    })
    .unwrap();
}

// Long (over 80 lines): the README's command on the committed cohort, every output file checked in turn.
#[test]
fn committed_cohort_end_to_end() {
    let cohort = repo_root().join("fixtures/cohort-small");
    let out = temp_dir("e2e");
    run_on(&cohort.join("dicom"), &cohort.join("clinical.csv"), &out, 2);

    // Every truth value is in measurements.csv to 1e-4, and nothing else is.
    let (header, rows) = read_csv(&out.join("measurements.csv"));
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let mut ours = BTreeMap::new();
    for r in &rows {
        for m in plumbline_geometry::Metric::all() {
            let v = &r[col(&m.name())];
            if !v.is_empty() {
                ours.insert(
                    (r[0].clone(), r[1].clone(), r[3].clone(), m.name()),
                    v.parse::<f64>().unwrap(),
                );
            }
        }
    }
    let (_, truth) = read_csv(&cohort.join("truth.csv"));
    assert_eq!(truth.len(), 2971);
    assert_eq!(ours.len(), truth.len());
    for t in &truth {
        let key = (t[0].clone(), t[1].clone(), t[2].clone(), t[3].clone());
        let v: f64 = t[4].parse().unwrap();
        let o = ours.get(&key).unwrap_or_else(|| panic!("{key:?} missing"));
        assert!((o - v).abs() < 1e-4, "{key:?}: {o} vs {v}");
    }

    // The summary's prevalence and types equal the generator's design.
    let (_, design) = read_csv(&cohort.join("design.csv"));
    let designed: BTreeMap<&str, usize> = design.iter().fold(BTreeMap::new(), |mut m, d| {
        *m.entry(d[1].as_str()).or_insert(0) += 1;
        m
    });
    let imbalanced = design.len() - designed.get("balanced").copied().unwrap_or(0);
    let (_, summary) = read_csv(&out.join("cohort_summary.csv"));
    let find = |section: &str, stat: &str| {
        summary
            .iter()
            .find(|r| r[0] == section && r[1] == stat)
            .unwrap_or_else(|| panic!("{section}/{stat}"))
    };
    let prev = find("prevalence", "imbalance");
    assert_eq!(prev[3], design.len().to_string());
    let share: f64 = prev[4].parse().unwrap();
    assert!((share * design.len() as f64 - imbalanced as f64).abs() < 1e-9);
    for t in ["sagittal", "coronal", "biplanar"] {
        let r = find("type", t);
        assert_eq!(r[3], imbalanced.to_string());
        let share: f64 = r[4].parse().unwrap();
        let want = designed.get(t).copied().unwrap_or(0);
        assert!(
            (share * imbalanced as f64 - want as f64).abs() < 1e-9,
            "{t}"
        );
    }
    // Every designed-imbalanced patient is balanced by m6.
    let m6 = summary
        .iter()
        .find(|r| r[0] == "recovery" && r[2] == "m6")
        .unwrap();
    assert_eq!(m6[4], "1.0000");

    // One patients.csv row per clinical row, clinical columns first.
    let (ph, prow) = read_csv(&out.join("patients.csv"));
    assert_eq!(prow.len(), 8);
    assert_eq!(
        &ph[..9],
        [
            "patient_id",
            "surgery_date",
            "herniation_level",
            "herniation_side",
            "sex",
            "age_years",
            "hip_pain",
            "fusion_to_sacrum",
            "fused_levels"
        ]
    );
    assert!(ph.contains(&"sva_mm_preop".to_string()));
    assert!(ph.contains(&"sva_mm_change_m6".to_string()));
    // run.json says what was read.
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["input"]["files"], 122);
    assert_eq!(run["input"]["landmark_srs"], 58);
    std::fs::remove_dir_all(out).unwrap();
}

#[test]
fn outputs_are_byte_identical_for_1_2_and_8_threads() {
    let cohort = repo_root().join("fixtures/cohort-small");
    let mut outs = Vec::new();
    for t in [1, 2, 8] {
        let out = temp_dir(&format!("threads{t}"));
        run_on(&cohort.join("dicom"), &cohort.join("clinical.csv"), &out, t);
        outs.push(out);
    }
    for f in [
        "measurements.csv",
        "patients.csv",
        "cohort_summary.csv",
        "qc.csv",
    ] {
        let a = std::fs::read(outs[0].join(f)).unwrap();
        for o in &outs[1..] {
            assert!(a == std::fs::read(o.join(f)).unwrap(), "{f} differs");
        }
    }
    for o in outs {
        std::fs::remove_dir_all(o).unwrap();
    }
}

#[test]
fn bad_input_keeps_every_good_patient_and_lists_every_bad_file() {
    let cohort = repo_root().join("fixtures/cohort-small");
    let input = temp_dir("bad-in");
    let out = temp_dir("bad-out");
    // The whole cohort, plus junk.
    let (files, _) = plumbline_ingest::scan::list_files(&cohort.join("dicom")).unwrap();
    for f in &files {
        let rel = f.strip_prefix(cohort.join("dicom")).unwrap();
        std::fs::create_dir_all(input.join(rel).parent().unwrap()).unwrap();
        std::fs::copy(f, input.join(rel)).unwrap();
    }
    let junk = input.join("junk");
    std::fs::create_dir_all(&junk).unwrap();
    std::fs::write(junk.join("readme.txt"), "exported from PACS\n").unwrap();
    std::fs::write(junk.join("image.dcm"), b"\x00\x01 not dicom").unwrap();
    let img = files
        .iter()
        .find(|f| f.to_string_lossy().ends_with("XR_LAT.dcm"))
        .unwrap();
    let bytes = std::fs::read(img).unwrap();
    std::fs::write(junk.join("truncated.dcm"), &bytes[..bytes.len() / 3]).unwrap();
    // An orphan SR: a copy of one SR whose images are renamed away (their UIDs absent).
    let sr = files
        .iter()
        .find(|f| f.to_string_lossy().contains("SR_alpha"))
        .unwrap();
    let mut obj = dicom_object::open_file(sr).unwrap();
    obj.put(dicom_core::DataElement::new(
        dicom_dictionary_std::tags::SOP_INSTANCE_UID,
        dicom_core::VR::UI,
        dicom_core::PrimitiveValue::from("2.25.99"),
    ));
    // Point its content at a missing image by writing it into another patient with no images.
    obj.write_to_file(junk.join("orphan_sr.dcm")).unwrap();
    let images: Vec<_> = files
        .iter()
        .filter(|f| f.starts_with(sr.parent().unwrap()) && !f.to_string_lossy().contains("SR_"))
        .collect();
    for i in &images {
        std::fs::remove_file(input.join(i.strip_prefix(cohort.join("dicom")).unwrap())).unwrap();
    }

    run_on(&input, &cohort.join("clinical.csv"), &out, 2);
    let (_, qc) = read_csv(&out.join("qc.csv"));
    let listed: BTreeSet<&str> = qc.iter().map(|r| r[0].as_str()).collect();
    for bad in ["readme.txt", "image.dcm", "truncated.dcm", "orphan_sr.dcm"] {
        assert!(
            listed.iter().any(|p| p.ends_with(bad)),
            "{bad} not in qc.csv"
        );
    }
    // All 8 patients still have rows, and only the study whose images were removed lost
    // its readings.
    let (_, rows) = read_csv(&out.join("measurements.csv"));
    let patients: BTreeSet<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(patients.len(), 8);
    let (_, full) = {
        let o = temp_dir("bad-ref");
        run_on(&cohort.join("dicom"), &cohort.join("clinical.csv"), &o, 2);
        let r = read_csv(&o.join("measurements.csv"));
        std::fs::remove_dir_all(o).unwrap();
        r
    };
    assert!(rows.len() < full.len() && rows.len() >= full.len() - 2);
    // The input was not written to.
    assert!(!input.join("measurements.csv").exists());
    std::fs::remove_dir_all(input).unwrap();
    std::fs::remove_dir_all(out).unwrap();
}
