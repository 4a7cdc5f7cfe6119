//! `--write-sr`: the results SRs of the committed cohort, checked by dicom-rs (always), and
//! by dicom3tools' `dciodvfy`, dcmtk's `dsrdump` and highdicom (each its own test, failed
//! under `CI=true` when the tool is missing; see `lib.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use dicom_dictionary_std::tags;
use dicom_object::open_file;
use plumbline::run::{RunOptions, run};
use plumbline_e2e::{DCIODVFY, DSRDUMP, HIGHDICOM, read_csv, require};
use plumbline_export::file_safe;
use plumbline_export::results_sr::{COMPREHENSIVE_SR, metric_code};
use plumbline_geometry::Metric;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A run of the committed cohort with `--write-sr` into `out` (made anew).
fn run_into(out: &Path) {
    let _ = std::fs::remove_dir_all(out);
    let cohort = repo().join("fixtures/cohort-small");
    let opts = RunOptions {
        write_sr: true,
        ..RunOptions::new(
            cohort.join("dicom"),
            cohort.join("clinical.csv"),
            out.into(),
        )
    };
    run(&opts).expect("the run finishes");
}

/// The output folder of one shared run (the tests only read it).
fn shared_out() -> &'static Path {
    static OUT: OnceLock<PathBuf> = OnceLock::new();
    OUT.get_or_init(|| {
        let out = std::env::temp_dir().join(format!("plumbline-results-sr-{}", std::process::id()));
        run_into(&out);
        out
    })
}

/// measurements.csv of `out` as (header, rows).
fn measurements(out: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    read_csv(&out.join("measurements.csv"))
}

/// The SR of each measurements.csv row, by the name `pipeline-io.md` gives it.
fn sr_rel(header: &[String], row: &[String]) -> String {
    let col = |name: &str| &row[header.iter().position(|h| h == name).unwrap()];
    format!(
        "sr/{}/{}_{}.dcm",
        file_safe(col("patient_id")),
        file_safe(col("timepoint")),
        file_safe(col("observer"))
    )
}

fn sr_files(out: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![out.join("sr")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn one_sr_per_reading_in_its_patients_study_with_unique_derived_uids() {
    let out = shared_out();
    let (header, rows) = measurements(out);
    let files = sr_files(out);
    assert_eq!(
        files.len(),
        rows.len(),
        "one SR per row of measurements.csv"
    );
    assert!(
        rows.len() >= 40,
        "the committed cohort has {} readings",
        rows.len()
    );
    let mut uids = std::collections::BTreeSet::new();
    for row in &rows {
        let path = out.join(sr_rel(&header, row));
        let obj = open_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let s = |tag| {
            obj.element(tag)
                .unwrap()
                .to_str()
                .unwrap()
                .trim_end_matches('\0')
                .to_string()
        };
        assert_eq!(s(tags::SOP_CLASS_UID), COMPREHENSIVE_SR);
        assert_eq!(s(tags::PATIENT_ID), row[0], "{}", path.display());
        assert_eq!(s(tags::MODALITY), "SR");
        assert_eq!(s(tags::SERIES_NUMBER), "990");
        let uid = s(tags::SOP_INSTANCE_UID);
        assert!(uid.starts_with("2.25.") && uid.len() <= 64, "{uid}");
        assert_eq!(obj.meta().media_storage_sop_instance_uid(), uid);
        assert!(
            uids.insert(uid),
            "{}: SOP Instance UID used twice",
            path.display()
        );
        // The SR joins the study its images belong to (the source image's StudyDate).
        let date = row[2].replace('-', "");
        assert_eq!(s(tags::STUDY_DATE), date, "{}", path.display());
    }
}

#[test]
fn a_second_run_writes_byte_identical_srs() {
    let out = shared_out();
    let again =
        std::env::temp_dir().join(format!("plumbline-results-sr-again-{}", std::process::id()));
    run_into(&again);
    let (a, b) = (sr_files(out), sr_files(&again));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            x.strip_prefix(out).unwrap(),
            y.strip_prefix(&again).unwrap()
        );
        assert!(
            std::fs::read(x).unwrap() == std::fs::read(y).unwrap(),
            "{} differs",
            x.display()
        );
    }
    std::fs::remove_dir_all(&again).unwrap();
}

#[test]
#[cfg_attr(
    missing_tool = "dciodvfy",
    ignore = "needs dciodvfy: apt-get install dicom3tools"
)]
fn every_sr_passes_dciodvfy_without_errors() {
    require(&DCIODVFY);
    let files = sr_files(shared_out());
    for f in &files {
        let o = Command::new("dciodvfy").arg(f).output().unwrap();
        let text =
            String::from_utf8_lossy(&o.stderr).to_string() + &String::from_utf8_lossy(&o.stdout);
        let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("Error")).collect();
        assert!(errors.is_empty(), "dciodvfy {}:\n{text}", f.display());
        // The only warning: the private coding scheme is not one dciodvfy knows.
        for w in text.lines().filter(|l| l.starts_with("Warning")) {
            assert!(w.contains("<99PLUMBLINE>"), "dciodvfy {}: {w}", f.display());
        }
        assert!(text.contains("ComprehensiveSR"), "{text}");
    }
}

#[test]
#[cfg_attr(
    missing_tool = "dsrdump",
    ignore = "needs dsrdump: apt-get install dcmtk"
)]
fn dsrdump_reads_every_sr() {
    require(&DSRDUMP);
    let out = shared_out();
    let (header, rows) = measurements(out);
    for row in &rows {
        let f = out.join(sr_rel(&header, row));
        let o = Command::new("dsrdump")
            .args(["-Ec", "+Pc"])
            .arg(&f)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "dsrdump {}: {}",
            f.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(text.contains("Comprehensive SR Document"), "{text}");
        assert!(
            text.contains("(126000,DCM,\"Imaging Measurement Report\")"),
            "{text}"
        );
        assert!(
            text.contains("(121013,DCM,\"Device Observer Name\")=\"Plumbline\""),
            "{text}"
        );
        // Each computable SVA shows as a NUM in mm.
        let sva = &row[header.iter().position(|h| h == "sva_mm").unwrap()];
        if !sva.is_empty() {
            assert!(
                text.contains("NUM:(SVA,99PLUMBLINE,\"Sagittal vertical axis\")="),
                "{text}"
            );
        }
    }
}

/// An item of the highdicom dump: (file, group, kind, code value); its value is (value,
/// unit, observer).
type ItemKey = (String, String, String, String);

/// Classification cells of measurements.csv and the codes the SR holds for them.
const CLASS_COLUMNS: [(&str, &str, &str); 11] = [
    ("sagittal_imbalance", "lateral", "SAGIMB"),
    ("coronal_imbalance", "ap", "CORIMB"),
    ("imbalance_type", "reading", "IMBTYPE"),
    ("schwab_pi_ll", "lateral", "SCHWABPILL"),
    ("schwab_pt", "lateral", "SCHWABPT"),
    ("schwab_sva", "lateral", "SCHWABSVA"),
    ("l1_wedge_abnormal", "lateral", "L1WEDGEABN"),
    ("l2_wedge_abnormal", "lateral", "L2WEDGEABN"),
    ("l3_wedge_abnormal", "lateral", "L3WEDGEABN"),
    ("l4_wedge_abnormal", "lateral", "L4WEDGEABN"),
    ("l5_wedge_abnormal", "lateral", "L5WEDGEABN"),
];

/// The code an SR holds for a classification cell.
fn class_value(cell: &str) -> &str {
    match cell {
        "true" => "373066001",
        "false" => "373067005",
        "0" => "SCHWAB0",
        "+" => "SCHWAB1",
        "++" => "SCHWAB2",
        other => match other {
            "balanced" => "BALANCED",
            "sagittal" => "SAGITTAL",
            "coronal" => "CORONAL",
            "biplanar" => "BIPLANAR",
            _ => panic!("unexpected classification cell `{other}`"),
        },
    }
}

#[test]
#[cfg_attr(
    missing_tool = "highdicom",
    ignore = "needs highdicom: pip install -r fixtures/tools/requirements.txt"
)]
fn highdicom_reads_back_every_value_plumbline_wrote() {
    require(&HIGHDICOM);
    let out = shared_out();
    let dump = out.join("highdicom.csv");
    let o = Command::new("python3")
        .arg(repo().join("fixtures/tools/dump_results_sr.py"))
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::write(&dump, &o.stdout).unwrap();
    let (dh, drows) = read_csv(&dump);
    std::fs::remove_file(&dump).unwrap();
    let at = |name: &str| dh.iter().position(|h| h == name).unwrap();
    let mut items: BTreeMap<ItemKey, (String, String, String)> = BTreeMap::new();
    for r in &drows {
        let key = (
            r[at("file")].clone(),
            r[at("group")].clone(),
            r[at("kind")].clone(),
            r[at("code_value")].clone(),
        );
        let v = (
            r[at("value")].clone(),
            r[at("unit")].clone(),
            r[at("observer")].clone(),
        );
        assert!(items.insert(key.clone(), v).is_none(), "{key:?} twice");
    }
    let (header, rows) = measurements(out);
    let col =
        |row: &Vec<String>, name: &str| row[header.iter().position(|h| h == name).unwrap()].clone();
    let mut expected = 0;
    for row in &rows {
        let file = sr_rel(&header, row);
        for metric in Metric::all() {
            let cell = col(row, &metric.name());
            if cell.is_empty() {
                continue;
            }
            expected += 1;
            let group = if matches!(
                metric,
                Metric::C7plCsvlMm | Metric::CobbDeg | Metric::PelvicObliquityDeg
            ) {
                "ap"
            } else {
                "lateral"
            };
            let key = (
                file.clone(),
                group.to_string(),
                "num".to_string(),
                metric_code(metric).0,
            );
            let (value, unit, observer) = items
                .get(&key)
                .unwrap_or_else(|| panic!("{key:?}: {} = {cell} is not in the SR", metric.name()));
            let read: f64 = value.parse().unwrap();
            let written: f64 = cell.parse().unwrap();
            assert_eq!(read, written, "{key:?}");
            assert_eq!(unit, metric.unit(), "{key:?}");
            assert_eq!(observer, &col(row, "observer"));
        }
        for (column, group, code) in CLASS_COLUMNS {
            let cell = col(row, column);
            if cell.is_empty() {
                continue;
            }
            expected += 1;
            let key = (
                file.clone(),
                group.to_string(),
                "code".to_string(),
                code.to_string(),
            );
            let (value, _, _) = items
                .get(&key)
                .unwrap_or_else(|| panic!("{key:?}: {column} = {cell} is not in the SR"));
            assert_eq!(value, class_value(&cell), "{key:?}");
        }
    }
    // Every item highdicom found is one of the cells above.
    assert_eq!(
        items.len(),
        expected,
        "highdicom found items no cell accounts for"
    );
    assert!(expected > 1000, "only {expected} values compared");
}
