//! `plumbline_ingest::clinical::read_clinical` on arbitrary bytes. Checks that nothing
//! panics, and the table's promises: valid rows sorted by unique, non-empty patient_id,
//! each as wide as the header, with a surgery date that prints and parses back.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use plumbline_ingest::clinical::{iso_date, parse_iso_date, read_clinical};

fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let shm = PathBuf::from("/dev/shm");
        let base = if shm.is_dir() {
            shm
        } else {
            std::env::temp_dir()
        };
        let d = base.join(format!("plumbline-fuzz-clinical-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d.join("clinical.csv")
    })
}

fuzz_target!(|data: &[u8]| {
    std::fs::write(path(), data).unwrap();
    let Ok((table, issues)) = read_clinical(path()) else {
        return;
    };
    for w in table.rows.windows(2) {
        assert!(w[0].patient_id < w[1].patient_id);
    }
    for r in &table.rows {
        assert!(!r.patient_id.is_empty());
        assert_eq!(r.fields.len(), table.headers.len());
        assert_eq!(
            parse_iso_date(&iso_date(r.surgery_day)),
            Some(r.surgery_day)
        );
    }
    for i in &issues {
        assert!(!i.message.is_empty());
    }
});
