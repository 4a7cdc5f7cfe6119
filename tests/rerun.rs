//! A rerun into the same output folder never serves what the current settings would read
//! differently: the work record carries the plumbline version and a hash of every setting
//! that changes what the scan reads, and is set aside (renamed, not deleted) when they
//! differ. An unchanged rerun still reuses every file.

use std::path::{Path, PathBuf};

use dicom_core::value::Value;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use plumbline::pipeline::Pipeline;
use plumbline::run::{RunOptions, RunSummary, run};
use plumbline_e2e::{copy_tree, repo_root};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("plumbline-rerun-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn text_of(item: &InMemDicomObject, tag: dicom_core::Tag) -> Option<String> {
    item.element(tag)
        .ok()?
        .to_str()
        .ok()
        .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
}

/// Renames every landmark of an SR content tree to free text the default vocabulary does
/// not know: each Tracking Identifier `N` becomes `mark N`, and each `99SPINE` Finding code
/// moves to the scheme `99LOCAL` with value `xN` (so no code, meaning or identifier is a
/// canonical name). Returns the canonical names seen.
fn rename_landmarks(item: &mut InMemDicomObject, seen: &mut Vec<String>) {
    if text_of(item, tags::VALUE_TYPE).as_deref() == Some("TEXT")
        && let Some(t) = text_of(item, tags::TEXT_VALUE)
    {
        item.put(DataElement::new(
            tags::TEXT_VALUE,
            VR::UT,
            PrimitiveValue::from(format!("mark {t}")),
        ));
        seen.push(t);
    }
    item.update_value(tags::CONCEPT_CODE_SEQUENCE, |v| {
        for code in v.items_mut().into_iter().flatten() {
            if text_of(code, tags::CODING_SCHEME_DESIGNATOR).as_deref() == Some("99SPINE") {
                let value = text_of(code, tags::CODE_VALUE).unwrap();
                code.put(DataElement::new(
                    tags::CODING_SCHEME_DESIGNATOR,
                    VR::SH,
                    PrimitiveValue::from("99LOCAL"),
                ));
                code.put(DataElement::new(
                    tags::CODE_VALUE,
                    VR::SH,
                    PrimitiveValue::from(format!("x{value}")),
                ));
            }
        }
    });
    item.update_value(tags::CONTENT_SEQUENCE, |v: &mut Value<_, _>| {
        for child in v.items_mut().into_iter().flatten() {
            rename_landmarks(child, seen);
        }
    });
}

/// Options of a run of the free-text tree into `out` with pipeline `p`.
fn opts(input: &Path, out: &Path, p: &Pipeline) -> RunOptions {
    RunOptions {
        pipeline: p.clone(),
        ..RunOptions::new(
            input.to_path_buf(),
            repo_root().join("fixtures/cohort-small/clinical.csv"),
            out.to_path_buf(),
        )
    }
}

fn run_json(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap()
}

fn tables(out: &Path) -> Vec<(String, String)> {
    [
        "measurements.csv",
        "patients.csv",
        "cohort_summary.csv",
        "qc.csv",
    ]
    .iter()
    .map(|f| (f.to_string(), std::fs::read_to_string(out.join(f)).unwrap()))
    .collect()
}

fn read_and_reused(out: &Path) -> (u64, u64, u64) {
    let j = run_json(out);
    (
        j["input"]["files"].as_u64().unwrap(),
        j["input"]["files_read"].as_u64().unwrap(),
        j["input"]["files_reused"].as_u64().unwrap(),
    )
}

fn discarded_records(out: &Path) -> usize {
    std::fs::read_dir(out.join(".plumbline"))
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.starts_with("scan-journal.discarded-") && name.ends_with(".jsonl")
        })
        .count()
}

// Long (over 80 lines): one sequence of runs into one folder; each step depends on the record the one before left.
#[test]
fn new_synonyms_set_the_work_record_aside_and_an_unchanged_rerun_reuses_it() {
    // Patients P0001 and P0002 of the committed cohort, their SRs renamed to free text.
    let cohort = repo_root().join("fixtures/cohort-small/dicom");
    let (original, input) = (temp_dir("original"), temp_dir("input"));
    let mut seen = Vec::new();
    for pid in ["P0001", "P0002"] {
        copy_tree(&cohort.join(pid), &original.join(pid));
        copy_tree(&cohort.join(pid), &input.join(pid));
    }
    for f in plumbline_ingest::scan::list_files(&input).unwrap().0 {
        let mut obj = dicom_object::open_file(&f).unwrap();
        if text_of(&obj, tags::MODALITY).as_deref() != Some("SR") {
            continue;
        }
        rename_landmarks(&mut obj, &mut seen);
        obj.write_to_file(&f).unwrap();
    }
    seen.sort();
    seen.dedup();
    assert!(seen.len() > 40, "{} landmark names", seen.len());

    // A pipeline that maps the free text back.
    let mut toml = std::fs::read_to_string(repo_root().join("pipelines/default.toml")).unwrap();
    for n in &seen {
        toml.push_str(&format!(
            "\n[[synonyms]]\nlandmark = \"{n}\"\ntext = \"mark {n}\"\n"
        ));
    }
    let file = temp_dir("synonyms.toml");
    std::fs::write(&file, toml).unwrap();
    let synonyms = Pipeline::load(&file).unwrap();
    let default = Pipeline::embedded_default();

    // 1. The default vocabulary names none of the points.
    let out = temp_dir("out");
    let s: RunSummary = run(&opts(&input, &out, &default)).unwrap();
    assert_eq!(s.record_discarded, None);
    let qc = std::fs::read_to_string(out.join("qc.csv")).unwrap();
    assert!(qc.contains("unnamed_point"), "{qc}");
    let (files, read, reused) = read_and_reused(&out);
    assert_eq!((read, reused), (files, 0));

    // 2. Rerun into the same folder with the synonyms: the record is set aside and every
    //    file read again; the tables equal a fresh run's, and the original SRs' metrics.
    let s = run(&opts(&input, &out, &synonyms)).unwrap();
    assert_eq!(
        s.record_discarded.as_deref(),
        Some("pipeline vocabulary changed")
    );
    assert!(
        s.closing_line(&out)
            .contains("work record of an earlier run was set aside (pipeline vocabulary changed)"),
        "{}",
        s.closing_line(&out)
    );
    assert_eq!(
        run_json(&out)["record_discarded"],
        "pipeline vocabulary changed"
    );
    assert_eq!(read_and_reused(&out), (files, files, 0));
    assert_eq!(discarded_records(&out), 1);
    let fresh = temp_dir("fresh");
    run(&opts(&input, &fresh, &synonyms)).unwrap();
    assert_eq!(tables(&out), tables(&fresh));
    let orig_out = temp_dir("original-out");
    run(&opts(&original, &orig_out, &default)).unwrap();
    let measurements = |o: &Path| std::fs::read_to_string(o.join("measurements.csv")).unwrap();
    assert_eq!(measurements(&out), measurements(&orig_out));
    assert!(measurements(&out).lines().count() > 8);
    assert!(
        !std::fs::read_to_string(out.join("qc.csv"))
            .unwrap()
            .contains("unnamed_point")
    );

    // 3. An unchanged rerun reuses every file and changes nothing.
    let s = run(&opts(&input, &out, &synonyms)).unwrap();
    assert_eq!(s.record_discarded, None);
    assert_eq!(run_json(&out)["record_discarded"], serde_json::Value::Null);
    assert!(!s.closing_line(&out).contains("set aside"));
    assert_eq!(read_and_reused(&out), (files, 0, files));
    assert_eq!(tables(&out), tables(&fresh));
    assert_eq!(discarded_records(&out), 1);

    // 4. Another plumbline version wrote the record: set aside too.
    let record = out.join(".plumbline/scan-journal.jsonl");
    let text = std::fs::read_to_string(&record).unwrap();
    let version = format!("\"version\":\"{}\"", env!("CARGO_PKG_VERSION"));
    assert!(
        text.lines().next().unwrap().contains(&version),
        "{text:.200}"
    );
    std::fs::write(&record, text.replacen(&version, "\"version\":\"0.0.9\"", 1)).unwrap();
    let s = run(&opts(&input, &out, &synonyms)).unwrap();
    let why = format!("plumbline 0.0.9 -> {}", env!("CARGO_PKG_VERSION"));
    assert_eq!(s.record_discarded.as_deref(), Some(why.as_str()));
    assert_eq!(read_and_reused(&out), (files, files, 0));
    assert_eq!(discarded_records(&out), 2);
    assert_eq!(tables(&out), tables(&fresh));

    // 5. A record from before the header (plain entry lines): set aside.
    let text = std::fs::read_to_string(&record).unwrap();
    let entries: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
    std::fs::write(&record, entries).unwrap();
    let s = run(&opts(&input, &out, &synonyms)).unwrap();
    assert_eq!(
        s.record_discarded.as_deref(),
        Some("work record without a settings header (an older plumbline)")
    );
    assert_eq!(discarded_records(&out), 3);

    // 6. A new SR depth cap: set aside, naming the setting.
    let capped = temp_dir("capped.toml");
    std::fs::write(
        &capped,
        std::fs::read_to_string(&file)
            .unwrap()
            .replace("depth_cap = 64", "depth_cap = 32"),
    )
    .unwrap();
    let s = run(&opts(&input, &out, &Pipeline::load(&capped).unwrap())).unwrap();
    assert_eq!(
        s.record_discarded.as_deref(),
        Some("SR depth cap changed; structure limits changed")
    );
    assert_eq!(discarded_records(&out), 4);

    for d in [original, input, out, fresh, orig_out, file, capped] {
        let _ = std::fs::remove_dir_all(&d);
        let _ = std::fs::remove_file(&d);
    }
}
