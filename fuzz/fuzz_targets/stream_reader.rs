//! The one-pass stream reader (`plumbline_ingest::dataset::read_file`, behind
//! `scan::scan_file`) on arbitrary bytes, against the structure check it is built on and
//! the dicom-rs path it replaced (`scan::scan_file_reference`). The first byte picks a
//! shard (`0`: none; else shard `b % 3` of 3), the rest is the file. Checks that nothing
//! panics, overflows, hangs or exhausts memory, and:
//!
//! - the reader refuses a file exactly when the structure check does, at the same byte,
//!   except for text it cannot decode (refused at that element, which the check does not
//!   decode);
//! - when both it and dicom-rs read a file as an image or a landmark document, they read
//!   the same record and the same QC issues;
//! - a shard's scan gives either the full record or `Foreign` for another shard's patient.

#![no_main]

#[path = "common.rs"]
mod common;

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use plumbline_ingest::ScanOptions;
use plumbline_ingest::cohort::shard_of;
use plumbline_ingest::dataset::read_file;
use plumbline_ingest::precheck::{Limits, precheck_file};
use plumbline_ingest::scan::{FileOutcome, SCAN_STACK_BYTES, scan_file, scan_file_reference};

fn check(path: &PathBuf, pick: u8) {
    let limits = Limits::default();
    let check = precheck_file(path, &limits);
    let read = read_file(path, &limits, None);
    match (&check, &read) {
        (Ok(()), Ok(_)) => {}
        (Ok(()), Err(r)) => assert!(
            r.error.message.contains("cannot be decoded"),
            "refused what the check lets through: {}",
            r.error.message
        ),
        (Err(e), Ok(_)) => panic!("read what the check refuses: {}", e.message),
        (Err(e), Err(r)) => assert!(
            r.error.offset <= e.offset
                && (r.error.problem == e.problem || r.error.message.contains("cannot be decoded")),
            "check: {e:?}; reader: {:?}",
            r.error
        ),
    }
    let opts = ScanOptions::default();
    let new = scan_file(path, &opts);
    let old = scan_file_reference(path, &opts);
    let read_both =
        |o: &FileOutcome| matches!(o, FileOutcome::Image(_) | FileOutcome::Landmarks(_));
    if read_both(&new.0) && read_both(&old.0) {
        assert_eq!(format!("{new:?}"), format!("{old:?}"));
    }
    if pick != 0 {
        let (k, n) = (usize::from(pick % 3), 3);
        let sharded = scan_file(
            path,
            &ScanOptions {
                shard: Some((k, n)),
                ..ScanOptions::default()
            },
        );
        match (&sharded.0, &new.0) {
            (FileOutcome::Foreign(_), FileOutcome::Image(i)) => {
                assert!(!i.patient_id.is_empty() && shard_of(&i.patient_id, n) != k)
            }
            (FileOutcome::Foreign(_), FileOutcome::Landmarks(d)) => {
                assert!(!d.patient_id.is_empty() && shard_of(&d.patient_id, n) != k)
            }
            (FileOutcome::Foreign(_), _) => {}
            _ => assert_eq!(format!("{:?}", sharded.0), format!("{:?}", new.0)),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let path = common::dir("stream").join("input.dcm");
    std::fs::write(&path, body).unwrap();
    // As in the scan: a thread with SCAN_STACK_BYTES of stack (dicom-rs recurses).
    let p = path.clone();
    std::thread::Builder::new()
        .stack_size(SCAN_STACK_BYTES)
        .spawn(move || check(&p, pick))
        .unwrap()
        .join()
        .unwrap();
    std::fs::remove_file(&path).unwrap();
});
