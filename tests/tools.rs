// The outside tools some tests use, shared by `build.rs` (which marks the tests of a
// missing tool `#[ignore]`d outside CI) and `lib.rs` (which fails a test whose tool is
// missing when it runs). Plain std: this file is `include!`d by both.

/// An outside program or Python module that a test checks Plumbline against.
#[derive(Clone, Copy, Debug)]
pub struct Tool {
    /// The name the tests' `missing_tool` cfg uses.
    pub name: &'static str,
    /// How to get it on Debian (what `.ci/run` installs).
    pub install: &'static str,
    /// A program looked up on PATH, or Python modules `python3` must import.
    pub probe: Probe,
}

/// How a tool is found.
#[derive(Clone, Copy, Debug)]
pub enum Probe {
    /// An executable of this name on PATH.
    Program(&'static str),
    /// `python3 -c "import <modules>"` succeeds.
    Python(&'static str),
}

/// dicom3tools' IOD validator.
pub const DCIODVFY: Tool = Tool {
    name: "dciodvfy",
    install: "apt-get install dicom3tools",
    probe: Probe::Program("dciodvfy"),
};
/// DCMTK's SR dumper.
pub const DSRDUMP: Tool = Tool {
    name: "dsrdump",
    install: "apt-get install dcmtk",
    probe: Probe::Program("dsrdump"),
};
/// DCMTK's RLE decoder.
pub const DCMDRLE: Tool = Tool {
    name: "dcmdrle",
    install: "apt-get install dcmtk",
    probe: Probe::Program("dcmdrle"),
};
/// Headless Chromium, for rendering the report.
pub const CHROMIUM: Tool = Tool {
    name: "chromium",
    install: "apt-get install chromium",
    probe: Probe::Program("chromium"),
};
/// pydicom and numpy, for the independent recomputation of truth.csv.
pub const PYDICOM: Tool = Tool {
    name: "pydicom",
    install: "pip install -r fixtures/tools/requirements.txt",
    probe: Probe::Python("pydicom, numpy"),
};

/// SimpleITK (with pydicom and numpy), which writes Slicer markups positions the way ITK
/// places the fixture images in patient space.
pub const SIMPLEITK: Tool = Tool {
    name: "simpleitk",
    install: "pip install -r fixtures/interop/slicer/requirements.txt",
    probe: Probe::Python("SimpleITK, pydicom, numpy"),
};

/// pandas, SciPy and statsmodels, for the independent check of the study-design rows of
/// cohort_summary.csv (`fixtures/stats/check_summary.py`).
pub const SCIPY: Tool = Tool {
    name: "scipy",
    install: "pip install -r fixtures/stats/requirements.txt",
    probe: Probe::Python("scipy, pandas, statsmodels, numpy"),
};

/// highdicom (with pydicom), which reads the results SRs back as TID 1500
/// (`fixtures/tools/dump_results_sr.py`).
pub const HIGHDICOM: Tool = Tool {
    name: "highdicom",
    install: "pip install -r fixtures/tools/requirements.txt",
    probe: Probe::Python("highdicom, pydicom"),
};

/// Every tool, in the order build.rs reports them.
pub const TOOLS: [Tool; 8] = [
    DCIODVFY, DSRDUMP, DCMDRLE, CHROMIUM, PYDICOM, SIMPLEITK, SCIPY, HIGHDICOM,
];

/// Where a program is on PATH.
pub fn on_path(program: &str) -> Option<std::path::PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Whether the tool can be used now.
pub fn found(tool: &Tool) -> bool {
    match tool.probe {
        Probe::Program(p) => on_path(p).is_some(),
        Probe::Python(modules) => std::process::Command::new("python3")
            .args(["-c", &format!("import {modules}")])
            .output()
            .is_ok_and(|o| o.status.success()),
    }
}

/// Whether this is a CI run (`CI=true`, as `.ci/run` is run), where no check may be skipped.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}
