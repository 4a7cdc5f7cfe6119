//! Mutation test of the scan: committed files cut, bit-flipped and given lying lengths,
//! plus hand-made hostile files (a content tree 10,000 deep, a declared 2 GB value), are
//! scanned one by one and as a folder. Nothing may panic, abort or hang; each file takes
//! less than 5 s (debug build); the process's peak memory (VmHWM) stays below 1.5 GB;
//! every file comes out as an image, a landmark document or a QC issue; and where the
//! structure check calls a file truncated or corrupt, dicom-rs agrees that it cannot
//! read it (the check never throws away a file dicom-rs could read).
//!
//! This file holds a single test so that VmHWM, a per-process peak, is this test's own.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use dicom_dictionary_std::tags;
use dicom_object::OpenFileOptions;
use plumbline_ingest::precheck::{Limits, Problem, precheck_file};
use plumbline_ingest::qc::codes;
use plumbline_ingest::scan::{FileOutcome, SCAN_STACK_BYTES, list_files, scan_file};
use plumbline_ingest::{ScanOptions, scan};

/// Deterministic pseudo-random numbers (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The committed files mutated: (short name, path below fixtures/).
const SOURCES: [(&str, &str); 5] = [
    (
        "cohort_image",
        "cohort-small/dicom/P0001/20210530_preop/XR_LAT.dcm",
    ),
    ("rle_image", "interop/codecs/SYNTH_RLE.dcm"),
    (
        "cohort_sr",
        "cohort-small/dicom/P0001/20210530_preop/SR_alpha_ap.dcm",
    ),
    ("highdicom_sr", "interop/sr/sr_two_images.dcm"),
    ("j2kr", "interop/cr/RG1_J2KR.dcm"),
];

// Long (~95 lines): the mutation kinds (cuts, bit flips, lying lengths) in one place, in the order they are written.
/// Writes the mutants of one source file into `dir`; returns how many.
// Long (over 80 lines): one list of mutation kinds, each a few lines; splitting them apart would scatter the list.
fn mutate(name: &str, bytes: &[u8], dir: &Path, rng: &mut Rng) -> usize {
    let mut n = 0;
    let mut write = |kind: &str, data: &[u8]| {
        std::fs::write(dir.join(format!("{name}_{kind}_{n:03}.dcm")), data).unwrap();
        n += 1;
    };
    let headers = element_headers(bytes);
    let meta_end = headers
        .iter()
        .find(|h| h.1.0 != 0x0002)
        .map_or(bytes.len(), |h| h.0);
    // Where the structure is: up to just past the Pixel Data header, if any.
    let structure_end = headers
        .iter()
        .find(|h| h.1 == (0x7FE0, 0x0010))
        .map_or(bytes.len(), |h| (h.0 + 64).min(bytes.len()));
    let len = bytes.len();

    // Truncations: 40 offsets.
    let mut cuts: BTreeSet<usize> = [
        0,
        1,
        4,
        127,
        128,
        129,
        131,
        132,
        136,
        144,
        200,
        meta_end - 1,
        meta_end,
        meta_end + 1,
        meta_end + 5,
        meta_end + 9,
        len / 4,
        len / 2,
        3 * len / 4,
        len - 2,
        len - 1,
    ]
    .into_iter()
    .filter(|&c| c < len)
    .collect();
    // Inside and right after element headers spread over the structure.
    let mut i = 0;
    while cuts.len() < 40 && i < 400 {
        let h = headers[(i * 7919) % headers.len()];
        cuts.insert((h.0 + [3, 7, 11, 12][i % 4]).min(len - 1));
        i += 1;
    }
    for &c in cuts.iter().take(40) {
        write("cut", &bytes[..c]);
    }

    // 50 mutants with 1-8 bytes flipped, within the structure.
    for _ in 0..50 {
        let mut m = bytes.to_vec();
        for _ in 0..1 + rng.below(8) {
            let at = rng.below(structure_end);
            m[at] ^= 1 + rng.below(255) as u8;
        }
        write("flip", &m);
    }

    // Lying lengths on element headers found by walking: undefined (or 0xFFFF for the
    // 2-byte length fields) and just past the end of the file.
    let step = (headers.len() / 15).max(1);
    for h in headers.iter().step_by(step).take(16) {
        let (at, _, _, len_at, len_size) = *h;
        for past in [false, true] {
            let mut m = bytes.to_vec();
            if len_size == 4 {
                let v = if past {
                    (len - len_at - 4 + 2) as u32
                } else {
                    UNDEFINED
                };
                m[len_at..len_at + 4].copy_from_slice(&v.to_le_bytes());
            } else {
                let v = if past {
                    ((len - len_at - 2 + 2).min(0xFFFF)) as u16
                } else {
                    0xFFFF
                };
                m[len_at..len_at + 2].copy_from_slice(&v.to_le_bytes());
            }
            write(if past { "pastend" } else { "undef" }, &m);
            let _ = at;
        }
    }
    n
}

/// Hand-made hostile files; returns their names and the QC code each must get.
fn hostile(dir: &Path) -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    for defined in [false, true] {
        let name = format!(
            "deep10000_{}.dcm",
            if defined { "defined" } else { "undefined" }
        );
        std::fs::write(dir.join(&name), deep_sr(10_000, "2.25.1", "P1", defined)).unwrap();
        out.push((name, codes::HOSTILE_STRUCTURE));
    }
    // A declared 2 GB value in a small SR: a UT of 0x80000000 bytes.
    let mut b = deep_sr(1, "2.25.1", "P1", false);
    b.extend(header(0x0040, 0xA160, b"UT", 0x8000_0000));
    b.extend_from_slice(b"not two gigabytes");
    std::fs::write(dir.join("declared_2gb.dcm"), &b).unwrap();
    out.push(("declared_2gb.dcm".into(), codes::BROKEN_FILE));
    // The same length on a private OB element in an image header, before Pixel Data.
    let img = std::fs::read(root().join("fixtures").join(SOURCES[1].1)).unwrap();
    let px = element_headers(&img)
        .into_iter()
        .find(|h| h.1 == (0x7FE0, 0x0010))
        .unwrap()
        .0;
    let mut m = img[..px].to_vec();
    m.extend(header(0x0009, 0x1010, b"OB", 0x8000_0000));
    m.extend_from_slice(&img[px..]);
    std::fs::write(dir.join("image_private_2gb.dcm"), &m).unwrap();
    out.push(("image_private_2gb.dcm".into(), codes::BROKEN_FILE));
    // 3 million text values in one implicit VR element.
    let mut b = meta(IMPLICIT_LE, COMPREHENSIVE_SR, "2.25.8");
    b.extend(el_implicit(
        0x0008,
        0x0016,
        b"1.2.840.10008.5.1.4.1.1.88.33\0",
    ));
    b.extend(el_implicit(0x0008, 0x0060, &vec![b'\\'; 3_000_000]));
    std::fs::write(dir.join("text_values.dcm"), &b).unwrap();
    out.push(("text_values.dcm".into(), codes::HOSTILE_STRUCTURE));
    out
}

fn vm_hwm_kb() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Whether dicom-rs reads the file as the scan does (up to Pixel Data).
fn dicom_rs_reads(p: &Path) -> bool {
    OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .open_file(p)
        .is_ok()
}

// Long (~140 lines): the file holds this single test so that the peak memory it checks is its own.
#[test]
fn mutated_and_hostile_files_never_stop_the_scan() {
    let dir = temp_dir("mutations");
    let mut rng = Rng(0x5EED_2024);
    let mut mutants = 0;
    for (name, rel) in SOURCES {
        let bytes = std::fs::read(root().join("fixtures").join(rel)).unwrap();
        mutants += mutate(name, &bytes, &dir, &mut rng);
    }
    let hostile = hostile(&dir);
    let (files, _) = list_files(&dir).unwrap();
    assert_eq!(files.len(), mutants + hostile.len());
    println!(
        "{mutants} mutants of {} committed files and {} hand-made hostile files",
        SOURCES.len(),
        hostile.len()
    );

    // One by one, timed, on a thread with the scan's stack size; a panic is caught and
    // reported with the file.
    let opts = ScanOptions::default();
    let list = files.clone();
    let results = std::thread::Builder::new()
        .stack_size(SCAN_STACK_BYTES)
        .spawn(move || {
            list.iter()
                .map(|p| {
                    let t = Instant::now();
                    let r = std::panic::catch_unwind(|| scan_file(p, &opts));
                    (p.clone(), t.elapsed(), r.ok())
                })
                .collect::<Vec<_>>()
        })
        .unwrap()
        .join()
        .unwrap();
    let mut slowest = (Duration::ZERO, PathBuf::new());
    let mut kinds = [0usize; 5];
    for (p, took, r) in &results {
        let Some((outcome, issues)) = r else {
            panic!("scan_file panicked on {}", p.display());
        };
        assert!(
            *took < Duration::from_secs(5),
            "{} took {took:?}",
            p.display()
        );
        if *took > slowest.0 {
            slowest = (*took, p.clone());
        }
        match outcome {
            FileOutcome::Image(_) => kinds[0] += 1,
            FileOutcome::Landmarks(_) => kinds[1] += 1,
            FileOutcome::Broken => {
                kinds[2] += 1;
                assert!(!issues.is_empty(), "{}", p.display());
            }
            FileOutcome::NotDicom => kinds[3] += 1,
            FileOutcome::OtherDicom => kinds[4] += 1,
            FileOutcome::Foreign(_) => panic!("{}: no shard was asked for", p.display()),
        }
    }
    println!(
        "scan_file: {} images, {} landmark documents, {} broken, {} not DICOM, {} other DICOM; slowest {:?} ({})",
        kinds[0],
        kinds[1],
        kinds[2],
        kinds[3],
        kinds[4],
        slowest.0,
        slowest.1.display()
    );
    for (name, code) in &hostile {
        let (_, _, r) = results.iter().find(|r| r.0.ends_with(name)).unwrap();
        let (outcome, issues) = r.as_ref().unwrap();
        assert_eq!(*outcome, FileOutcome::Broken, "{name}");
        assert_eq!(issues[0].code, *code, "{name}: {}", issues[0].message);
        assert!(
            issues[0].message.contains("at byte"),
            "{}",
            issues[0].message
        );
    }

    // The whole folder through `scan`: every file is accounted for.
    let s = scan(&dir, &ScanOptions::default(), &|_| {}).unwrap();
    assert_eq!(s.counts.files, files.len());
    let mut seen: BTreeSet<&Path> = s.issues.iter().map(|i| i.path.as_path()).collect();
    seen.extend(s.images.iter().map(|i| i.path.as_path()));
    seen.extend(s.docs.iter().map(|d| d.path.as_path()));
    for f in &files {
        assert!(seen.contains(f.as_path()), "{} lost", f.display());
    }

    // Where the check says truncated or corrupt, dicom-rs cannot read the file either
    // (checked where the declared length is small enough to let dicom-rs try).
    let limits = Limits::for_depth_cap(plumbline_ingest::sr::DEFAULT_DEPTH_CAP);
    let list = files.clone();
    let (checked, refused_limit, misaligned) = std::thread::Builder::new()
        .stack_size(SCAN_STACK_BYTES)
        .spawn(move || {
            let (mut checked, mut limit, mut misaligned) = (0, 0, 0);
            for p in &list {
                let Err(e) = precheck_file(p, &limits) else {
                    continue;
                };
                if e.problem.is_limit() {
                    limit += 1;
                    continue;
                }
                if e.problem == Problem::BadValueLength {
                    // dicom-rs reads on from the wrong offset: it may fail or return
                    // garbage, so there is nothing to compare.
                    misaligned += 1;
                    continue;
                }
                if e.declared_len.is_some_and(|l| l > 64 << 20) {
                    continue;
                }
                assert!(
                    !dicom_rs_reads(p),
                    "{}: the check says `{e}` but dicom-rs reads it",
                    p.display()
                );
                checked += 1;
            }
            (checked, limit, misaligned)
        })
        .unwrap()
        .join()
        .unwrap();
    println!(
        "{checked} files refused as truncated or corrupt, dicom-rs refuses them too; {misaligned} refused for a numeric value length dicom-rs misreads; {refused_limit} refused for a limit"
    );
    assert!(checked > 100, "{checked}");

    let hwm = vm_hwm_kb().expect("VmHWM in /proc/self/status");
    println!("peak resident memory (VmHWM) {} MB", hwm / 1024);
    assert!(hwm < 1_500_000, "VmHWM {hwm} kB");
    std::fs::remove_dir_all(dir).unwrap();
}
