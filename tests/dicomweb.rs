//! `plumbline run --input URL` against a real Orthanc 1.10.1 with its DICOMweb plugin, in
//! a private network namespace (`plumbline_e2e::orthanc_server`): the committed cohort
//! read from the server gives the tables and overlays of the same files read from a
//! folder, byte for byte; a rerun fetches nothing; refused credentials are a clear error;
//! a server killed mid-run leaves QC errors, and a rerun after its restart fetches only
//! what is missing; results SRs stored by STOW-RS come back byte-identical.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dicom_dictionary_std::tags;
use dicom_object::open_file;
use plumbline::run::{RunError, RunOptions, RunSummary, run};
use plumbline_e2e::orthanc_server::{Orthanc, enter_private_netns};
use plumbline_e2e::repo_root;
use plumbline_ingest::dicomweb::{Auth, Client, DicomWebError, RetryPolicy};
use serde_json::Value;

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("plumbline-dweb-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn cohort() -> PathBuf {
    repo_root().join("fixtures/cohort-small")
}

/// `plumbline run` of `input` (a folder or a URL) into `out` on `threads` threads.
fn run_with(
    input: &str,
    out: &Path,
    threads: usize,
    change: impl FnOnce(&mut RunOptions),
) -> Result<RunSummary, RunError> {
    let mut opts = RunOptions::new(input.into(), cohort().join("clinical.csv"), out.into());
    change(&mut opts);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(|| run(&opts))
}

/// The auth file of `orthanc` (its test user), in `dir`.
fn auth_file(orthanc: &Orthanc, dir: &Path) -> PathBuf {
    let p = dir.join("auth.txt");
    std::fs::write(&p, orthanc.auth_file_text()).unwrap();
    p
}

/// Every file below `dir` (relative path -> bytes).
fn files_below(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

const TABLES: [&str; 3] = ["measurements.csv", "patients.csv", "cohort_summary.csv"];

fn assert_same_tables(folder: &Path, web: &Path, what: &str) {
    for t in TABLES {
        let a = std::fs::read_to_string(folder.join(t)).unwrap();
        let b = std::fs::read_to_string(web.join(t)).unwrap();
        assert!(
            a == b,
            "{what}: {t} differs from the folder run's\n--- folder\n{a}\n--- DICOMweb\n{b}"
        );
    }
}

fn run_json(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap()
}

fn dicomweb_counts(out: &Path) -> (u64, u64, u64) {
    let j = run_json(out);
    let d = &j["dicomweb"];
    (
        d["instances"].as_u64().unwrap(),
        d["fetched"].as_u64().unwrap(),
        d["reused"].as_u64().unwrap(),
    )
}

/// The SOP Instance UIDs of the cohort's SRs.
fn sr_uids(files: &[PathBuf]) -> BTreeSet<String> {
    files
        .iter()
        .filter_map(|p| {
            let o = open_file(p).unwrap();
            let modality = o.element(tags::MODALITY).ok()?.to_str().ok()?.to_string();
            (modality.trim() == "SR").then(|| {
                o.element(tags::SOP_INSTANCE_UID)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .trim_end_matches(['\0', ' '])
                    .to_string()
            })
        })
        .collect()
}

/// How many of `srs` are in the DICOMweb cache of `out`.
fn cached_srs(out: &Path, srs: &BTreeSet<String>) -> usize {
    let cache = out.join(".plumbline/dicomweb");
    srs.iter()
        .filter(|u| cache.join(format!("{u}.dcm")).is_file())
        .count()
}

fn qc_codes(out: &Path) -> Vec<(String, String)> {
    let (header, rows) = plumbline_e2e::read_csv(&out.join("qc.csv"));
    let code = header.iter().position(|h| h == "code").unwrap();
    let message = header.iter().position(|h| h == "message").unwrap();
    rows.into_iter()
        .map(|r| (r[code].clone(), r[message].clone()))
        .collect()
}

// Long (over 80 lines): one server and one upload (about 8 s) serve every step in turn.
#[test]
fn dicomweb_run_equals_the_folder_run_resumes_after_a_kill_and_stores_results() {
    if !enter_private_netns(
        "dicomweb_run_equals_the_folder_run_resumes_after_a_kill_and_stores_results",
    ) {
        return;
    }
    let dir = temp_dir("equal");
    let t0 = Instant::now();
    let step = |what: &str| eprintln!("{:>7.2} s  {what}", t0.elapsed().as_secs_f64());
    let mut orthanc = Orthanc::start();
    let uploaded = orthanc.upload_dir(&cohort().join("dicom"));
    let srs = sr_uids(&uploaded);
    assert!(srs.len() > 10, "{} SRs", srs.len());
    let auth = auth_file(&orthanc, &dir);
    let url = orthanc.dicomweb_url();
    step("uploaded");

    // The same files from a folder and from the server: the same tables and overlays.
    let folder_out = dir.join("folder");
    run_with(
        cohort().join("dicom").to_str().unwrap(),
        &folder_out,
        2,
        |o| {
            o.overlays = true;
            o.write_sr = true;
        },
    )
    .unwrap();
    step("folder run");
    let web_out = dir.join("web");
    let summary = run_with(&url, &web_out, 2, |o| {
        o.overlays = true;
        o.auth_file = Some(auth.clone());
    })
    .unwrap();
    step("DICOMweb run");
    assert!(summary.rows > 0);
    assert_same_tables(&folder_out, &web_out, "first DICOMweb run");
    let overlays = files_below(&folder_out.join("overlays"));
    assert!(overlays.len() > 10, "{} overlays", overlays.len());
    assert!(
        files_below(&web_out.join("overlays")) == overlays,
        "the overlays drawn from images fetched by WADO-RS differ from the folder run's"
    );
    // No temporary image is left behind; no DICOMweb problem in QC.
    assert!(files_below(&web_out.join(".plumbline/dicomweb/pixels")).is_empty());
    let codes = qc_codes(&web_out);
    assert!(
        !codes
            .iter()
            .any(|(c, _)| c.starts_with("dicomweb") || c == "broken_file"),
        "{codes:?}"
    );
    // Every instance of the clinical table's patients was fetched once; the password is
    // in no output.
    let (instances, fetched, reused) = dicomweb_counts(&web_out);
    assert_eq!((fetched, reused), (instances, 0));
    assert_eq!(cached_srs(&web_out, &srs), srs.len());
    let j = run_json(&web_out);
    assert_eq!(j["input"]["folder"], Value::from(url.as_str()));
    assert_eq!(j["input"]["landmark_srs"], Value::from(srs.len()));
    for f in files_below(&web_out).values() {
        let text = String::from_utf8_lossy(f);
        assert!(
            !text.contains(orthanc.password()),
            "the password is in an output"
        );
    }

    // A rerun fetches nothing and gives the same tables.
    run_with(&url, &web_out, 2, |o| o.auth_file = Some(auth.clone())).unwrap();
    step("rerun");
    assert_eq!(dicomweb_counts(&web_out), (instances, 0, instances));
    assert_same_tables(&folder_out, &web_out, "rerun");

    // Refused credentials: a clear error, exit code 2, the password nowhere; no auth at
    // all the same.
    let wrong = dir.join("wrong.txt");
    std::fs::write(&wrong, "plumbline:not-the-password").unwrap();
    for (name, auth_file) in [("wrong", Some(wrong)), ("none", None)] {
        let e = run_with(&url, &dir.join(name), 2, |o| o.auth_file = auth_file).unwrap_err();
        assert!(
            matches!(
                &e,
                RunError::DicomWeb {
                    source: DicomWebError::Refused { status: 401, .. },
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(e.exit_code(), 2);
        let message = e.to_string();
        assert!(message.starts_with(&format!("DICOMweb server {url}: the server refused")));
        assert!(message.ends_with("check --auth-file"), "{message}");
        assert!(!message.contains("not-the-password"));
        assert!(!dir.join(name).join("measurements.csv").exists());
    }

    // No server at the URL: exit code 1 after the first patient's retries, naming it.
    let nobody = "http://127.0.0.1:9/dicom-web";
    let e = run_with(nobody, &dir.join("nobody"), 2, |o| {
        o.auth_file = Some(auth.clone())
    })
    .unwrap_err();
    assert!(
        matches!(
            &e,
            RunError::DicomWeb {
                source: DicomWebError::GaveUp { attempts: 4, .. },
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.exit_code(), 1);
    assert!(e.to_string().starts_with(&format!(
        "DICOMweb server {nobody}: {nobody}/studies?PatientID="
    )));
    step("refused");
    // The server killed after a few SRs came, on one thread: the run finishes with the
    // rest as QC errors naming the instance URL.
    let killed_out = dir.join("killed");
    let started = Instant::now();
    let outcome = std::thread::scope(|s| {
        let job = s.spawn(|| run_with(&url, &killed_out, 1, |o| o.auth_file = Some(auth.clone())));
        while cached_srs(&killed_out, &srs) < 3 {
            assert!(
                !job.is_finished(),
                "the run ended before 3 SRs were fetched"
            );
            assert!(started.elapsed() < Duration::from_secs(120));
            std::thread::sleep(Duration::from_millis(1));
        }
        orthanc.kill();
        job.join().unwrap()
    });
    outcome.unwrap();
    step("killed run");
    let have = cached_srs(&killed_out, &srs);
    assert!(have < srs.len(), "every SR came before the kill");
    let missing = srs.len() - have;
    let failures: Vec<(String, String)> = qc_codes(&killed_out)
        .into_iter()
        .filter(|(c, m)| c == "broken_file" && m.contains("instances/"))
        .collect();
    assert_eq!(failures.len(), missing, "{failures:?}");
    assert!(failures[0].1.contains(&url), "{}", failures[0].1);
    let folder_rows = std::fs::read_to_string(folder_out.join("measurements.csv")).unwrap();
    let killed_rows = std::fs::read_to_string(killed_out.join("measurements.csv")).unwrap();
    assert_ne!(killed_rows, folder_rows);

    // Restarted: the rerun fetches exactly the missing SRs, and the tables are whole.
    orthanc.restart();
    run_with(&url, &killed_out, 1, |o| o.auth_file = Some(auth.clone())).unwrap();
    step("resumed run");
    let (instances_after, fetched, reused) = dicomweb_counts(&killed_out);
    assert_eq!(instances_after, instances);
    assert_eq!(fetched as usize, missing);
    assert_eq!(reused, instances - missing as u64);
    assert_same_tables(&folder_out, &killed_out, "rerun after the restart");

    stow_results(&orthanc, &dir, &auth, &files_below(&folder_out.join("sr")));
    step("stored");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Results SRs written from the server's headers are those of the folder run
/// (`folder_srs`); stored by `--stow` they are found by QIDO-RS and come back
/// byte-identical; a second store makes no duplicate; a server that is not there is a QC
/// error per SR.
fn stow_results(
    orthanc: &Orthanc,
    dir: &Path,
    auth: &Path,
    folder_srs: &BTreeMap<String, Vec<u8>>,
) {
    let url = orthanc.dicomweb_url();
    let out = dir.join("stow");
    run_with(&url, &out, 2, |o| {
        o.auth_file = Some(auth.to_path_buf());
        o.stow = Some(None);
    })
    .unwrap();
    let written = files_below(&out.join("sr"));
    assert!(written.len() > 10, "{} SRs", written.len());
    assert!(
        &written == folder_srs,
        "the results SRs of the DICOMweb run differ from the folder run's"
    );
    let j = run_json(&out);
    assert_eq!(j["outputs"]["sr"], Value::from(written.len()));
    assert_eq!(j["outputs"]["sr_stored"], Value::from(written.len()));
    assert!(!qc_codes(&out).iter().any(|(c, _)| c == "stow_failed"));

    // Each is found by QIDO-RS in its study and retrieved byte-identical.
    let client = Client::new(
        &url,
        Some(Auth::parse(&orthanc.auth_file_text()).unwrap()),
        RetryPolicy::default(),
    )
    .unwrap();
    for (rel, bytes) in &written {
        let o = open_file(out.join("sr").join(rel)).unwrap();
        let text = |t| {
            o.element(t)
                .unwrap()
                .to_str()
                .unwrap()
                .trim_end_matches(['\0', ' '])
                .to_string()
        };
        let (study, series, sop) = (
            text(tags::STUDY_INSTANCE_UID),
            text(tags::SERIES_INSTANCE_UID),
            text(tags::SOP_INSTANCE_UID),
        );
        let found = client.instances(&study, &series).unwrap();
        assert!(
            found
                .kept
                .iter()
                .any(|i| i.sop_instance_uid == sop
                    && i.sop_class_uid == "1.2.840.10008.5.1.4.1.1.88.33"),
            "{rel}: {sop} not found by QIDO-RS in series {series}"
        );
        let back = client.retrieve_instance(&study, &series, &sop).unwrap();
        assert!(&back == bytes, "{rel}: the stored SR differs from the file");
    }

    // Stored again (the same UIDs): no duplicates, no failure.
    let instances_before = orthanc.get("/instances").unwrap().1;
    run_with(&url, &out, 2, |o| {
        o.auth_file = Some(auth.to_path_buf());
        o.stow = Some(None);
    })
    .unwrap();
    assert_eq!(orthanc.get("/instances").unwrap().1, instances_before);
    assert_eq!(
        run_json(&out)["outputs"]["sr_stored"],
        Value::from(written.len())
    );

    // A server that is not there: one QC error per SR naming it, the batch finishes.
    let dead = "http://127.0.0.1:9/dicom-web".to_string();
    let out2 = dir.join("dead");
    run_with(cohort().join("dicom").to_str().unwrap(), &out2, 2, |o| {
        o.stow = Some(Some(dead.clone()));
    })
    .unwrap();
    let failed: Vec<(String, String)> = qc_codes(&out2)
        .into_iter()
        .filter(|(c, _)| c == "stow_failed")
        .collect();
    assert_eq!(failed.len(), written.len());
    assert!(
        failed[0]
            .1
            .contains("was not stored on http://127.0.0.1:9/dicom-web")
    );
    assert_eq!(run_json(&out2)["outputs"]["sr_stored"], Value::from(0));
}
