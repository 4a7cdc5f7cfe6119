//! The `plumbline` binary: exit codes and messages a user sees.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn plumbline(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_plumbline"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("plumbline-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn run_succeeds_and_prints_a_summary_line() {
    let out = temp("ok");
    let (code, _, err) = plumbline(&[
        "run",
        "--input",
        "fixtures/cohort-small/dicom",
        "--clinical",
        "fixtures/cohort-small/clinical.csv",
        "--out",
        out.to_str().unwrap(),
        "--threads",
        "2",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("122 files, 8 patients, 44 rows; QC: 0 errors, 17 warnings"),
        "{err}"
    );
    for f in [
        "measurements.csv",
        "patients.csv",
        "cohort_summary.csv",
        "qc.csv",
        "run.json",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    // No temporary file is left behind.
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    // Parquet only when asked for.
    assert!(names.iter().all(|n| !n.ends_with(".parquet")), "{names:?}");
    std::fs::remove_dir_all(out).unwrap();
}

#[test]
fn parquet_beside_the_csvs_the_pipeline_writes_in_run_and_merge() {
    // A pipeline without patients.csv: no patients.parquet either.
    let dir = temp("parquet");
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(root().join("pipelines/default.toml")).unwrap();
    assert!(text.contains("\npatients = true\n"));
    let pipeline = dir.join("no-patients.toml");
    std::fs::write(
        &pipeline,
        text.replace("\npatients = true\n", "\npatients = false\n"),
    )
    .unwrap();
    let (shard, merged) = (dir.join("shard"), dir.join("merged"));
    let (code, _, err) = plumbline(&[
        "run",
        "--input",
        "fixtures/cohort-small/dicom",
        "--clinical",
        "fixtures/cohort-small/clinical.csv",
        "--out",
        shard.to_str().unwrap(),
        "--pipeline",
        pipeline.to_str().unwrap(),
        "--shard",
        "0/1",
        "--parquet",
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    let parquet = std::fs::read(shard.join("measurements.parquet")).unwrap();
    assert_eq!(&parquet[..4], b"PAR1");
    assert_eq!(&parquet[parquet.len() - 4..], b"PAR1");
    assert!(!shard.join("patients.csv").exists());
    assert!(!shard.join("patients.parquet").exists());
    assert!(!shard.join(".measurements.parquet.tmp").exists());
    // merge --parquet into a folder that does not exist yet: the same bytes.
    let (code, _, err) = plumbline(&[
        "merge",
        shard.to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
        "--parquet",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read(merged.join("measurements.parquet")).unwrap(),
        parquet
    );
    assert!(!merged.join("patients.parquet").exists());
    std::fs::remove_dir_all(dir).unwrap();
}

// Long (over 80 lines): one table of wrong command lines, each next to the message and exit code it must give.
#[test]
fn cannot_run_gives_a_message_that_names_the_fix() {
    let out = temp("bad");
    let o = out.to_str().unwrap();
    let (code, _, err) = plumbline(&[
        "run",
        "--input",
        "no/such/folder",
        "--clinical",
        "fixtures/cohort-small/clinical.csv",
        "--out",
        o,
    ]);
    assert_eq!(code, 2, "a wrong --input is a wrong command");
    assert!(
        err.contains("no/such/folder") && err.contains("--input"),
        "{err}"
    );
    let (code, _, err) = plumbline(&[
        "run",
        "--input",
        "fixtures/cohort-small/dicom",
        "--clinical",
        "fixtures/cohort-small/clinical.csv",
        "--out",
        "fixtures/cohort-small/dicom/out",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("never writes into its input"), "{err}");
    assert!(!root().join("fixtures/cohort-small/dicom/out").exists());
    // The results SR names the patient: it cannot be combined with pseudonyms.
    let key = temp("sr.key");
    std::fs::write(&key, "0123456789abcdef0123").unwrap();
    let (code, _, err) = plumbline(&[
        "run",
        "--input",
        "fixtures/cohort-small/dicom",
        "--clinical",
        "fixtures/cohort-small/clinical.csv",
        "--out",
        o,
        "--write-sr",
        "--pseudonymize",
        key.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--write-sr") && err.contains("--pseudonymize"),
        "{err}"
    );
    assert!(!out.exists());
    let bad = temp("pipeline.toml");
    std::fs::write(
        &bad,
        "name = \"x\"\n[classification]\nsagital_sva_mm = 40\n",
    )
    .unwrap();
    let (code, _, err) = plumbline(&[
        "run",
        "--input",
        "fixtures/cohort-small/dicom",
        "--clinical",
        "fixtures/cohort-small/clinical.csv",
        "--out",
        o,
        "--pipeline",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("sagital_sva_mm"), "{err}");
    assert!(
        !out.exists(),
        "a bad pipeline is refused before --out is created"
    );
    let clinical = temp("clinical.csv");
    std::fs::write(&clinical, "patient,surgery_date\nP1,2020-01-01\n").unwrap();
    let (code, _, err) = plumbline(&[
        "run",
        "--input",
        "fixtures/cohort-small/dicom",
        "--clinical",
        clinical.to_str().unwrap(),
        "--out",
        o,
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("patient_id"), "{err}");
    assert!(
        !out.exists(),
        "a bad clinical table is refused before --out is created"
    );
    // A landmark map without its columns: a wrong command, refused before --out exists.
    let map = temp("map.csv");
    std::fs::write(&map, "name,uid\na.mrk.json,1.2.3\n").unwrap();
    let (code, _, err) = plumbline(&[
        "run",
        "--input",
        "fixtures/cohort-small/dicom",
        "--clinical",
        "fixtures/cohort-small/clinical.csv",
        "--out",
        o,
        "--landmark-map",
        map.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("file,sop_instance_uid[,observer]") && err.contains("--landmark-map"),
        "{err}"
    );
    assert!(!out.exists());
    // --stow without a URL needs a DICOMweb input.
    let (code, _, err) = plumbline(&[
        "run",
        "--input",
        "fixtures/cohort-small/dicom",
        "--clinical",
        "fixtures/cohort-small/clinical.csv",
        "--out",
        o,
        "--stow",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--input is a folder") && err.contains("--stow https://"),
        "{err}"
    );
    assert!(!out.exists());
    // A DICOMweb input: a URL with credentials in it, and a missing --auth-file, are
    // wrong commands refused before --out exists (no request is made).
    let (code, _, err) = plumbline(&[
        "run",
        "--input",
        "http://reader:secret@127.0.0.1:9/dicom-web",
        "--clinical",
        "fixtures/cohort-small/clinical.csv",
        "--out",
        o,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("give credentials with --auth-file"), "{err}");
    assert!(!out.exists());
    let (code, _, err) = plumbline(&[
        "run",
        "--input",
        "http://127.0.0.1:9/dicom-web",
        "--auth-file",
        "no/such/auth.txt",
        "--clinical",
        "fixtures/cohort-small/clinical.csv",
        "--out",
        o,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no/such/auth.txt"), "{err}");
    assert!(!out.exists());
    let (code, _, err) = plumbline(&[
        "run",
        "--input",
        "fixtures/cohort-small/dicom",
        "--clinical",
        "fixtures/cohort-small/clinical.csv",
        "--out",
        o,
        "--stow",
        "ftp://pacs.example/dicom-web",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("it must start with http:// or https://"),
        "{err}"
    );
    assert!(!out.exists());
    // Could not finish (I/O): the output folder cannot be created (its parent is a file).
    let file = temp("a-file");
    std::fs::write(&file, "x").unwrap();
    let (code, _, err) = plumbline(&[
        "run",
        "--input",
        "fixtures/cohort-small/dicom",
        "--clinical",
        "fixtures/cohort-small/clinical.csv",
        "--out",
        file.join("out").to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("choose a writable --out"), "{err}");
    let _ = std::fs::remove_file(file);
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn a_slurm_array_task_says_it_covers_one_shard() {
    let out = temp("slurm");
    let output = Command::new(env!("CARGO_BIN_EXE_plumbline"))
        .args([
            "run",
            "--input",
            "fixtures/cohort-small/dicom",
            "--clinical",
            "fixtures/cohort-small/clinical.csv",
            "--out",
            out.to_str().unwrap(),
        ])
        .env("SLURM_ARRAY_TASK_ID", "1")
        .env("SLURM_ARRAY_TASK_COUNT", "2")
        .env_remove("SLURM_ARRAY_TASK_MIN")
        .current_dir(root())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert!(
        err.contains("plumbline: shard 1/2 only (from SLURM_ARRAY_TASK_ID)")
            && err.contains("plumbline merge"),
        "{err}"
    );
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(
        run["shard"],
        serde_json::json!({"k": 1, "n": 2, "source": "SLURM_ARRAY_TASK_ID"})
    );
    assert!(run["patients"].as_u64().unwrap() < 8);
    // Without the variables: no shard, and the closing line says nothing of one.
    let (code, _, err) = plumbline(&[
        "run",
        "--input",
        "fixtures/cohort-small/dicom",
        "--clinical",
        "fixtures/cohort-small/clinical.csv",
        "--out",
        temp("noslurm").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("shard"), "{err}");
    let _ = std::fs::remove_dir_all(out);
    let _ = std::fs::remove_dir_all(temp("noslurm"));
}

#[test]
fn inspect_shows_spacing_source_and_landmarks() {
    let (code, text, _) = plumbline(&["inspect", "fixtures/interop/cr/RG1_UNCR.dcm"]);
    assert_eq!(code, 0);
    assert!(text.contains("1955 rows x 1841 columns"), "{text}");
    assert!(text.contains("no_spacing"), "{text}");
    let (code, text, _) = plumbline(&["inspect", "fixtures/interop/sr/sr_two_observers.dcm"]);
    assert_eq!(code, 0);
    assert!(
        text.contains("S1_sup_post") && text.contains("Reader^Beta"),
        "{text}"
    );
    assert!(text.contains("QC: no problem"), "{text}");
    // A Slicer markups file in mm: its points are shown in LPS (pixels come in a run).
    let (code, text, _) = plumbline(&[
        "inspect",
        "fixtures/interop/slicer/2.25.291855293784620871268770559899544412045_ras.mrk.json",
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("LPS (")
            && text.contains("image 2.25.291855293784620871268770559899544412045")
            && text.contains("QC: no problem"),
        "{text}"
    );
}

#[test]
fn inspect_fails_on_a_file_it_cannot_read() {
    let (code, text, _) = plumbline(&["inspect", "no/such/file.dcm"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("no/such/file.dcm"), "{text}");
    let (code, text, _) = plumbline(&["inspect", "README.md"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("not DICOM"), "{text}");
}
