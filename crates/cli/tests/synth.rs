//! `plumbline synth` and the `plumbline-synth` program: one set of options, the files of
//! `plumbline_synth::generate`, and the exit codes a user sees.
#![cfg(feature = "synth")]

use std::path::{Path, PathBuf};
use std::process::Command;

use plumbline_synth::{ImageSize, Schedule, SynthOptions, generate};

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("plumbline-synth-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Every file under `root` (relative path, bytes), sorted.
fn files(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_path_buf();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn run(program: &str, pre: &[&str], out: &Path, rest: &[&str]) -> (i32, String) {
    let o = Command::new(program)
        .args(pre)
        .arg("--out")
        .arg(out)
        .args(rest)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

#[test]
fn both_programs_write_what_generate_writes() {
    let (lib, sub, bin) = (temp("lib"), temp("sub"), temp("bin"));
    generate(&SynthOptions {
        patients: 2,
        seed: 9,
        out: lib.clone(),
        image_size: ImageSize::Small,
        plant_errors: true,
        schedule: Schedule::Fusion,
    })
    .unwrap();
    let args = [
        "--patients",
        "2",
        "--seed",
        "9",
        "--plant-errors",
        "--schedule",
        "fusion",
    ];
    let (code, err) = run(env!("CARGO_BIN_EXE_plumbline"), &["synth"], &sub, &args);
    assert_eq!(code, 0, "{err}");
    assert!(err.starts_with("plumbline synth: 2 patients, "), "{err}");
    let (code, err) = run(env!("CARGO_BIN_EXE_plumbline-synth"), &[], &bin, &args);
    assert_eq!(code, 0, "{err}");
    assert!(err.starts_with("plumbline-synth: 2 patients, "), "{err}");
    let want = files(&lib);
    assert!(want.len() > 10, "{} files", want.len());
    assert!(files(&sub) == want, "plumbline synth wrote other files");
    assert!(files(&bin) == want, "plumbline-synth wrote other files");
    // Defaults: --seed 1, --image-size small, --schedule discectomy.
    let (dflt, explicit) = (temp("default"), temp("explicit"));
    let (code, err) = run(
        env!("CARGO_BIN_EXE_plumbline-synth"),
        &[],
        &dflt,
        &["--patients", "1"],
    );
    assert_eq!(code, 0, "{err}");
    let (code, err) = run(
        env!("CARGO_BIN_EXE_plumbline"),
        &["synth"],
        &explicit,
        &[
            "--patients",
            "1",
            "--seed",
            "1",
            "--image-size",
            "small",
            "--schedule",
            "discectomy",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(files(&dflt) == files(&explicit));
    // The same output folder again: refused, exit code 1, nothing overwritten.
    let (code, err) = run(env!("CARGO_BIN_EXE_plumbline-synth"), &[], &bin, &args);
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with("plumbline-synth: error: "), "{err}");
    assert!(err.contains("never overwrites"), "{err}");
    for d in [lib, sub, bin, dflt, explicit] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn an_unknown_value_is_a_usage_error_listing_the_values() {
    let out = temp("bad");
    for (program, pre) in [
        (env!("CARGO_BIN_EXE_plumbline"), &["synth"][..]),
        (env!("CARGO_BIN_EXE_plumbline-synth"), &[][..]),
    ] {
        let (code, err) = run(
            program,
            pre,
            &out,
            &["--patients", "1", "--schedule", "Fusion"],
        );
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("discectomy, fusion, survey"), "{err}");
        let (code, err) = run(
            program,
            pre,
            &out,
            &["--patients", "1", "--image-size", "large"],
        );
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("small, clinical"), "{err}");
    }
    assert!(!out.exists(), "nothing written on a usage error");
}
