//! The report of a run on the committed cohort, rendered by headless Chromium: the
//! screenshot is the size asked for and not blank. Ignored outside CI where Chromium is
//! missing; failed under `CI=true` (see `lib.rs`).

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use plumbline::run::{RunOptions, run};
use plumbline_e2e::{CHROMIUM, on_path, repo_root, require};

#[test]
#[cfg_attr(
    missing_tool = "chromium",
    ignore = "needs chromium: apt-get install chromium"
)]
fn report_renders_in_chromium() {
    require(&CHROMIUM);
    let cohort = repo_root().join("fixtures/cohort-small");
    let out = std::env::temp_dir().join(format!("plumbline-chromium-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    run(&RunOptions {
        overlays: true,
        ..RunOptions::new(
            cohort.join("dicom"),
            cohort.join("clinical.csv"),
            out.clone(),
        )
    })
    .unwrap();
    let page = out.join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("href=\"overlays/P0001/preop_Reader%5EAlpha_lateral.png\""));
    render_in_chromium(&page);
    let _ = std::fs::remove_dir_all(&out);
}

/// Renders the report with headless Chromium and checks that the screenshot is not blank.
// Long (over 80 lines): starting Chromium, waiting for the screenshot and judging it are one sequence.
fn render_in_chromium(page: &Path) {
    let chromium = on_path("chromium").expect("chromium on PATH");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "plumbline-report-test-{}-{nanos}",
        std::process::id()
    ));
    let profile = dir.join("profile");
    std::fs::create_dir_all(&profile).unwrap();
    let shot = dir.join("shot.png");
    let mut child = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--window-size=1280,2000")
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(
        status.success() && shot.exists(),
        "chromium failed ({status}):\n{stderr}"
    );
    let img = image::open(&shot).expect("decode screenshot").to_rgba8();
    assert_eq!(img.dimensions(), (1280, 2000));
    let background = *img.get_pixel(0, 0);
    let total = img.pixels().len();
    let differing = img.pixels().filter(|p| **p != background).count();
    let colours: HashSet<[u8; 4]> = img.pixels().map(|p| p.0).collect();
    eprintln!(
        "report screenshot {}: {} distinct colours, {:.1}% of pixels differ from the background",
        shot.display(),
        colours.len(),
        100.0 * differing as f64 / total as f64
    );
    assert!(
        colours.len() > 50,
        "screenshot has {} colours",
        colours.len()
    );
    assert!(
        differing * 50 > total,
        "screenshot is nearly blank: {differing} of {total} pixels differ from the background"
    );
    if std::env::var_os("PLUMBLINE_KEEP_REPORT").is_some() {
        eprintln!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
