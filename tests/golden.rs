//! The outputs of `plumbline run` stay byte-identical through refactors: every file a run
//! writes, on the committed cohort and on a generated 60-patient cohort, with and without
//! `--pseudonymize` (with `--shift-dates`), `--overlays`, `--parquet` and `--shard`, hashes
//! to the SHA-256 recorded in `fixtures/golden/{case}.sha256`. The plain run also runs on
//! exactly 1 and exactly 2 worker threads, and must give the plain manifest both times
//! (the thread count never shows in an output; `run.json`'s `threads` is not compared).
//! `crates/cli/tests/resume.rs` checks a killed-and-resumed run against the same plain
//! manifests.
//!
//! What is compared: see [`plumbline_e2e::manifests`] (every output but the work record,
//! the run's folders replaced by placeholders, `run.json` without `durations_s` and
//! `threads`).
//!
//! Recording (only when the outputs are meant to change, and the commit says why):
//! `PLUMBLINE_GOLDEN=record cargo test -p plumbline-e2e --test golden` rewrites the
//! manifests from the current code (the thread variants write none: they are checked
//! against the plain manifest just recorded).

use std::path::{Path, PathBuf};

use plumbline::run::{RunOptions, Shard, run};
use plumbline_e2e::manifests::{
    differing_files, golden_path, manifest, manifest_text, read_manifest,
};
use plumbline_e2e::repo_root;
use plumbline_ingest::privacy::Pseudonymizer;
use plumbline_synth::{ImageSize, Schedule, SynthOptions, generate};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("plumbline-golden-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// The variants of one cohort's run.
#[derive(Clone, Copy, Debug)]
enum Variant {
    Plain,
    /// The plain run inside a rayon pool of exactly this many threads.
    Threads(usize),
    OverlaysParquet,
    /// `--pseudonymize key --shift-dates --overlays`.
    Pseudonymized,
    Shard(usize),
}

impl Variant {
    const ALL: [Variant; 7] = [
        Variant::Plain,
        Variant::Threads(1),
        Variant::Threads(2),
        Variant::OverlaysParquet,
        Variant::Pseudonymized,
        Variant::Shard(0),
        Variant::Shard(1),
    ];

    fn name(self) -> String {
        match self {
            Variant::Plain => "plain".into(),
            Variant::Threads(1) => "plain-1thread".into(),
            Variant::Threads(n) => format!("plain-{n}threads"),
            Variant::OverlaysParquet => "overlays-parquet".into(),
            Variant::Pseudonymized => "pseudonymized".into(),
            Variant::Shard(k) => format!("shard{k}of2"),
        }
    }

    /// The variant whose manifest this one must match (and records, for itself only).
    fn manifest_of(self) -> Variant {
        match self {
            Variant::Threads(_) => Variant::Plain,
            v => v,
        }
    }
}

fn run_variant(input: &Path, clinical: &Path, out: &Path, key: &Path, v: Variant) {
    let mut opts = RunOptions::new(input.to_path_buf(), clinical.to_path_buf(), out.into());
    match v {
        Variant::Plain => {}
        Variant::Threads(n) => {
            // RunOptions has no thread count: the run (and the scan's own pool, built
            // with the caller's thread count) uses the pool it is called in.
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .unwrap()
                .install(|| run(&opts))
                .unwrap();
            let run_json: serde_json::Value =
                serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
            assert_eq!(run_json["threads"], n, "{}", out.display());
            return;
        }
        Variant::OverlaysParquet => {
            opts.overlays = true;
            opts.parquet = true;
        }
        Variant::Pseudonymized => {
            opts.overlays = true;
            opts.pseudonymize = Some(Pseudonymizer::from_key_file(key, true).unwrap());
        }
        Variant::Shard(k) => {
            opts.shard = Some(Shard {
                k,
                n: 2,
                source: "--shard",
            })
        }
    }
    run(&opts).unwrap();
}

/// Runs every variant on one cohort and compares (or records) the manifests.
fn check_cohort(cohort: &str, input: &Path, clinical: &Path, work: &Path) {
    let record = std::env::var("PLUMBLINE_GOLDEN").as_deref() == Ok("record");
    let key = work.join("golden.key");
    std::fs::write(&key, b"plumbline golden-output key 2026").unwrap();
    let mut differences = Vec::new();
    for v in Variant::ALL {
        let case = format!("{cohort}-{}", v.name());
        let out = work.join(format!("out-{}", v.name()));
        run_variant(input, clinical, &out, &key, v);
        let got = manifest(&out, input, clinical);
        let golden = format!("{cohort}-{}", v.manifest_of().name());
        if record && v.manifest_of().name() == v.name() {
            let path = golden_path(&golden);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, manifest_text(&got)).unwrap();
            std::fs::remove_dir_all(&out).unwrap();
            continue;
        }
        let differ = differing_files(&read_manifest(&golden), &got);
        // Outputs of a case that matched are not kept.
        if differ.is_empty() {
            std::fs::remove_dir_all(&out).unwrap();
        }
        differences.extend(
            differ
                .into_iter()
                .map(|f| (case.clone(), golden.clone(), f)),
        );
    }
    assert!(
        differences.is_empty(),
        "outputs differ from fixtures/golden (case, manifest, file; kept under {}): {differences:#?}",
        work.display()
    );
}

#[test]
fn committed_cohort_outputs_are_unchanged() {
    let work = temp_dir("committed");
    std::fs::create_dir_all(&work).unwrap();
    let root = repo_root().join("fixtures/cohort-small");
    check_cohort(
        "committed",
        &root.join("dicom"),
        &root.join("clinical.csv"),
        &work,
    );
    std::fs::remove_dir_all(&work).unwrap();
}

#[test]
fn generated_60_patient_outputs_are_unchanged() {
    let work = temp_dir("generated");
    let cohort = work.join("cohort");
    generate(&SynthOptions {
        patients: 60,
        seed: 2026,
        out: cohort.clone(),
        image_size: ImageSize::Small,
        plant_errors: true,
        schedule: Schedule::Discectomy,
    })
    .unwrap();
    check_cohort(
        "generated60",
        &cohort.join("dicom"),
        &cohort.join("clinical.csv"),
        &work,
    );
    std::fs::remove_dir_all(&work).unwrap();
}
