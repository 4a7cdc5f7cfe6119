//! Unattended runs: a run killed (SIGKILL) at random moments and restarted with the same
//! command ends with the tables of an uninterrupted run; reruns on a grown tree read only
//! the new files; --fresh reads everything again.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use plumbline_synth::{ImageSize, SynthOptions, generate};

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("plumbline-resume-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn cmd(input: &Path, clinical: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_plumbline"));
    c.args(["run", "--quiet", "--threads", "2", "--input"])
        .arg(input)
        .arg("--clinical")
        .arg(clinical)
        .arg("--out")
        .arg(out)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

const TABLES: [&str; 4] = [
    "measurements.csv",
    "patients.csv",
    "cohort_summary.csv",
    "qc.csv",
];

fn same_tables(a: &Path, b: &Path) {
    for f in TABLES {
        let (x, y) = (
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
        );
        assert!(
            x == y,
            "{f} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

fn run_json(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap()
}

#[test]
fn killed_ten_times_then_resumed_gives_the_uninterrupted_tables() {
    let cohort = temp("cohort");
    generate(&SynthOptions {
        patients: 40,
        seed: 3,
        out: cohort.clone(),
        image_size: ImageSize::Small,
        plant_errors: false,
        schedule: Default::default(),
    })
    .unwrap();
    let (input, clinical) = (cohort.join("dicom"), cohort.join("clinical.csv"));
    let reference = temp("ref");
    let t = Instant::now();
    assert!(
        cmd(&input, &clinical, &reference, &[])
            .status()
            .unwrap()
            .success()
    );
    let full = t.elapsed();

    let out = temp("killed");
    // Ten kill moments, each between 2% and 17% of an uninterrupted run's length (a
    // fixed pseudo-random sequence, so the test is repeatable): each restart first
    // reuses what the previous ones recorded, then is killed again.
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut killed_mid_run = 0;
    for _ in 0..10 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let at = full.mul_f64(0.02 + 0.15 * (x % 1000) as f64 / 1000.0);
        let mut child = cmd(&input, &clinical, &out, &[]).spawn().unwrap();
        std::thread::sleep(at);
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        child.kill().ok(); // SIGKILL
        child.wait().unwrap();
    }
    // Restarts speed up as the record fills, and machine load shifts timings: at least
    // half of the kills must land in a running batch (typically 7 to 10 do).
    assert!(
        killed_mid_run >= 5,
        "only {killed_mid_run} kills hit a running batch"
    );
    assert!(
        cmd(&input, &clinical, &out, &[])
            .status()
            .unwrap()
            .success()
    );
    same_tables(&reference, &out);
    let r = run_json(&out);
    let files = r["input"]["files"].as_u64().unwrap();
    assert_eq!(
        r["input"]["files_read"].as_u64().unwrap() + r["input"]["files_reused"].as_u64().unwrap(),
        files
    );
    assert!(r["input"]["files_reused"].as_u64().unwrap() > 0, "{r}");
    for d in [cohort, reference, out] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

// Long (over 80 lines): one sequence of reruns into one folder; each step depends on the record the one before left.
#[test]
fn reruns_read_only_new_or_changed_files() {
    let cohort = temp("grow");
    generate(&SynthOptions {
        patients: 6,
        seed: 4,
        out: cohort.clone(),
        image_size: ImageSize::Small,
        plant_errors: false,
        schedule: Default::default(),
    })
    .unwrap();
    let clinical = cohort.join("clinical.csv");
    // First run without patient P0006, then with it.
    let input = temp("grow-in");
    let all = plumbline_ingest::scan::list_files(&cohort.join("dicom"))
        .unwrap()
        .0;
    let mut later = Vec::new();
    for f in &all {
        let rel = f.strip_prefix(cohort.join("dicom")).unwrap();
        let to = input.join(rel);
        if rel.starts_with("P0006") {
            later.push((f.clone(), to));
            continue;
        }
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(f, &to).unwrap();
    }
    let out = temp("grow-out");
    assert!(
        cmd(&input, &clinical, &out, &[])
            .status()
            .unwrap()
            .success()
    );
    let first = run_json(&out);
    assert_eq!(first["input"]["files_reused"], 0);
    for (from, to) in &later {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    }
    assert!(
        cmd(&input, &clinical, &out, &[])
            .status()
            .unwrap()
            .success()
    );
    let second = run_json(&out);
    assert_eq!(
        second["input"]["files_read"].as_u64().unwrap() as usize,
        later.len()
    );
    assert_eq!(
        second["input"]["files_reused"].as_u64().unwrap(),
        first["input"]["files"].as_u64().unwrap()
    );
    // The tables equal those of a fresh run on the grown tree.
    let fresh = temp("grow-fresh");
    assert!(
        cmd(&input, &clinical, &fresh, &[])
            .status()
            .unwrap()
            .success()
    );
    same_tables(&fresh, &out);
    // A changed file is read again (its modification time and size are its key).
    let changed = &later[0].1;
    std::thread::sleep(Duration::from_millis(20));
    let bytes = std::fs::read(changed).unwrap();
    std::fs::write(changed, bytes).unwrap();
    assert!(
        cmd(&input, &clinical, &out, &[])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(run_json(&out)["input"]["files_read"], 1);
    // --fresh ignores the record.
    assert!(
        cmd(&input, &clinical, &out, &["--fresh"])
            .status()
            .unwrap()
            .success()
    );
    let r = run_json(&out);
    assert_eq!(r["input"]["files_read"], r["input"]["files"]);
    for d in [cohort, input, out, fresh] {
        std::fs::remove_dir_all(d).unwrap();
    }
}
