//! `plumbline_ingest::clinical::read_clinical` on arbitrary bytes. Checks that nothing
//! panics, and the table's promises: valid rows sorted by unique, non-empty patient_id,
//! each as wide as the header, with a surgery date (when it has one) that prints and
//! parses back.

#![no_main]

#[path = "common.rs"]
mod common;

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use plumbline_ingest::clinical::{iso_date, parse_iso_date, read_clinical};

fn path() -> PathBuf {
    common::dir("clinical").join("clinical.csv")
}

fuzz_target!(|data: &[u8]| {
    let path = path();
    std::fs::write(&path, data).unwrap();
    let Ok((table, issues)) = read_clinical(&path) else {
        return;
    };
    for w in table.rows.windows(2) {
        assert!(w[0].patient_id < w[1].patient_id);
    }
    for r in &table.rows {
        assert!(!r.patient_id.is_empty());
        assert_eq!(r.fields.len(), table.headers.len());
        if let Some(day) = r.surgery_day {
            assert_eq!(parse_iso_date(&iso_date(day)), Some(day));
        }
    }
    for i in &issues {
        assert!(!i.message.is_empty());
    }
});
