//! Pseudonymised runs: no real PatientID, PatientName or birth date in any output (file
//! contents or names); pseudonyms are HMAC-SHA256(key, id)[..16 hex]; dates shift by a
//! per-patient offset that keeps intervals. Without the flag, names and birth dates are
//! still never written.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use plumbline::run::{RunOptions, run};
use plumbline_e2e::repo_root;
use plumbline_ingest::privacy::Pseudonymizer;
use sha2::Sha256;

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("plumbline-privacy-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn all_files(root: &Path) -> Vec<PathBuf> {
    plumbline_ingest::scan::list_files(root).unwrap().0
}

/// PatientName and PatientBirthDate of every cohort image, read with dicom-object.
fn names_and_birth_dates() -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut names, mut births) = (BTreeSet::new(), BTreeSet::new());
    for f in all_files(&repo_root().join("fixtures/cohort-small/dicom")) {
        let o = dicom_object::open_file(&f).unwrap();
        let get = |t| {
            o.element(t)
                .ok()
                .and_then(|e| e.to_str().ok())
                .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
        };
        names.extend(get(dicom_dictionary_std::tags::PATIENT_NAME));
        births.extend(get(dicom_dictionary_std::tags::PATIENT_BIRTH_DATE));
    }
    (names, births)
}

fn run_with(out: &Path, key: Option<&Path>, shift: bool) {
    let cohort = repo_root().join("fixtures/cohort-small");
    run(&RunOptions {
        overlays: true,
        pseudonymize: key.map(|k| Pseudonymizer::from_key_file(k, shift).unwrap()),
        ..RunOptions::new(
            cohort.join("dicom"),
            cohort.join("clinical.csv"),
            out.to_path_buf(),
        )
    })
    .unwrap();
}

fn grep_outputs(out: &Path, needles: &BTreeSet<String>) -> Vec<String> {
    let mut hits = Vec::new();
    for f in all_files(out) {
        let rel = f.strip_prefix(out).unwrap().to_string_lossy().to_string();
        let bytes = std::fs::read(&f).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for n in needles {
            // Birth dates appear as YYYYMMDD in DICOM; look for both spellings.
            let iso = (n.len() == 8 && n.bytes().all(|b| b.is_ascii_digit()))
                .then(|| format!("{}-{}-{}", &n[..4], &n[4..6], &n[6..]));
            for needle in std::iter::once(n.clone()).chain(iso) {
                if rel.contains(&needle) || text.contains(&needle) {
                    hits.push(format!("{needle} in {rel}"));
                }
            }
        }
    }
    hits
}

#[test]
fn names_and_birth_dates_are_never_written() {
    let out = temp_dir("plain");
    run_with(&out, None, false);
    let (names, births) = names_and_birth_dates();
    assert_eq!(names.len(), 8);
    assert_eq!(births.len(), 8);
    let needles: BTreeSet<String> = names.union(&births).cloned().collect();
    let hits = grep_outputs(&out, &needles);
    assert!(hits.is_empty(), "{hits:?}");
    std::fs::remove_dir_all(out).unwrap();
}

#[test]
fn pseudonymised_outputs_hold_no_identifier() {
    let out = temp_dir("pseudo");
    let key = temp_dir("key").with_extension("txt");
    std::fs::write(&key, "correct horse battery staple 42\n").unwrap();
    run_with(&out, Some(&key), true);

    let (names, births) = names_and_birth_dates();
    let ids: BTreeSet<String> = (1..=8).map(|i| format!("P000{i}")).collect();
    let needles: BTreeSet<String> = names.iter().chain(&births).chain(&ids).cloned().collect();
    let hits = grep_outputs(&out, &needles);
    assert!(hits.is_empty(), "{hits:?}");

    // Pseudonyms are HMAC-SHA256 under the key (newline stripped), first 16 hex digits.
    let hmac_hex = |id: &str| {
        let mut m =
            <Hmac<Sha256> as KeyInit>::new_from_slice(b"correct horse battery staple 42").unwrap();
        m.update(id.as_bytes());
        m.finalize().into_bytes()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let mut r = csv::Reader::from_path(out.join("measurements.csv")).unwrap();
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    let pseudo: BTreeSet<&str> = rows.iter().map(|x| &x[0]).collect();
    let want: BTreeSet<String> = ids.iter().map(|i| hmac_hex(i)).collect();
    assert_eq!(pseudo, want.iter().map(String::as_str).collect());
    // Overlay folders are named by pseudonym too.
    let dirs: BTreeSet<String> = std::fs::read_dir(out.join("overlays"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(dirs, want);

    // Dates moved, intervals kept: study date - surgery date is the same as without the
    // flag, for every reading.
    let plain = temp_dir("plain2");
    run_with(&plain, None, false);
    let interval = |dir: &Path, by_pseudo: bool| -> BTreeMap<(String, String, String), i64> {
        let mut surgery = BTreeMap::new();
        let mut c = csv::Reader::from_path(dir.join("patients.csv")).unwrap();
        for rec in c.records() {
            let rec = rec.unwrap();
            surgery.insert(
                rec[0].to_string(),
                plumbline_ingest::clinical::parse_iso_date(&rec[1]).unwrap(),
            );
        }
        let mut m = csv::Reader::from_path(dir.join("measurements.csv")).unwrap();
        m.records()
            .map(|x| {
                let x = x.unwrap();
                let d = plumbline_ingest::clinical::parse_iso_date(&x[2]).unwrap();
                let pid = if by_pseudo {
                    x[0].to_string()
                } else {
                    hmac_hex(&x[0])
                };
                (
                    (pid, x[1].to_string(), x[3].to_string()),
                    d - surgery[&x[0]],
                )
            })
            .collect()
    };
    assert_eq!(interval(&out, true), interval(&plain, false));
    let shifted: BTreeSet<&str> = rows.iter().map(|x| &x[2]).collect();
    let mut p = csv::Reader::from_path(plain.join("measurements.csv")).unwrap();
    let real: BTreeSet<String> = p.records().map(|x| x.unwrap()[2].to_string()).collect();
    assert!(shifted.iter().filter(|d| real.contains(**d)).count() < shifted.len() / 2);
    for d in [out, plain] {
        std::fs::remove_dir_all(d).unwrap();
    }
}
