//! Every study-design pipeline of `pipelines/` run on a generated cohort of its design:
//! the new metrics equal the generator's truth to 1e-6, the study-design rows of
//! cohort_summary.csv equal an independent pandas/SciPy computation to 1e-9
//! (`fixtures/stats/check_summary.py`), and each design's own facts hold (one baseline
//! visit without surgery dates, the fusion windows, groups of the strata).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use plumbline::pipeline::Pipeline;
use plumbline::run::{RunOptions, run};
use plumbline_e2e::{SCIPY, read_csv, repo_root, require};
use plumbline_synth::{ImageSize, Schedule, SynthOptions, generate};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("plumbline-designs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Generates `patients` patients of `schedule` into `dir`.
fn cohort(dir: &Path, patients: usize, schedule: Schedule) {
    generate(&SynthOptions {
        patients,
        seed: 11,
        out: dir.to_path_buf(),
        image_size: ImageSize::Small,
        plant_errors: false,
        schedule,
    })
    .unwrap();
}

/// Runs `pipelines/{pipeline}` on the cohort in `dir` with `clinical`; the output folder.
/// As shard 0 of 1 (all patients), so that `shard_readings.csv` carries |C7PL-CSVL| where
/// the AP view's left/right is unknown and `measurements.csv` has no signed value: the
/// independent check then recomputes every row (`--strict`).
fn run_design(dir: &Path, clinical: &Path, pipeline: &str) -> PathBuf {
    let out = dir.join(format!("out-{pipeline}"));
    let mut opts = RunOptions::new(dir.join("dicom"), clinical.to_path_buf(), out.clone());
    opts.pipeline = Pipeline::load(&repo_root().join("pipelines").join(pipeline)).unwrap();
    opts.shard = Some(plumbline::run::Shard {
        k: 0,
        n: 1,
        source: "--shard",
    });
    run(&opts).unwrap();
    out
}

/// Every truth value of a timepoint of the pipeline whose metric measurements.csv writes
/// is there to 1e-6; returns the number of truth values compared per metric.
fn matches_truth(dir: &Path, out: &Path) -> BTreeMap<String, usize> {
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    let source = run["pipeline"]["source"].as_str().unwrap().to_string();
    let windows: BTreeSet<String> = Pipeline::load(Path::new(&source))
        .unwrap()
        .windows
        .iter()
        .map(|w| w.name.clone())
        .collect();
    let (header, rows) = read_csv(&out.join("measurements.csv"));
    let col: BTreeMap<&str, usize> = header
        .iter()
        .enumerate()
        .map(|(i, h)| (h.as_str(), i))
        .collect();
    let ours: BTreeMap<(String, String, String), &Vec<String>> = rows
        .iter()
        .map(|r| ((r[0].clone(), r[1].clone(), r[3].clone()), r))
        .collect();
    let (_, truth) = read_csv(&dir.join("truth.csv"));
    let mut compared = BTreeMap::new();
    for t in truth.iter().filter(|t| windows.contains(&t[1])) {
        let Some(&c) = col.get(t[3].as_str()) else {
            continue; // a segment the pipeline does not write
        };
        let row = ours
            .get(&(t[0].clone(), t[1].clone(), t[2].clone()))
            .unwrap_or_else(|| panic!("no reading {:?}", &t[..3]));
        let (v, o): (f64, f64) = (t[4].parse().unwrap(), row[c].parse().unwrap());
        assert!((v - o).abs() < 1e-6, "{:?}: {o} vs truth {v}", &t[..4]);
        *compared.entry(t[3].clone()).or_insert(0) += 1;
    }
    compared
}

/// `fixtures/stats/check_summary.py` agrees with cohort_summary.csv.
fn independent_check(out: &Path, clinical: &Path, pipeline: &str) {
    require(&SCIPY);
    let o = Command::new("python3")
        .arg(repo_root().join("fixtures/stats/check_summary.py"))
        .arg("--out")
        .arg(out)
        .arg("--clinical")
        .arg(clinical)
        .arg("--pipeline")
        .arg(repo_root().join("pipelines").join(pipeline))
        .arg("--strict")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success(),
        "check_summary.py on {pipeline}:\n{text}"
    );
}

/// The rows of cohort_summary.csv by (section, statistic, timepoint): (n, value, p).
type Summary = BTreeMap<(String, String, String), (usize, String, String)>;

fn summary(out: &Path) -> Summary {
    let (_, rows) = read_csv(&out.join("cohort_summary.csv"));
    rows.into_iter()
        .map(|r| {
            (
                (r[0].clone(), r[1].clone(), r[2].clone()),
                (r[3].parse().unwrap(), r[4].clone(), r[7].clone()),
            )
        })
        .collect()
}

fn get<'a>(s: &'a Summary, section: &str, stat: &str, tp: &str) -> &'a (usize, String, String) {
    s.get(&(section.into(), stat.into(), tp.into()))
        .unwrap_or_else(|| panic!("no row {section} {stat} {tp}"))
}

#[cfg_attr(
    missing_tool = "scipy",
    ignore = "needs scipy: pip install -r fixtures/stats/requirements.txt"
)]
#[test]
fn discectomy_designs_wang_and_schwab() {
    let dir = temp_dir("discectomy");
    cohort(&dir, 60, Schedule::Discectomy);
    let clinical = dir.join("clinical.csv");
    for pipeline in ["wang2022-discectomy.toml", "srs-schwab.toml"] {
        let out = run_design(&dir, &clinical, pipeline);
        let compared = matches_truth(&dir, &out);
        for m in [
            "l4_l5_slip_pct",
            "l5_s1_disc_height_index",
            "l3_ant_height_mm",
        ] {
            assert!(
                compared.get(m).is_some_and(|&n| n > 100),
                "{m}: {compared:?}"
            );
        }
        independent_check(&out, &clinical, pipeline);
    }
    let s = summary(&dir.join("out-wang2022-discectomy.toml"));
    // The design: the sagittal plane recovers right after surgery, the coronal plane by
    // m6 (the generator's recovery timepoints, design.csv).
    let share = |stat: &str, tp: &str| {
        let (n, v, _) = get(&s, "recovery_by_plane", stat, tp);
        assert!(*n > 0, "{stat} {tp}");
        v.parse::<f64>().unwrap()
    };
    assert_eq!(share("sagittal", "postop"), 1.0);
    assert!(share("coronal", "postop") < 1.0);
    assert_eq!(share("coronal", "m6"), 1.0);
    let (_, _, p) = get(&s, "paired_imbalanced", "abs_sva_mm_change", "postop");
    assert!(p.parse::<f64>().unwrap() < 0.05);
    // Strata by herniation level: three levels in the generator -> ANOVA and Kruskal.
    assert!(s.contains_key(&(
        "strata".into(),
        "herniation_level:sva_mm_kruskal".into(),
        "preop".into()
    )));
    let schwab = summary(&dir.join("out-srs-schwab.toml"));
    let shares: f64 = ["0", "+", "++"]
        .iter()
        .map(|g| {
            get(&schwab, "schwab", &format!("schwab_sva={g}"), "preop")
                .1
                .parse::<f64>()
                .unwrap()
        })
        .sum();
    assert!((shares - 1.0).abs() < 1e-12);
    std::fs::remove_dir_all(dir).unwrap();
}

#[cfg_attr(
    missing_tool = "scipy",
    ignore = "needs scipy: pip install -r fixtures/stats/requirements.txt"
)]
#[test]
fn survey_without_surgery_needs_only_patient_ids() {
    let dir = temp_dir("survey");
    cohort(&dir, 40, Schedule::Survey);
    // The clinical table of a survey: patient_id and sex only.
    let (header, rows) = read_csv(&dir.join("clinical.csv"));
    let (id, sex) = (
        header.iter().position(|h| h == "patient_id").unwrap(),
        header.iter().position(|h| h == "sex").unwrap(),
    );
    let mut text = String::from("patient_id,sex\n");
    for r in &rows {
        text.push_str(&format!("{},{}\n", r[id], r[sex]));
    }
    let clinical = dir.join("survey.csv");
    std::fs::write(&clinical, text).unwrap();
    let pipeline = "l4-wedging-survey.toml";
    // A stratum column the table lacks stops the run before anything is written.
    let ids_only = dir.join("ids.csv");
    std::fs::write(&ids_only, "patient_id\nP0001\n").unwrap();
    let mut opts = RunOptions::new(dir.join("dicom"), ids_only, dir.join("out-refused"));
    opts.pipeline = Pipeline::load(&repo_root().join("pipelines").join(pipeline)).unwrap();
    let e = run(&opts).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(
        e.to_string().contains("strata[0]") && e.to_string().contains("`sex`"),
        "{e}"
    );
    assert!(!dir.join("out-refused").exists());
    let out = run_design(&dir, &clinical, pipeline);
    let compared = matches_truth(&dir, &out);
    assert!(compared["l4_wedge_index_pct"] >= 40, "{compared:?}");
    assert!(
        !compared.contains_key("t12_l1_disc_angle_deg"),
        "t12_l1 is not written"
    );
    let (header, rows) = read_csv(&out.join("measurements.csv"));
    let tps: BTreeSet<&str> = rows.iter().map(|r| r[1].as_str()).collect();
    assert_eq!(tps, BTreeSet::from(["baseline"]));
    let patients: BTreeSet<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(patients.len(), 40);
    assert!(header.contains(&"l4_wedge_abnormal".to_string()));
    // No QC error about surgery dates or windows.
    let (_, qc) = read_csv(&out.join("qc.csv"));
    assert!(
        !qc.iter()
            .any(|r| r[4] == "outside_windows" || r[4] == "patient_not_in_clinical"),
        "{qc:?}"
    );
    let s = summary(&out);
    let (n, _, _) = get(&s, "wedging", "l4_wedge_abnormal", "baseline");
    assert_eq!(*n, 40);
    let (_, _, p) = get(&s, "strata", "sex:l4_wedge_index_pct_welch", "baseline");
    assert!(!p.is_empty());
    independent_check(&out, &clinical, pipeline);
    std::fs::remove_dir_all(dir).unwrap();
}

#[cfg_attr(
    missing_tool = "scipy",
    ignore = "needs scipy: pip install -r fixtures/stats/requirements.txt"
)]
#[test]
fn fusion_designs_disc_space_loss_and_hip() {
    let dir = temp_dir("fusion");
    cohort(&dir, 60, Schedule::Fusion);
    let clinical = dir.join("clinical.csv");
    for pipeline in ["disc-space-loss.toml", "fusion-hip.toml"] {
        let out = run_design(&dir, &clinical, pipeline);
        let compared = matches_truth(&dir, &out);
        assert!(compared["l4_l5_disc_height_index"] > 200, "{compared:?}");
        let (_, rows) = read_csv(&out.join("measurements.csv"));
        let tps: BTreeSet<&str> = rows.iter().map(|r| r[1].as_str()).collect();
        assert_eq!(tps, BTreeSet::from(["preop", "w6", "w52", "w104"]));
        independent_check(&out, &clinical, pipeline);
    }
    let disc = summary(&dir.join("out-disc-space-loss.toml"));
    // Three bins of fused levels -> ANOVA and Kruskal-Wallis rows with p-values.
    for g in ["<2", "[2, 3)", ">=3"] {
        let (n, _, _) = get(
            &disc,
            "strata",
            &format!("fused_levels={g}:l4_l5_disc_height_index_mean"),
            "preop",
        );
        assert!(*n > 0, "{g}");
    }
    let (_, _, p) = get(
        &disc,
        "strata",
        "fused_levels:l4_l5_disc_height_index_change_kruskal",
        "w104",
    );
    assert!(!p.is_empty());
    let hip = summary(&dir.join("out-fusion-hip.toml"));
    let (n, _, p) = get(&hip, "strata", "hip_pain:pt_deg_change_welch", "w52");
    assert!(*n > 40 && !p.is_empty());
    let (_, _, p) = get(
        &hip,
        "strata",
        "fusion_to_sacrum:pt_deg_change_mann_whitney",
        "w52",
    );
    assert!(!p.is_empty());
    std::fs::remove_dir_all(dir).unwrap();
}
