//! The outputs of `plumbline run` stay byte-identical through refactors: every file a run
//! writes, on the committed cohort and on a generated 60-patient cohort, with and without
//! `--pseudonymize` (with `--shift-dates`), `--overlays`, `--parquet` and `--shard`, hashes
//! to the SHA-256 recorded in `fixtures/golden/{case}.sha256`.
//!
//! What is compared: every file under the output folder except the work record
//! (`.plumbline/`, a cache whose format is not an output). Before hashing, text files have
//! the run's own folders replaced by placeholders (`<input>`, `<clinical>`, `<out>`), since
//! a clone or a temp folder lives anywhere, and `run.json` loses the two values that
//! describe the machine rather than the run: `durations_s` and `threads`.
//!
//! Recording (only when the outputs are meant to change, and the commit says why):
//! `PLUMBLINE_GOLDEN=record cargo test -p plumbline-e2e --test golden` rewrites the
//! manifests from the current code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plumbline::privacy::Pseudonymizer;
use plumbline::run::{RunOptions, Shard, run};
use plumbline_e2e::repo_root;
use plumbline_synth::{ImageSize, Schedule, SynthOptions, generate};
use sha2::{Digest, Sha256};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("plumbline-golden-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// The variants of one cohort's run.
#[derive(Clone, Copy, Debug)]
enum Variant {
    Plain,
    OverlaysParquet,
    /// `--pseudonymize key --shift-dates --overlays`.
    Pseudonymized,
    Shard(usize),
}

impl Variant {
    const ALL: [Variant; 5] = [
        Variant::Plain,
        Variant::OverlaysParquet,
        Variant::Pseudonymized,
        Variant::Shard(0),
        Variant::Shard(1),
    ];

    fn name(self) -> String {
        match self {
            Variant::Plain => "plain".into(),
            Variant::OverlaysParquet => "overlays-parquet".into(),
            Variant::Pseudonymized => "pseudonymized".into(),
            Variant::Shard(k) => format!("shard{k}of2"),
        }
    }
}

/// Every file under `dir` but the work record, by path relative to `dir` (with `/`).
fn files_under(dir: &Path, rel: &str, found: &mut Vec<(String, PathBuf)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        let rel = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if rel == ".plumbline" {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            files_under(&e.path(), &rel, found);
        } else {
            found.push((rel, e.path()));
        }
    }
}

/// The bytes of an output as compared: paths of this run replaced, run.json without
/// the machine's values.
fn normalised(rel: &str, bytes: Vec<u8>, places: &[(String, &str)]) -> Vec<u8> {
    let Ok(mut text) = String::from_utf8(bytes.clone()) else {
        return bytes;
    };
    for (path, placeholder) in places {
        text = text.replace(path.as_str(), placeholder);
    }
    if rel == "run.json" {
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let o = v.as_object_mut().unwrap();
        assert!(o.remove("durations_s").is_some() && o.remove("threads").is_some());
        text = serde_json::to_string_pretty(&v).unwrap() + "\n";
    }
    text.into_bytes()
}

/// `{relative path: sha256}` of a run's outputs.
fn manifest(out: &Path, input: &Path, clinical: &Path) -> BTreeMap<String, String> {
    let places = [
        (clinical.display().to_string(), "<clinical>"),
        (input.display().to_string(), "<input>"),
        (out.display().to_string(), "<out>"),
    ];
    let mut found = Vec::new();
    files_under(out, "", &mut found);
    found
        .into_iter()
        .map(|(rel, path)| {
            let bytes = normalised(&rel, std::fs::read(&path).unwrap(), &places);
            let hex: String = Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            (rel, hex)
        })
        .collect()
}

fn run_variant(input: &Path, clinical: &Path, out: &Path, key: &Path, v: Variant) {
    let mut opts = RunOptions::new(input.to_path_buf(), clinical.to_path_buf(), out.into());
    match v {
        Variant::Plain => {}
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
        let text: String = got.iter().map(|(f, h)| format!("{h}  {f}\n")).collect();
        let path = repo_root()
            .join("fixtures/golden")
            .join(format!("{case}.sha256"));
        if record {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; record it (see this file's doc)", path.display()));
        let want: BTreeMap<String, String> = want
            .lines()
            .map(|l| {
                let (h, f) = l.split_once("  ").unwrap();
                (f.to_string(), h.to_string())
            })
            .collect();
        for f in want.keys().chain(got.keys()) {
            if want.get(f) != got.get(f) && !differences.iter().any(|(c, g)| *c == case && g == f) {
                differences.push((case.clone(), f.clone()));
            }
        }
        // Outputs of a case that matched are not kept.
        if !differences.iter().any(|(c, _)| *c == case) {
            std::fs::remove_dir_all(&out).unwrap();
        }
    }
    assert!(
        differences.is_empty(),
        "outputs differ from fixtures/golden (kept under {}): {differences:#?}",
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
