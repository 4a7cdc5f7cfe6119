//! Plumbline's DICOMweb client (`plumbline_ingest::dicomweb`) against a real Orthanc
//! 1.10.1 with its DICOMweb plugin, in a private network namespace
//! (`plumbline_e2e::orthanc_server`). Every expected value is read from the fixture
//! files with dicom-object, not from the client.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveDate;
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, Tag, open_file};
use plumbline_e2e::orthanc_server::{Orthanc, enter_private_netns};
use plumbline_e2e::repo_root;
use plumbline_ingest::dicomweb::{Auth, Client, DicomWebError, RetryPolicy, StowFailure};
use serde_json::Value;

/// What the fixture files say about themselves.
#[derive(Clone, Debug)]
struct Fixture {
    path: PathBuf,
    patient: String,
    study: String,
    date: NaiveDate,
    series: String,
    modality: String,
    sop: String,
    rows: Option<u16>,
    columns: Option<u16>,
}

fn text(obj: &DefaultDicomObject, tag: Tag) -> String {
    obj.element(tag)
        .unwrap_or_else(|e| panic!("{tag}: {e}"))
        .to_str()
        .unwrap()
        .trim_end_matches([' ', '\0'])
        .to_string()
}

fn fixtures(files: &[PathBuf]) -> Vec<Fixture> {
    files
        .iter()
        .map(|path| {
            let obj = open_file(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let us = |tag| obj.element(tag).ok().map(|e| e.to_int::<u16>().unwrap());
            Fixture {
                path: path.clone(),
                patient: text(&obj, tags::PATIENT_ID),
                study: text(&obj, tags::STUDY_INSTANCE_UID),
                date: NaiveDate::parse_from_str(&text(&obj, tags::STUDY_DATE), "%Y%m%d").unwrap(),
                series: text(&obj, tags::SERIES_INSTANCE_UID),
                modality: text(&obj, tags::MODALITY),
                sop: text(&obj, tags::SOP_INSTANCE_UID),
                rows: us(tags::ROWS),
                columns: us(tags::COLUMNS),
            }
        })
        .collect()
}

/// The first value of a DICOM JSON attribute.
fn first<'a>(item: &'a Value, tag: &str) -> &'a Value {
    &item[tag]["Value"][0]
}

#[test]
fn orthanc_smoke() {
    if !enter_private_netns("orthanc_smoke") {
        return;
    }
    let mut orthanc = Orthanc::start();
    eprintln!(
        "Orthanc answered /system {:?} after its start",
        orthanc.started_in()
    );
    let uploaded = orthanc.upload_dir(&repo_root().join("fixtures/cohort-small"));
    assert_eq!(uploaded.len(), 122, "the cohort's DICOM files");
    let all = fixtures(&uploaded);

    let auth = Auth::parse(&orthanc.auth_file_text()).unwrap();
    let client = Client::new(&orthanc.dicomweb_url(), Some(auth), RetryPolicy::default()).unwrap();

    // QIDO-RS: the studies of one patient, over a range covering all of them.
    let patient = "P0003";
    let mine: Vec<&Fixture> = all.iter().filter(|f| f.patient == patient).collect();
    let expected: BTreeSet<&str> = mine.iter().map(|f| f.study.as_str()).collect();
    assert_eq!(expected.len(), 4);
    let first_date = mine.iter().map(|f| f.date).min().unwrap();
    let last_date = mine.iter().map(|f| f.date).max().unwrap();
    let found = client
        .search_studies(patient, &[(first_date, last_date)])
        .unwrap();
    assert!(found.rejected.is_empty(), "{:?}", found.rejected);
    let uids: Vec<&str> = found.kept.iter().map(|s| s.study_uid.as_str()).collect();
    assert_eq!(uids, expected.iter().copied().collect::<Vec<_>>());
    for s in &found.kept {
        assert_eq!(s.patient_id, patient);
        let date = mine.iter().find(|f| f.study == s.study_uid).unwrap().date;
        assert_eq!(s.study_date, Some(date));
    }
    // Two ranges, one per end: the union of two queries is the first and last study only.
    let ends = client
        .search_studies(patient, &[(first_date, first_date), (last_date, last_date)])
        .unwrap();
    let end_uids: BTreeSet<&str> = ends.kept.iter().map(|s| s.study_uid.as_str()).collect();
    let expected_ends: BTreeSet<&str> = mine
        .iter()
        .filter(|f| f.date == first_date || f.date == last_date)
        .map(|f| f.study.as_str())
        .collect();
    assert_eq!(end_uids, expected_ends);
    assert_eq!(end_uids.len(), 2);
    // A patient Orthanc does not hold: nothing, without an error.
    let none = client.search_studies("P9999", &[]).unwrap();
    assert!(none.kept.is_empty() && none.rejected.is_empty());

    // QIDO-RS series of the first study, with their modalities.
    let study = found.kept[0].study_uid.clone();
    let in_study: Vec<&&Fixture> = mine.iter().filter(|f| f.study == study).collect();
    // A fixture series may hold a DX and a CR image (the generator makes a CR where the
    // image carries no PatientOrientation): Orthanc answers the series-level Modality of
    // one of its instances.
    let mut expected_series: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for f in &in_study {
        expected_series
            .entry(f.series.as_str())
            .or_default()
            .insert(f.modality.as_str());
    }
    let series = client.series(&study).unwrap();
    assert!(series.rejected.is_empty(), "{:?}", series.rejected);
    let got_series: Vec<&str> = series.kept.iter().map(|s| s.series_uid.as_str()).collect();
    assert_eq!(
        got_series,
        expected_series.keys().copied().collect::<Vec<_>>()
    );
    for s in &series.kept {
        let modality = s.modality.as_deref().unwrap();
        assert!(
            expected_series[s.series_uid.as_str()].contains(modality),
            "{}: {modality}",
            s.series_uid
        );
    }

    // WADO-RS metadata of an image series: Rows, Columns and SOP Instance UID as in the file.
    let image = in_study
        .iter()
        .find(|f| f.modality == "DX" || f.modality == "CR")
        .expect("an image in the study");
    let metadata = client.metadata(&study, &image.series).unwrap();
    let in_series = in_study.iter().filter(|f| f.series == image.series).count();
    assert_eq!(metadata.len(), in_series);
    let item = metadata
        .iter()
        .find(|m| first(m, "00080018") == image.sop.as_str())
        .unwrap_or_else(|| panic!("no metadata for {}", image.sop));
    assert_eq!(first(item, "00280010"), &Value::from(image.rows.unwrap()));
    assert_eq!(
        first(item, "00280011"),
        &Value::from(image.columns.unwrap())
    );
    assert_eq!(first(item, "0020000E"), image.series.as_str());

    // WADO-RS retrieve of an SR series: the very bytes uploaded.
    let sr = in_study
        .iter()
        .find(|f| f.modality == "SR")
        .expect("an SR in the study");
    let mut expected_srs: Vec<Vec<u8>> = in_study
        .iter()
        .filter(|f| f.series == sr.series)
        .map(|f| std::fs::read(&f.path).unwrap())
        .collect();
    expected_srs.sort();
    let before = client.bytes_received();
    let mut got = client.retrieve_instances(&study, &sr.series).unwrap();
    got.sort();
    assert_eq!(got.len(), expected_srs.len());
    assert!(
        got == expected_srs,
        "the retrieved SRs differ from the files"
    );
    let sr_bytes: u64 = expected_srs.iter().map(|b| b.len() as u64).sum();
    assert!(client.bytes_received() - before > sr_bytes);
    // One image instance, byte-identical too.
    let one = client
        .retrieve_instance(&study, &image.series, &image.sop)
        .unwrap();
    assert!(one == std::fs::read(&image.path).unwrap());

    // An unknown series is a 404 naming it.
    let e = client.metadata(&study, "1.2.3.4.5.6.7").unwrap_err();
    assert!(
        matches!(e, DicomWebError::NotFound { .. }),
        "unknown series: {e:?}"
    );

    // A wrong password: refused at once, the password nowhere in the message.
    let wrong = Client::new(
        &orthanc.dicomweb_url(),
        Some(Auth::parse("plumbline:not-the-password").unwrap()),
        RetryPolicy::default(),
    )
    .unwrap();
    let e = wrong.search_studies(patient, &[]).unwrap_err();
    let message = e.to_string();
    assert!(
        message.starts_with("the server refused the credentials (HTTP 401) for http://127.0.0.1:"),
        "{message}"
    );
    assert!(message.ends_with(": check --auth-file"));
    assert!(!message.contains("not-the-password") && !message.contains(orthanc.password()));
    let anonymous = Client::new(&orthanc.dicomweb_url(), None, RetryPolicy::default()).unwrap();
    assert!(matches!(
        anonymous.series(&study).unwrap_err(),
        DicomWebError::Refused { status: 401, .. }
    ));

    // STOW-RS: the SR under a new SOP Instance UID is stored, and can be retrieved.
    let mut obj = open_file(&sr.path).unwrap();
    let new_uid = format!("{}.999", sr.sop);
    obj.put(dicom_object::mem::InMemElement::new(
        tags::SOP_INSTANCE_UID,
        dicom_core::VR::UI,
        dicom_core::PrimitiveValue::from(new_uid.as_str()),
    ));
    obj.update_meta(|m| m.media_storage_sop_instance_uid = new_uid.clone());
    let mut modified = Vec::new();
    obj.write_all(&mut modified).unwrap();
    let outcome = client
        .stow(&study, std::slice::from_ref(&modified))
        .unwrap();
    assert_eq!(outcome.status, 200);
    assert_eq!(outcome.stored, std::slice::from_ref(&new_uid));
    assert!(outcome.failed.is_empty(), "{:?}", outcome.failed);
    let back = client
        .retrieve_instance(&study, &sr.series, &new_uid)
        .unwrap();
    assert!(back == modified);
    // Storing an instance Orthanc already holds: Orthanc 1.10.1 ("OverwriteInstances"
    // false by default) keeps the stored copy and answers HTTP 200 with the instance in
    // ReferencedSOPSequence and no FailedSOPSequence: not a failure.
    let again = std::fs::read(&sr.path).unwrap();
    let outcome = client.stow(&study, &[again]).unwrap();
    assert_eq!(outcome.status, 200);
    assert_eq!(outcome.stored, std::slice::from_ref(&sr.sop));
    assert!(outcome.failed.is_empty());
    // An instance of another study posted to this study's URL: Orthanc 1.10.1 answers
    // HTTP 409 with the instance in FailedSOPSequence, FailureReason 272 (0x0110,
    // processing failure), and stores nothing.
    let other = all
        .iter()
        .find(|f| f.study != study && f.modality == "SR")
        .unwrap();
    let outcome = client
        .stow(&study, &[std::fs::read(&other.path).unwrap()])
        .unwrap();
    assert_eq!(outcome.status, 409);
    assert_eq!(
        outcome.failed,
        [StowFailure {
            sop_instance_uid: other.sop.clone(),
            reason: Some(272),
        }]
    );
    assert!(outcome.stored.is_empty());

    // The server killed mid-run: bounded retries, then an error naming the URL; after a
    // restart on the same storage the same answers.
    orthanc.kill();
    let quick = Client::new(
        &orthanc.dicomweb_url(),
        Some(Auth::parse(&orthanc.auth_file_text()).unwrap()),
        RetryPolicy {
            attempts: 2,
            first_backoff: Duration::from_millis(20),
        },
    )
    .unwrap();
    let e = quick.series(&study).unwrap_err();
    assert!(
        matches!(&e, DicomWebError::GaveUp { attempts: 2, url, .. } if url.starts_with(&orthanc.dicomweb_url())),
        "{e:?}"
    );
    orthanc.restart();
    eprintln!(
        "Orthanc answered /system {:?} after its restart",
        orthanc.started_in()
    );
    let again = quick
        .search_studies(patient, &[(first_date, last_date)])
        .unwrap();
    assert_eq!(again.kept, found.kept);
}
