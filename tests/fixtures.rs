//! The committed fixtures: `fixtures/cohort-small` is exactly what its documented command
//! writes, and its `truth.csv` agrees with an independent recomputation (pydicom + numpy,
//! `fixtures/tools/check_truth.py`, written from the spec alone).

use std::path::{Path, PathBuf};
use std::process::Command;

use plumbline_e2e::{DCIODVFY, DSRDUMP, PYDICOM, repo_root, require};
use plumbline_synth::{ImageSize, SynthOptions, generate};

fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn committed_cohort_is_what_the_generator_writes() {
    // fixtures/README.md: plumbline-synth --patients 8 --seed 1 --out fixtures/cohort-small
    let committed = repo_root().join("fixtures/cohort-small");
    let fresh = std::env::temp_dir().join(format!("plumbline-e2e-cohort-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&fresh);
    generate(&SynthOptions {
        patients: 8,
        seed: 1,
        out: fresh.clone(),
        image_size: ImageSize::Small,
        plant_errors: false,
        schedule: Default::default(),
    })
    .unwrap();
    let (a, b) = (files(&committed), files(&fresh));
    assert_eq!(a, b, "file lists differ");
    assert_eq!(a.len(), 122 + 3);
    let mut bytes = 0;
    for f in &a {
        let (x, y) = (
            std::fs::read(committed.join(f)).unwrap(),
            std::fs::read(fresh.join(f)).unwrap(),
        );
        bytes += x.len();
        assert!(x == y, "{} differs from a fresh generation", f.display());
    }
    assert!(bytes < 15_000_000, "cohort-small is {bytes} bytes");
    std::fs::remove_dir_all(fresh).unwrap();
}

#[test]
#[cfg_attr(
    missing_tool = "pydicom",
    ignore = "needs python3 with pydicom and numpy: pip install -r fixtures/tools/requirements.txt"
)]
fn truth_agrees_with_an_independent_pydicom_computation() {
    require(&PYDICOM);
    let root = repo_root();
    let out = Command::new("python3")
        .arg(root.join("fixtures/tools/check_truth.py"))
        .arg(root.join("fixtures/cohort-small"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(out.status.success(), "check_truth.py disagrees:\n{text}");
}

#[test]
fn interop_srs_have_their_expected_json() {
    let dir = repo_root().join("fixtures/interop");
    for n in INTEROP_SRS {
        assert!(dir.join(format!("sr/{n}.dcm")).is_file(), "{n}.dcm");
        assert!(dir.join(format!("expected/{n}.json")).is_file(), "{n}.json");
    }
}

const INTEROP_SRS: [&str; 4] = [
    "sr_finding_codes",
    "sr_tracking_only",
    "sr_two_images",
    "sr_two_observers",
];

#[test]
#[cfg_attr(
    any(missing_tool = "dciodvfy", missing_tool = "dsrdump"),
    ignore = "needs dciodvfy and dsrdump: apt-get install dicom3tools dcmtk"
)]
fn interop_srs_are_valid_for_two_independent_toolkits() {
    // highdicom wrote them; dicom3tools and dcmtk must accept them (no Error line,
    // dsrdump exit 0).
    require(&DCIODVFY);
    require(&DSRDUMP);
    let dir = repo_root().join("fixtures/interop");
    let names = INTEROP_SRS;
    for n in names {
        let f = dir.join(format!("sr/{n}.dcm"));
        let out = Command::new("dciodvfy").arg(&f).output().unwrap();
        let text = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("ComprehensiveSR"), "{n}: {text}");
        assert!(!text.lines().any(|l| l.starts_with("Error")), "{n}: {text}");
        let out = Command::new("dsrdump").arg(&f).output().unwrap();
        assert!(out.status.success(), "dsrdump {n}");
        let dump = String::from_utf8_lossy(&out.stdout);
        assert!(dump.contains("S1_sup_post"), "{n}: {dump}");
    }
}
