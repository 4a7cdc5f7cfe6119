//! Manifests of a run's outputs, as `tests/golden.rs` records them in
//! `fixtures/golden/{case}.sha256` and every golden check compares them: `{relative path:
//! SHA-256}` of every file under the output folder except the work record (`.plumbline/`,
//! a cache whose format is not an output). Before hashing, text files have the run's own
//! folders replaced by placeholders (`<input>`, `<clinical>`, `<out>`), since a clone or a
//! temp folder lives anywhere, and `run.json` loses the two values that describe the
//! machine rather than the run: `durations_s` and `threads`.
//!
//! A run resumed after a kill ([`resumed_manifest`]) reuses what the killed runs
//! recorded, so its `run.json` counts files as read or reused differently: they are set
//! to an uninterrupted run's (all read, none reused) once their sum is checked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::repo_root;

/// `{relative path (with `/`): lower-case hex SHA-256}` of a run's outputs.
pub type Manifest = BTreeMap<String, String>;

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
/// the machine's values (and, for a `resumed` run, with an uninterrupted run's counts of
/// files read and reused).
fn normalised(rel: &str, bytes: Vec<u8>, places: &[(String, &str)], resumed: bool) -> Vec<u8> {
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
        if resumed {
            let input = o["input"].as_object_mut().unwrap();
            let count = |k: &str| input[k].as_u64().unwrap_or_else(|| panic!("input.{k}"));
            let files = count("files");
            assert_eq!(
                count("files_read") + count("files_reused"),
                files,
                "a resumed run reads or reuses each file once"
            );
            input["files_read"] = files.into();
            input["files_reused"] = 0.into();
        }
        text = serde_json::to_string_pretty(&v).unwrap() + "\n";
    }
    text.into_bytes()
}

/// The manifest of the outputs in `out` of a run of `input` with `clinical`.
pub fn manifest(out: &Path, input: &Path, clinical: &Path) -> Manifest {
    manifest_of(out, input, clinical, false)
}

/// [`manifest`] of a run that resumed the work record of earlier (killed) runs into
/// `out`: `run.json` counts its files as an uninterrupted run does.
pub fn resumed_manifest(out: &Path, input: &Path, clinical: &Path) -> Manifest {
    manifest_of(out, input, clinical, true)
}

fn manifest_of(out: &Path, input: &Path, clinical: &Path, resumed: bool) -> Manifest {
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
            let bytes = normalised(&rel, std::fs::read(&path).unwrap(), &places, resumed);
            let hex: String = Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            (rel, hex)
        })
        .collect()
}

/// `fixtures/golden/{case}.sha256`.
pub fn golden_path(case: &str) -> PathBuf {
    repo_root()
        .join("fixtures/golden")
        .join(format!("{case}.sha256"))
}

/// A manifest as its file holds it: `{sha256}  {path}` lines (`sha256sum`'s format).
pub fn manifest_text(m: &Manifest) -> String {
    m.iter().map(|(f, h)| format!("{h}  {f}\n")).collect()
}

/// The recorded manifest of `case` (`fixtures/golden/{case}.sha256`).
pub fn read_manifest(case: &str) -> Manifest {
    let path = golden_path(case);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; record it (see tests/golden.rs's doc)",
            path.display()
        )
    });
    text.lines()
        .map(|l| {
            let (h, f) = l
                .split_once("  ")
                .unwrap_or_else(|| panic!("{}: bad line {l:?}", path.display()));
            (f.to_string(), h.to_string())
        })
        .collect()
}

/// The files missing from one of the two manifests or hashing differently, sorted.
pub fn differing_files(want: &Manifest, got: &Manifest) -> Vec<String> {
    let mut files: Vec<String> = want
        .keys()
        .chain(got.keys())
        .filter(|f| want.get(*f) != got.get(*f))
        .cloned()
        .collect();
    files.sort();
    files.dedup();
    files
}
