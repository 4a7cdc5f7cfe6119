//! The generator end to end: determinism, the variant mix of the data contract, and
//! every written file validated by dciodvfy (dicom3tools).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use dicom_dictionary_std::tags;
use dicom_object::OpenFileOptions;
use plumbline_synth::{ImageSize, SynthError, SynthOptions, generate};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "plumbline-synth-test-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn gen_into(dir: &Path, patients: usize, seed: u64) {
    generate(&SynthOptions {
        patients,
        seed,
        out: dir.to_path_buf(),
        image_size: ImageSize::Small,
        plant_errors: false,
    })
    .unwrap();
}

#[test]
fn same_seed_gives_byte_identical_files() {
    let (a, b, c) = (temp_dir("a"), temp_dir("b"), temp_dir("c"));
    gen_into(&a, 3, 11);
    gen_into(&b, 3, 11);
    gen_into(&c, 3, 12);
    let fa = files(&a);
    let fb = files(&b);
    assert!(fa.len() > 30, "{} files", fa.len());
    let rel = |root: &Path, v: &[PathBuf]| -> Vec<PathBuf> {
        v.iter()
            .map(|p| p.strip_prefix(root).unwrap().to_path_buf())
            .collect()
    };
    assert_eq!(rel(&a, &fa), rel(&b, &fb));
    for (x, y) in fa.iter().zip(&fb) {
        assert!(
            std::fs::read(x).unwrap() == std::fs::read(y).unwrap(),
            "{} differs between two runs with the same seed",
            x.display()
        );
    }
    // Another seed gives another cohort.
    assert_ne!(
        std::fs::read(a.join("truth.csv")).unwrap(),
        std::fs::read(c.join("truth.csv")).unwrap()
    );
    // Existing output is never overwritten.
    let again = generate(&SynthOptions {
        patients: 3,
        seed: 11,
        out: a.clone(),
        image_size: ImageSize::Small,
        plant_errors: false,
    });
    assert!(matches!(again, Err(SynthError::Exists(_))));
    for d in [a, b, c] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn cohort_mixes_every_variant() {
    let dir = temp_dir("mix");
    gen_into(&dir, 16, 5);
    let mut seen = BTreeSet::new();
    let mut observers = BTreeSet::new();
    let all = files(&dir.join("dicom"));
    let mut per_image_srs = 0;
    for f in &all {
        let obj = OpenFileOptions::new()
            .read_until(tags::PIXEL_DATA)
            .open_file(f)
            .unwrap();
        let s = |tag| {
            obj.element(tag)
                .ok()
                .and_then(|e| e.to_str().ok())
                .map(|v| v.trim_end_matches(['\0', ' ']).to_string())
        };
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        match s(tags::MODALITY).as_deref() {
            Some("DX" | "CR") => {
                seen.insert(
                    match (
                        s(tags::PIXEL_SPACING),
                        s(tags::ESTIMATED_RADIOGRAPHIC_MAGNIFICATION_FACTOR),
                    ) {
                        (Some(_), _) => "pixel spacing",
                        (None, Some(_)) => "imager spacing / magnification",
                        (None, None) => "imager spacing only",
                    },
                );
                let ips = s(tags::IMAGER_PIXEL_SPACING).unwrap();
                let (r, c) = ips.split_once('\\').unwrap();
                if r != c {
                    seen.insert("anisotropic");
                }
                let o = s(tags::PATIENT_ORIENTATION).unwrap_or_default();
                seen.insert(match o.split('\\').next().unwrap_or("") {
                    "A" => "A",
                    "P" => "P",
                    "L" => "L",
                    "R" => "R",
                    "" => "no orientation",
                    other => panic!("unexpected orientation {other}"),
                });
                if obj.meta().transfer_syntax() == "1.2.840.10008.1.2.5" {
                    seen.insert("rle");
                }
                if !name.ends_with(".dcm") {
                    seen.insert("no suffix");
                }
            }
            Some("SR") => {
                observers.insert(
                    name.split('_')
                        .nth(1)
                        .unwrap()
                        .trim_end_matches(".dcm")
                        .to_string(),
                );
                if name.contains("_lat") || name.contains("_ap") {
                    per_image_srs += 1;
                }
            }
            other => panic!("{}: unexpected modality {other:?}", f.display()),
        }
    }
    for want in [
        "pixel spacing",
        "imager spacing / magnification",
        "imager spacing only",
        "anisotropic",
        "A",
        "P",
        "L",
        "R",
        "no orientation",
        "rle",
        "no suffix",
    ] {
        assert!(seen.contains(want), "no {want} variant in {seen:?}");
    }
    assert_eq!(
        observers,
        BTreeSet::from(["alpha".to_string(), "beta".to_string()])
    );
    assert!(per_image_srs > 0);
    // Some readings miss landmarks: fewer truth rows than 22 metrics everywhere.
    let truth = std::fs::read_to_string(dir.join("truth.csv")).unwrap();
    let mut per_reading = std::collections::BTreeMap::new();
    for line in truth.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        *per_reading.entry((f[0], f[1], f[2])).or_insert(0) += 1;
    }
    assert!(per_reading.values().any(|&n| n < 22), "no missing metric");
    assert!(per_reading.values().any(|&n| n == 22));

    std::fs::remove_dir_all(dir).unwrap();
}
