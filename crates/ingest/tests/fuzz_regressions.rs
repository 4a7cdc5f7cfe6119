//! Inputs found by the fuzz targets of `fuzz/` (see `fuzz/README.md`), replayed through
//! the ingest functions they broke. Each file under `tests/data/fuzz-regressions/<target>/`
//! is a raw fuzz input: for `scan_file`, its first byte picks the file name (0 `.dcm`,
//! 1 no extension, 2 `.mrk.json`, 3 `.csv`, modulo 4) and the rest is the file; for
//! `clinical_csv`, the whole input is the file. Every committed input must have an entry
//! below saying what it must give now; an input without one fails the test.

mod common;

use std::path::PathBuf;

use common::{root, temp_dir};
use plumbline_ingest::ScanOptions;
use plumbline_ingest::clinical::read_clinical;
use plumbline_ingest::cohort::shard_of;
use plumbline_ingest::precheck::{Limits, Problem, precheck_file};
use plumbline_ingest::qc::codes;
use plumbline_ingest::scan::{FileOutcome, SCAN_STACK_BYTES, scan_file};

const NAMES: [&str; 4] = ["input.dcm", "input", "input.mrk.json", "input.csv"];

/// What a `scan_file` input must give: the outcome, the QC code of its first issue, a
/// phrase of that issue's message, and the structure check's verdict.
struct ScanCase {
    file: &'static str,
    outcome: FileOutcome,
    code: &'static str,
    phrase: &'static str,
    precheck: Option<Problem>,
}

/// Found in the first 11-minute run of `scan_file` (not reported by libFuzzer itself:
/// their allocations, 0.8 to 1.4 GB, stayed under its 2 GB RSS limit; replaying the
/// grown corpus with `-malloc_limit_mb=100` showed them, see `fuzz/README.md`). In each,
/// a binary numeric element (US, UL, ...) has a length that is not a multiple of its
/// value size; dicom-rs 0.10 reads the whole values only but counts the full length, so
/// it reads the next element header from the wrong offset, found a length of 1 GB
/// there and allocated it. The structure check, which followed the file correctly,
/// could not see it. Now such an element is refused before dicom-rs parses the file.
const SCAN_CASES: &[ScanCase] = &[
    ScanCase {
        file: "numeric_length_desync_rle.bin",
        outcome: FileOutcome::Broken,
        code: codes::BROKEN_FILE,
        phrase: "not a multiple of its",
        precheck: Some(Problem::BadValueLength),
    },
    ScanCase {
        file: "numeric_length_desync_jpeg.bin",
        outcome: FileOutcome::Broken,
        code: codes::BROKEN_FILE,
        phrase: "not a multiple of its",
        precheck: Some(Problem::BadValueLength),
    },
    ScanCase {
        file: "numeric_length_desync_sr.bin",
        outcome: FileOutcome::Broken,
        code: codes::BROKEN_FILE,
        phrase: "not a multiple of its",
        precheck: Some(Problem::BadValueLength),
    },
];

/// What a `clinical_csv` input must give: `Ok` with this many rows, or an error whose
/// message holds the phrase.
struct ClinicalCase {
    file: &'static str,
    rows: Result<usize, &'static str>,
}

const CLINICAL_CASES: &[ClinicalCase] = &[];

fn dir(target: &str) -> PathBuf {
    root()
        .join("crates/ingest/tests/data/fuzz-regressions")
        .join(target)
}

fn inputs(target: &str) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir(target)) else {
        return Vec::new();
    };
    let mut names: Vec<String> = rd
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

#[test]
fn every_committed_input_has_an_expectation() {
    for name in inputs("scan_file") {
        assert!(
            SCAN_CASES.iter().any(|c| c.file == name),
            "scan_file/{name} has no entry in SCAN_CASES"
        );
    }
    for name in inputs("clinical_csv") {
        assert!(
            CLINICAL_CASES.iter().any(|c| c.file == name),
            "clinical_csv/{name} has no entry in CLINICAL_CASES"
        );
    }
}

#[test]
fn scan_file_inputs() {
    let tmp = temp_dir("fuzz-regressions");
    for case in SCAN_CASES {
        let data = std::fs::read(dir("scan_file").join(case.file))
            .unwrap_or_else(|e| panic!("{}: {e}", case.file));
        let (&pick, body) = data.split_first().unwrap();
        let sub = tmp.join(case.file);
        std::fs::create_dir_all(&sub).unwrap();
        let path = sub.join(NAMES[usize::from(pick) % NAMES.len()]);
        std::fs::write(&path, body).unwrap();
        let check = precheck_file(&path, &Limits::default());
        println!("{}: {check:?}", case.file);
        assert_eq!(
            check.err().map(|e| e.problem),
            case.precheck,
            "{}",
            case.file
        );
        let p = path.clone();
        // As in the scan: a thread with SCAN_STACK_BYTES of stack.
        let (outcome, issues) = std::thread::Builder::new()
            .stack_size(SCAN_STACK_BYTES)
            .spawn(move || scan_file(&p, &ScanOptions::default()))
            .unwrap()
            .join()
            .unwrap_or_else(|_| panic!("scan_file panicked on {}", case.file));
        assert_eq!(outcome, case.outcome, "{}", case.file);
        let first = issues
            .first()
            .unwrap_or_else(|| panic!("{}: no issue", case.file));
        assert_eq!(first.code, case.code, "{}: {}", case.file, first.message);
        assert!(
            first.message.contains(case.phrase) && first.message.contains("at byte"),
            "{}: {}",
            case.file,
            first.message
        );
    }
    std::fs::remove_dir_all(tmp).unwrap();
}

#[test]
fn clinical_csv_inputs() {
    for case in CLINICAL_CASES {
        let path = dir("clinical_csv").join(case.file);
        let r = std::panic::catch_unwind(|| read_clinical(&path))
            .unwrap_or_else(|_| panic!("read_clinical panicked on {}", case.file));
        match (r, case.rows) {
            (Ok((t, _)), Ok(n)) => assert_eq!(t.rows.len(), n, "{}", case.file),
            (Err(e), Err(phrase)) => {
                assert!(e.to_string().contains(phrase), "{}: {e}", case.file)
            }
            (r, want) => panic!(
                "{}: got {:?}, want {want:?}",
                case.file,
                r.map(|(t, _)| t.rows.len())
            ),
        }
    }
}

/// Inputs of the `stream_reader` target (first byte: the shard, `b % 3` of 3, as there),
/// each checked as the target checks it: a shard's scan that stops early at PatientID
/// (`Foreign`) must be one whose patient, as the full read records it, is another
/// shard's.
///
/// `patient-id-nbsp-shard` (found on 2026-12-01, second run on #13): an SR whose Latin-1
/// PatientID is 4096 bytes long and starts and ends with no-break spaces. The SR reader
/// trims them (any white space), the early stop trimmed only spaces and NULs, so shard 0
/// skipped a file whose full read gives it a shard-0 patient. Now a file stays ours when
/// either reading of its PatientID is ours.
#[test]
fn stream_reader_inputs() {
    let names = inputs("stream_reader");
    assert!(names.contains(&"patient-id-nbsp-shard".to_string()));
    let tmp = temp_dir("fuzz-regressions-stream");
    for name in names {
        let data = std::fs::read(dir("stream_reader").join(&name)).unwrap();
        let (&pick, body) = data.split_first().unwrap();
        let path = tmp.join(format!("{name}.dcm"));
        std::fs::write(&path, body).unwrap();
        let (k, n) = (usize::from(pick % 3), 3);
        let p = path.clone();
        let (full, sharded) = std::thread::Builder::new()
            .stack_size(SCAN_STACK_BYTES)
            .spawn(move || {
                let full = scan_file(&p, &ScanOptions::default()).0;
                let opts = ScanOptions {
                    shard: Some((k, n)),
                    ..ScanOptions::default()
                };
                (full, scan_file(&p, &opts).0)
            })
            .unwrap()
            .join()
            .unwrap();
        let pid = match &full {
            FileOutcome::Landmarks(d) => Some(d.patient_id.clone()),
            FileOutcome::Image(i) => Some(i.patient_id.clone()),
            _ => None,
        };
        if name == "patient-id-nbsp-shard" {
            let pid = pid.clone().expect("read as a landmark document");
            assert_eq!(shard_of(&pid, n), k, "{name}: the full read is shard {k}'s");
            assert!(
                !matches!(sharded, FileOutcome::Foreign(_)),
                "{name}: skipped"
            );
        }
        match (&sharded, pid) {
            (FileOutcome::Foreign(_), Some(pid)) => {
                assert!(!pid.is_empty() && shard_of(&pid, n) != k, "{name}: {pid:?}")
            }
            (FileOutcome::Foreign(_), None) => {}
            _ => assert_eq!(format!("{sharded:?}"), format!("{full:?}"), "{name}"),
        }
    }
    std::fs::remove_dir_all(tmp).unwrap();
}
