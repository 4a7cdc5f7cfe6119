//! `plumbline_ingest::scan::scan_file` on arbitrary bytes: the first byte picks the file
//! name (and so the reader: DICOM by content, through the one-pass stream reader; Slicer
//! Markups JSON; landmark CSV), the rest is the file. Checks that nothing panics, overflows, hangs or exhausts memory, and that
//! the structure check gives the same answer on the file and on the bytes.

#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use plumbline_ingest::ScanOptions;
use plumbline_ingest::precheck::{Limits, precheck_bytes, precheck_file};
use plumbline_ingest::scan::{SCAN_STACK_BYTES, scan_file};

/// File names by the first input byte (modulo 4).
const NAMES: [&str; 4] = ["input.dcm", "input", "input.mrk.json", "input.csv"];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let path = common::dir("scan").join(NAMES[usize::from(pick) % NAMES.len()]);
    std::fs::write(&path, body).unwrap();
    let limits = Limits::default();
    assert_eq!(precheck_file(&path, &limits), precheck_bytes(body, &limits));
    // The scan calls scan_file on threads with SCAN_STACK_BYTES of stack: do the same
    // (a panic there aborts the process through libfuzzer-sys's panic hook).
    let p = path.clone();
    std::thread::Builder::new()
        .stack_size(SCAN_STACK_BYTES)
        .spawn(move || {
            let _ = scan_file(&p, &ScanOptions::default());
        })
        .unwrap()
        .join()
        .unwrap();
    std::fs::remove_file(&path).unwrap();
});
