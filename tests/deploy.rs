//! The deployment files: the release script's decisions (run against a stand-in kubectl that
//! records every call), and the variables the manifests set, which must be ones the binary
//! reads.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Run {
    ok: bool,
    calls: Vec<String>,
    output: String,
}

/// Runs `deploy/k8s/release.sh ARGS` with the stand-in kubectl and `env`.
fn release(args: &[&str], env: &[(&str, &str)]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(
        root().join("tests/support/fake_kubectl.sh"),
        bin.join("kubectl"),
    )
    .unwrap();
    let log = dir.path().join("calls");
    std::fs::write(&log, "").unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg(root().join("deploy/k8s/release.sh"))
        .args(args)
        .env("PATH", path)
        .env("FAKE_LOG", &log)
        .env("CANARY_PAUSE", "0")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    Run {
        ok: out.status.success(),
        calls: std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn position(run: &Run, needle: &str) -> usize {
    run.calls
        .iter()
        .position(|c| c.contains(needle))
        .unwrap_or_else(|| panic!("no call with {needle:?}: {:#?}\n{}", run.calls, run.output))
}

#[test]
fn blue_green_switches_only_after_the_idle_colour_is_migrated_and_ready() {
    let image = "registry.example.com/emporium@sha256:abc";
    let run = release(&["blue-green", image], &[("FAKE_LIVE", "blue")]);
    assert!(run.ok, "{}", run.output);
    let migrated = position(
        &run,
        "wait --for=condition=complete job/emporium-migrate-monolith-green",
    );
    let set = position(
        &run,
        &format!("set image deploy/emporium-monolith-green emporium={image}"),
    );
    let scaled = position(&run, "scale deploy/emporium-monolith-green --replicas=3");
    let rolled = position(&run, "rollout status deploy/emporium-monolith-green");
    let checked = position(&run, "exec deploy/emporium-monolith-green");
    let flipped = position(&run, "patch service emporium-live");
    assert!(
        migrated < set && set < scaled && scaled < rolled && rolled < checked && checked < flipped
    );
    assert!(
        run.calls[flipped].contains(r#""release":"green""#),
        "{}",
        run.calls[flipped]
    );
    assert!(
        run.calls
            .iter()
            .all(|c| !c.contains("emporium-monolith-blue emporium=")),
        "the live colour is not touched"
    );
}

#[test]
fn blue_green_switches_nothing_when_the_new_colour_is_not_ready() {
    let run = release(
        &["blue-green", "registry.example.com/emporium@sha256:abc"],
        &[
            ("FAKE_LIVE", "green"),
            ("FAKE_NOT_READY", "emporium-monolith-blue"),
        ],
    );
    assert!(!run.ok);
    assert!(
        run.calls.iter().all(|c| !c.contains("patch service")),
        "{:#?}",
        run.calls
    );
    assert!(run.output.contains("still selects green"), "{}", run.output);
}

#[test]
fn a_canary_with_server_errors_goes_back_to_zero_and_a_healthy_one_is_promoted() {
    let image = "registry.example.com/emporium@sha256:def";
    let failing = release(&["canary", image], &[("FAKE_ERRORS", "5 100")]);
    assert!(!failing.ok);
    let last_weight = failing
        .calls
        .iter()
        .rev()
        .find(|c| c.contains("canary-weight="))
        .unwrap();
    assert!(last_weight.ends_with("canary-weight=0"), "{last_weight}");
    assert!(failing
        .calls
        .iter()
        .all(|c| !c.contains("set image deploy/emporium-monolith emporium=")));

    let healthy = release(&["canary", image], &[("FAKE_ERRORS", "0 100")]);
    assert!(healthy.ok, "{}", healthy.output);
    let weights: Vec<&str> = healthy
        .calls
        .iter()
        .filter_map(|c| c.split("canary-weight=").nth(1))
        .collect();
    assert_eq!(weights, ["5", "25", "50", "100", "0"]);
    let promoted = position(
        &healthy,
        &format!("set image deploy/emporium-monolith emporium={image}"),
    );
    let hundred = position(&healthy, "canary-weight=100");
    assert!(hundred < promoted);
}

/// Every `EMPORIUM_*` variable the deployment files set (compose, Kubernetes, Terraform):
/// the binary reads it (a `_FILE` variant only for a variable read as a secret).
#[test]
fn every_variable_the_deployments_set_is_one_the_binary_reads() {
    let config = std::fs::read_to_string(root().join("src/config.rs")).unwrap();
    let contexts = [
        "IDENTITY",
        "CATALOG",
        "ORDERING",
        "SHIPPING",
        "NOTIFICATIONS",
    ];
    let mut files = Vec::new();
    collect(&root().join("deploy"), &mut files);
    collect_file(&root().join("Dockerfile"), &mut files);
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for var in variables(&text) {
            checked += 1;
            let (name, as_file) = match var.strip_suffix("_FILE") {
                Some(base) => (base.to_owned(), true),
                None => (var.clone(), false),
            };
            let per_context = contexts
                .iter()
                .any(|c| name == format!("EMPORIUM_{c}_DATABASE_URL"));
            let read = per_context || config.contains(&format!("\"{name}\""));
            assert!(
                read,
                "{}: {var} is not a variable the binary reads",
                file.display()
            );
            if as_file {
                let secret = per_context || config.contains(&format!("secret(\"{name}\""));
                assert!(
                    secret,
                    "{}: {name} cannot be given as a file",
                    file.display()
                );
            }
        }
    }
    assert!(checked > 40, "found only {checked} variables");
}

fn variables(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(found) = text[i..].find("EMPORIUM_") {
        let start = i + found;
        let mut end = start + "EMPORIUM_".len();
        while end < bytes.len()
            && (bytes[end].is_ascii_uppercase()
                || bytes[end].is_ascii_digit()
                || bytes[end] == b'_')
        {
            end += 1;
        }
        let name = text[start..end].trim_end_matches('_').to_owned();
        // `EMPORIUM_<CONTEXT>_…` in comments and `EMPORIUM_${upper(c)}_…` in Terraform name
        // a family (the per-context database URLs), not one variable.
        let family = ['<', '{', '$'].iter().any(|c| text[end..].starts_with(*c));
        if text[end..].starts_with('*') {
            // `EMPORIUM_*`: all of them, in prose.
        } else if family {
            let next: String = text[end..].chars().take(40).collect();
            assert!(
                next.contains("_DATABASE_URL"),
                "an unknown family of variables: EMPORIUM_{next}"
            );
        } else {
            out.push(name);
        }
        i = end;
    }
    out
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else {
            collect_file(&path, out);
        }
    }
}

fn collect_file(path: &Path, out: &mut Vec<PathBuf>) {
    out.push(path.to_path_buf());
}
