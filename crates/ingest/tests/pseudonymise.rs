//! The pseudonymisation stage is a boundary: after `Pseudonymizer::pseudonymise` no
//! reading, clinical row or QC issue of the committed cohort holds a real PatientID or
//! (with `--shift-dates`) a real date (where to read the images stays outside the cohort,
//! in `Grouped::image_files`); dates move by the patient's keyed offset and the readings
//! stay sorted by (patient, timepoint, reader).

use std::path::Path;

use plumbline_ingest::clinical::{days_of, read_clinical};
use plumbline_ingest::privacy::Pseudonymizer;
use plumbline_ingest::{Cohort, ScanOptions, default_windows, group, scan};

#[test]
fn after_the_boundary_no_record_holds_a_real_id_or_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/cohort-small");
    let (clinical, clinical_issues) = read_clinical(&root.join("clinical.csv")).unwrap();
    let scanned = scan(&root.join("dicom"), &ScanOptions::default(), &|_| {}).unwrap();
    let grouped = group(&scanned, Some(&clinical), &default_windows());
    let image_files = grouped.image_files.clone();
    let real_ids: Vec<String> = clinical.rows.iter().map(|r| r.patient_id.clone()).collect();
    assert_eq!(real_ids.len(), 8);
    let mut issues = clinical_issues;
    issues.extend(scanned.issues.iter().cloned());
    issues.extend(grouped.issues.iter().cloned());
    let before = Cohort {
        readings: grouped.readings,
        clinical,
        issues,
    };
    let key = std::env::temp_dir().join(format!("plumbline-boundary-{}.key", std::process::id()));
    std::fs::write(&key, b"a key of at least sixteen bytes").unwrap();
    let ps = Pseudonymizer::from_key_file(&key, true).unwrap();
    std::fs::remove_file(&key).unwrap();
    let after = ps.pseudonymise(before.clone());

    assert_eq!(after.readings.len(), before.readings.len());
    assert!(!after.issues.is_empty());
    let real = |s: &str| real_ids.iter().any(|id| s.contains(id.as_str()));
    let mut shifted = 0;
    for r in &before.readings {
        let pseudo = ps.id(&r.patient_id);
        assert_eq!(pseudo.len(), 16);
        let a = after
            .readings
            .iter()
            .find(|a| {
                a.patient_id == pseudo && a.timepoint == r.timepoint && a.observer == r.observer
            })
            .expect("every reading is still there, under its pseudonym");
        let offset = ps.date_offset(&r.patient_id);
        assert!((-182..=182).contains(&offset));
        assert_eq!(
            a.study_date.map(days_of),
            r.study_date.map(|d| days_of(d) + offset)
        );
        shifted += usize::from(offset != 0 && r.study_date.is_some());
        let views = |r: &plumbline_ingest::Reading| {
            [r.lateral.clone(), r.ap.clone()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
        };
        for (v, was) in views(a).iter().zip(views(r)) {
            let shown = v.path.to_string_lossy();
            assert!(!real(&shown), "{shown}");
            // The folder names hold the real study dates (`20210530_preop`): shifted too.
            let date = r
                .study_date
                .map(plumbline_ingest::clinical::dicom_da)
                .unwrap();
            assert_eq!(
                shown.contains(&date),
                offset == 0,
                "{shown} vs {}",
                was.path.display()
            );
            assert_eq!(image_files[&v.image_uid], was.path, "read where it is");
        }
    }
    assert!(shifted > 20, "{shifted} readings with a shifted date");
    let keys: Vec<_> = after
        .readings
        .iter()
        .map(|r| (r.patient_id.clone(), r.timepoint_index, r.observer.clone()))
        .collect();
    assert!(keys.windows(2).all(|w| w[0] <= w[1]), "sorted by pseudonym");
    for row in &after.clinical.rows {
        assert!(!real(&row.patient_id) && row.fields.iter().all(|f| !real(f)));
    }
    for i in &after.issues {
        let text = format!("{} {} {}", i.path.display(), i.patient_id, i.message);
        assert!(!real(&text), "{text}");
    }
}
