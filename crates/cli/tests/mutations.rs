//! `plumbline run` over a tree of mutated and hostile files next to a good patient: the
//! run exits 0 in bounded time and memory, every input file is in the work record and
//! every bad one in qc.csv, and the good patient's readings are all there. (The scan-level
//! mutation test with many more mutants is crates/ingest/tests/mutations.rs.)

#[path = "../../ingest/tests/common/mod.rs"]
mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{deep_sr, header, root};

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("plumbline-cli-mut-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

// Long (over 80 lines): one run over every mutant kind, each made next to the QC code it must give.
#[test]
fn plumbline_run_survives_mutated_and_hostile_files() {
    let cohort = root().join("fixtures/cohort-small");
    let input = temp("in");
    let good = cohort.join("dicom/P0001");
    for f in plumbline_ingest::scan::list_files(&good).unwrap().0 {
        let to = input.join("good").join(f.strip_prefix(&good).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&f, &to).unwrap();
    }
    let bad = input.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let mut bad_files = Vec::new();
    let sources = [
        cohort.join("dicom/P0002/20211006_postop/XR_LAT.dcm"),
        root().join("fixtures/interop/sr/sr_two_images.dcm"),
    ];
    // Deterministic pseudo-random mutations (xorshift).
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for (s, src) in sources.iter().enumerate() {
        let bytes = std::fs::read(src).unwrap();
        for (i, cut) in [
            1usize,
            100,
            131,
            140,
            400,
            1500,
            bytes.len() / 2,
            bytes.len() - 3,
        ]
        .into_iter()
        .enumerate()
        {
            let p = bad.join(format!("s{s}_cut{i}.dcm"));
            std::fs::write(&p, &bytes[..cut.min(bytes.len())]).unwrap();
            bad_files.push(p);
        }
        for i in 0..12 {
            let mut m = bytes.clone();
            for _ in 0..1 + next() % 8 {
                let at = 132 + (next() as usize % (m.len() - 132));
                m[at] ^= 1 << (next() % 8);
            }
            let p = bad.join(format!("s{s}_flip{i}.dcm"));
            std::fs::write(&p, &m).unwrap();
            bad_files.push(p);
        }
    }
    // A 10,000-deep content tree and a declared 2 GB value.
    let p = bad.join("deep10000.dcm");
    std::fs::write(&p, deep_sr(10_000, "2.25.1", "P0001", false)).unwrap();
    bad_files.push(p);
    let mut b = deep_sr(1, "2.25.1", "P0001", false);
    b.extend(header(0x0040, 0xA160, b"UT", 0x8000_0000));
    b.extend_from_slice(b"not two gigabytes");
    let p = bad.join("declared_2gb.dcm");
    std::fs::write(&p, &b).unwrap();
    bad_files.push(p);

    let out = temp("out");
    let start = Instant::now();
    // Memory bounded: the run must succeed under a 3 GiB address-space limit (ulimit -v).
    let status = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 3145728; exec \"$0\" run --quiet --threads 2 --input \"$1\" --clinical \"$2\" --out \"$3\"")
        .arg(env!("CARGO_BIN_EXE_plumbline"))
        .arg(&input)
        .arg(cohort.join("clinical.csv"))
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "plumbline run failed: {status}");
    assert!(
        start.elapsed() < Duration::from_secs(300),
        "took {:?}",
        start.elapsed()
    );

    // Every input file is in the work record; every file that is not read cleanly is in qc.csv.
    let journal = std::fs::read_to_string(out.join(plumbline_ingest::cache::JOURNAL)).unwrap();
    let recorded: BTreeSet<String> = journal
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["path"].as_str().map(String::from))
        .collect();
    let all = plumbline_ingest::scan::list_files(&input).unwrap().0;
    for f in &all {
        assert!(
            recorded.contains(f.to_string_lossy().as_ref()),
            "{} not recorded",
            f.display()
        );
    }
    let qc = std::fs::read_to_string(out.join("qc.csv")).unwrap();
    let in_qc = |f: &PathBuf| qc.contains(f.to_string_lossy().as_ref());
    for f in ["deep10000.dcm", "declared_2gb.dcm"] {
        assert!(in_qc(&bad.join(f)), "{f} not in qc.csv");
    }
    let cuts = bad_files
        .iter()
        .filter(|f| f.to_string_lossy().contains("_cut"))
        .count();
    let cuts_in_qc = bad_files
        .iter()
        .filter(|f| f.to_string_lossy().contains("_cut") && in_qc(f))
        .count();
    assert_eq!(cuts_in_qc, cuts, "every truncated file is reported");
    // The good patient keeps all four timepoints.
    let m = std::fs::read_to_string(out.join("measurements.csv")).unwrap();
    let tps: BTreeSet<&str> = m
        .lines()
        .skip(1)
        .filter(|l| l.starts_with("P0001,"))
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(tps, BTreeSet::from(["preop", "postop", "m3", "m6"]));
    eprintln!(
        "{} mutated and hostile files, {} files in all",
        bad_files.len(),
        all.len()
    );
    std::fs::remove_dir_all(input).unwrap();
    std::fs::remove_dir_all(out).unwrap();
}
