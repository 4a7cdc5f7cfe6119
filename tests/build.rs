//! Marks the tests of an outside tool that is missing: outside CI each such test carries
//! `#[cfg_attr(missing_tool = "NAME", ignore = "...")]`, so `cargo test` lists it as
//! ignored (with the install step) instead of passing it silently. Under `CI=true` no test
//! is ignored, and a missing tool fails its tests.

include!("tools.rs");

fn main() {
    let names: Vec<String> = TOOLS.iter().map(|t| format!("\"{}\"", t.name)).collect();
    println!(
        "cargo::rustc-check-cfg=cfg(missing_tool, values({}))",
        names.join(", ")
    );
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-changed=tools.rs");
    let ci = under_ci();
    for t in TOOLS {
        let here = found(&t);
        // Look again when the tool appears or goes: a path that does not exist makes
        // cargo rerun this script on every build (cheap: only this test package relinks).
        match t.probe {
            Probe::Program(p) => match on_path(p) {
                Some(path) => println!("cargo::rerun-if-changed={}", path.display()),
                None => println!("cargo::rerun-if-changed=/usr/bin/{p}"),
            },
            Probe::Python(_) if !here => {
                println!("cargo::rerun-if-changed=/nonexistent/plumbline-probe-python")
            }
            Probe::Python(_) => {}
        }
        if !here && !ci {
            println!("cargo::rustc-cfg=missing_tool=\"{}\"", t.name);
            println!(
                "cargo::warning=outside tool `{}` not found ({}): its tests are ignored; under CI=true they fail",
                t.name, t.install
            );
        }
    }
}
