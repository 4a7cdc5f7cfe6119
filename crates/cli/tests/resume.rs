//! Unattended runs: a run killed (SIGKILL) at random moments and restarted with the same
//! command ends with the tables of an uninterrupted run, and on the committed cohort and
//! the generated 60-patient one with every output of today's runs (the golden manifests of
//! `tests/golden.rs`); reruns on a grown tree read only the new files; --fresh reads
//! everything again.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use plumbline_e2e::manifests::{differing_files, read_manifest, resumed_manifest};
use plumbline_e2e::repo_root;
use plumbline_synth::{ImageSize, Schedule, SynthOptions, generate};

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
    eprintln!("{killed_mid_run} of 10 kills hit a running process");
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

/// When a run started into an output folder is killed.
#[derive(Clone, Copy, Debug)]
enum Kill {
    /// This long after it started (which may be after it ended).
    After(Duration),
    /// Mid-scan, once it has recorded this fraction of the input's files that its record
    /// did not hold when it started (at least one): the run is started with
    /// `cache::HOLD_ENV` set to that number, so its scan threads stop for good once that
    /// many lines are written, and it is killed once the test sees them in the record. A
    /// known point, whatever the machine's speed.
    Held(f64),
}

/// Starts `plumbline run` into `out` and kills it (SIGKILL) at `kill`; true when the
/// kill landed in a running process (not one that had already finished).
fn start_and_kill(input: &Path, clinical: &Path, out: &Path, kill: Kill) -> bool {
    let record = out.join(plumbline_ingest::cache::JOURNAL);
    // Lines after the header: one per recorded file (a torn last line counts, harmlessly).
    let lines = || {
        std::fs::read(&record).map_or(0, |b| {
            b.iter().filter(|&&c| c == b'\n').count().saturating_sub(1)
        })
    };
    let before = lines();
    let mut c = cmd(input, clinical, out, &[]);
    let hold = match kill {
        Kill::After(_) => None,
        Kill::Held(f) => {
            // The files the run will read: the scan's own list.
            let files = plumbline_ingest::scan::list_files(input).unwrap().0.len();
            let n = ((f * files.saturating_sub(before) as f64).ceil() as usize).max(1);
            c.env(plumbline_ingest::cache::HOLD_ENV, n.to_string());
            Some(n)
        }
    };
    let mut child = c.spawn().unwrap();
    if let Kill::After(d) = kill {
        std::thread::sleep(d);
    }
    if let Some(n) = hold {
        let t = Instant::now();
        while lines() < before + n {
            assert!(
                child.try_wait().unwrap().is_none(),
                "{kill:?}: the run ended although held after {n} new lines (its record \
                 had {before} lines before and has {} now)",
                lines()
            );
            assert!(
                t.elapsed() < Duration::from_secs(300),
                "{kill:?}: the record did not reach {n} new lines in 300 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        // Held mid-scan: each of the 2 threads stops once it has written a line past the
        // n-th, so the record cannot hold all of the files yet.
        let held = lines() - before;
        assert!(
            held <= n + 1,
            "{kill:?}: {held} new lines in the record, more than the {n} (+1) it was held at"
        );
    }
    let running = child.try_wait().unwrap().is_none();
    child.kill().ok(); // SIGKILL
    child.wait().unwrap();
    running
}

/// `plumbline run` as golden.rs's plain variant runs it (the built-in pipeline, no flag
/// but --quiet and --threads, which no compared output shows) into a new folder, killed
/// at each of `kills` and restarted, then run to the end: every output must hash to
/// `fixtures/golden/{cohort}-plain.sha256` (`run.json`'s counts of files read and reused
/// taken as an uninterrupted run's once their sum is checked).
fn resumed_outputs_match_golden(cohort: &str, input: &Path, clinical: &Path, kills: &[Kill]) {
    let out = temp(&format!("golden-{cohort}-out"));
    let running: Vec<bool> = kills
        .iter()
        .map(|&k| start_and_kill(input, clinical, &out, k))
        .collect();
    for (k, hit) in kills.iter().zip(&running) {
        assert!(
            *hit || matches!(k, Kill::After(_)),
            "{k:?}: the held run was not running when killed (kills {kills:?})"
        );
    }
    assert!(cmd(input, clinical, &out, &[]).status().unwrap().success());
    let r = run_json(&out);
    assert!(r["input"]["files_reused"].as_u64().unwrap() > 0, "{r}");
    let case = format!("{cohort}-plain");
    let differ = differing_files(
        &read_manifest(&case),
        &resumed_manifest(&out, input, clinical),
    );
    assert!(
        differ.is_empty(),
        "killed at {kills:?} (still running: {running:?}), then resumed to the end: \
         outputs in {} differ from fixtures/golden/{case}.sha256: {differ:?}",
        out.display()
    );
    std::fs::remove_dir_all(out).unwrap();
}

#[test]
fn committed_cohort_killed_and_resumed_gives_the_golden_outputs() {
    let root = repo_root().join("fixtures/cohort-small");
    // The first kill lands mid-scan once a tenth of the files are recorded (the rest
    // reuse them); the next two at fixed moments, into restarts that read the rest again.
    resumed_outputs_match_golden(
        "committed",
        &root.join("dicom"),
        &root.join("clinical.csv"),
        &[
            Kill::Held(0.1),
            Kill::After(Duration::from_millis(100)),
            Kill::After(Duration::from_millis(300)),
        ],
    );
}

#[test]
fn generated_60_patients_killed_and_resumed_gives_the_golden_outputs() {
    // The cohort of golden.rs's generated60 cases.
    let cohort = temp("golden-generated60-cohort");
    generate(&SynthOptions {
        patients: 60,
        seed: 2026,
        out: cohort.clone(),
        image_size: ImageSize::Small,
        plant_errors: true,
        schedule: Schedule::Discectomy,
    })
    .unwrap();
    // Killed early in the scan, then about halfway through the files it had left.
    resumed_outputs_match_golden(
        "generated60",
        &cohort.join("dicom"),
        &cohort.join("clinical.csv"),
        &[Kill::After(Duration::from_millis(300)), Kill::Held(0.5)],
    );
    std::fs::remove_dir_all(cohort).unwrap();
}
