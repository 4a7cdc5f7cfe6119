//! Sharded runs merged give exactly the tables of one run; Slurm's array variables pick
//! the shard; the input tree is never written (checked on a read-only copy).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plumbline::merge::merge;
use plumbline::run::{RunOptions, Shard, parse_shard, run};
use plumbline_e2e::repo_root;

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("plumbline-shards-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn run_into(input: &Path, out: &Path, shard: Option<(usize, usize)>) {
    let cohort = repo_root().join("fixtures/cohort-small");
    run(&RunOptions {
        overlays: true,
        shard: shard.map(|(k, n)| Shard {
            k,
            n,
            source: "--shard",
        }),
        // Also checks that the Parquet forms merge to the bytes of one run.
        parquet: true,
        ..RunOptions::new(
            input.to_path_buf(),
            cohort.join("clinical.csv"),
            out.to_path_buf(),
        )
    })
    .unwrap();
}

fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    plumbline_ingest::scan::list_files(root)
        .unwrap()
        .0
        .into_iter()
        .map(|f| {
            (
                f.strip_prefix(root).unwrap().to_path_buf(),
                std::fs::read(&f).unwrap(),
            )
        })
        .collect()
}

#[test]
fn four_shards_merged_equal_one_run() {
    let input = repo_root().join("fixtures/cohort-small/dicom");
    let single = temp_dir("single");
    run_into(&input, &single, None);
    let mut dirs = Vec::new();
    for k in 0..4 {
        let d = temp_dir(&format!("shard{k}"));
        run_into(&input, &d, Some((k, 4)));
        dirs.push(d);
    }
    // Every shard holds part of the patients, none holds all.
    let rows = |d: &Path| {
        std::fs::read_to_string(d.join("measurements.csv"))
            .unwrap()
            .lines()
            .count()
            - 1
    };
    assert!(dirs.iter().all(|d| rows(d) < rows(&single)));
    assert_eq!(dirs.iter().map(|d| rows(d)).sum::<usize>(), rows(&single));
    let merged = temp_dir("merged");
    merge(&dirs, &merged, true).unwrap();
    for f in [
        "measurements.csv",
        "patients.csv",
        "cohort_summary.csv",
        "qc.csv",
        "measurements.parquet",
        "patients.parquet",
    ] {
        let (a, b) = (
            std::fs::read(single.join(f)).unwrap(),
            std::fs::read(merged.join(f)).unwrap(),
        );
        assert!(
            a == b,
            "{f} differs between the single run and the merged shards"
        );
    }
    // The overlays are all there too, byte for byte.
    assert_eq!(
        tree(&single.join("overlays")),
        tree(&merged.join("overlays"))
    );
    // A missing shard is an error that says which.
    let e = merge(&dirs[..3], &temp_dir("partial"), false).unwrap_err();
    assert!(e.to_string().contains("shard 3 of 4 is missing"), "{e}");
    for d in dirs.into_iter().chain([single, merged]) {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn slurm_array_variables_select_the_shard() {
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    let flag = |k, n| {
        Ok(Some(Shard {
            k,
            n,
            source: "--shard",
        }))
    };
    let slurm = |k, n| {
        Ok(Some(Shard {
            k,
            n,
            source: "SLURM_ARRAY_TASK_ID",
        }))
    };
    assert_eq!(parse_shard(Some("2/4"), env(&[])), flag(2, 4));
    assert_eq!(parse_shard(None, env(&[])), Ok(None));
    // --array=1-4: ids 1..4, min 1, count 4 -> shards 0..3.
    let e = env(&[
        ("SLURM_ARRAY_TASK_ID", "4"),
        ("SLURM_ARRAY_TASK_MIN", "1"),
        ("SLURM_ARRAY_TASK_COUNT", "4"),
    ]);
    assert_eq!(parse_shard(None, e), slurm(3, 4));
    let e = env(&[
        ("SLURM_ARRAY_TASK_ID", "0"),
        ("SLURM_ARRAY_TASK_COUNT", "2"),
    ]);
    assert_eq!(parse_shard(None, e), slurm(0, 2));
    // The flag wins over the environment.
    let e = env(&[
        ("SLURM_ARRAY_TASK_ID", "0"),
        ("SLURM_ARRAY_TASK_COUNT", "2"),
    ]);
    assert_eq!(parse_shard(Some("1/3"), e), flag(1, 3));
    for bad in ["4/4", "1", "a/2", "0/0"] {
        assert!(parse_shard(Some(bad), env(&[])).is_err(), "{bad}");
    }
}

#[test]
fn the_input_tree_is_never_written() {
    // A read-only copy (files and folders without write permission); as root the
    // permissions would not stop a write, so the check is that nothing changed: the same
    // files, bytes and modification times afterwards.
    let src = repo_root().join("fixtures/cohort-small/dicom");
    let input = temp_dir("readonly");
    for (rel, bytes) in tree(&src) {
        let p = input.join(&rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
    }
    let stat = |root: &Path| -> BTreeMap<PathBuf, (Vec<u8>, std::time::SystemTime)> {
        plumbline_ingest::scan::list_files(root)
            .unwrap()
            .0
            .into_iter()
            .map(|f| {
                let m = std::fs::metadata(&f).unwrap().modified().unwrap();
                (f.clone(), (std::fs::read(&f).unwrap(), m))
            })
            .collect()
    };
    let set_readonly = |ro: bool| {
        let mut dirs = vec![input.clone()];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    dirs.push(p.clone());
                }
                let mut perm = std::fs::metadata(&p).unwrap().permissions();
                perm.set_readonly(ro);
                std::fs::set_permissions(&p, perm).unwrap();
            }
        }
    };
    set_readonly(true);
    let before = stat(&input);
    let out = temp_dir("readonly-out");
    run_into(&input, &out, None);
    let after = stat(&input);
    assert_eq!(before, after, "the input changed");
    assert!(out.join("measurements.csv").is_file());
    set_readonly(false);
    std::fs::remove_dir_all(input).unwrap();
    std::fs::remove_dir_all(out).unwrap();
}
