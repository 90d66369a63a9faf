//! Architecture rules, read from `cargo metadata` and the source tree. Each rule is a function
//! over plain data, and each has a fixture proving it fails on a violation.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

const CONTEXTS: [&str; 5] = [
    "identity",
    "catalog",
    "ordering",
    "shipping",
    "notifications",
];

/// Rule 1: a context depends on kernel, platform, bus and `*-contracts` crates (plus
/// libraries), never on another context or the root package; a contracts crate depends on
/// kernel and serde only.
fn dependency_violations(metadata: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let workspace: Vec<String> = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let name = package["name"].as_str().unwrap_or_default();
        let all: Vec<&Value> = package["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["kind"].is_null())
            .collect();
        let deps: Vec<&str> = all
            .iter()
            .filter(|d| d["optional"] != true)
            .filter_map(|d| d["name"].as_str())
            .collect();
        let optional: Vec<&str> = all
            .iter()
            .filter(|d| d["optional"] == true)
            .filter_map(|d| d["name"].as_str())
            .collect();
        if CONTEXTS.contains(&name) {
            for dep in &deps {
                let internal = workspace.iter().any(|w| w == dep);
                let allowed =
                    ["kernel", "platform", "bus"].contains(dep) || dep.ends_with("-contracts");
                if internal && !allowed {
                    out.push(format!("context {name} depends on {dep}"));
                }
            }
        }
        if name.ends_with("-contracts") {
            for dep in &deps {
                if !["kernel", "serde", "serde_json", "uuid"].contains(dep) {
                    out.push(format!("contracts crate {name} depends on {dep}"));
                }
            }
            // Only the schema feature (for the event catalogue) may add a dependency.
            for dep in &optional {
                if *dep != "utoipa" {
                    out.push(format!(
                        "contracts crate {name} optionally depends on {dep}"
                    ));
                }
            }
        }
    }
    out
}

/// Crates the published language must not pull in, however indirectly: a web framework, a
/// database driver, an HTTP client, a broker client, or the workspace's runtime crates.
const NOT_IN_CONTRACTS: [&str; 9] = [
    "actix-web",
    "actix-http",
    "sqlx",
    "sqlx-core",
    "reqwest",
    "lapin",
    "tokio",
    "platform",
    "bus",
];

/// Rule 3: over the whole dependency closure of a contracts crate (the `cargo tree` lines
/// `name vX.Y.Z ...`), none of `NOT_IN_CONTRACTS`.
fn closure_violations(krate: &str, tree: &str) -> Vec<String> {
    let mut out: Vec<String> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| NOT_IN_CONTRACTS.contains(name))
        .map(|name| format!("{krate} depends on {name}"))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Rule 2: domain code is pure: no persistence, HTTP or schema frameworks.
fn domain_violations(file: &str, source: &str) -> Vec<String> {
    const FORBIDDEN: [&str; 5] = ["sqlx", "actix", "utoipa", "async_trait", "reqwest"];
    let mut out = Vec::new();
    for (n, line) in source.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        for word in FORBIDDEN {
            if code.contains(word) {
                out.push(format!("{file}:{}: domain code mentions {word}", n + 1));
            }
        }
    }
    out
}

/// Rule 4: status transitions are the domain's. Outside `domain/`, no code sets an
/// aggregate's status or builds a change record (`Change`, `Move`) by hand: it calls the
/// domain's intention methods (`Order::reserve_stock`, `Product::archived`, ...), which
/// refuse the moves their state machine forbids. SQL text (`status = 'x'`, `status = $1`)
/// is not code.
fn transition_violations(file: &str, source: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (n, line) in source.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        let sets_status = code
            .match_indices(".status = ")
            .any(|(at, m)| !matches!(code[at + m.len()..].chars().next(), Some('\'' | '$')));
        // Whole names only: `ProductChange {` is a command, not a change record.
        let builds_change = ["Change {", "Move {", "status: Some("].iter().any(|p| {
            code.match_indices(p).any(|(at, _)| {
                !code[..at]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
            })
        });
        if sets_status || builds_change {
            out.push(format!(
                "{file}:{}: a status transition outside the domain: {}",
                n + 1,
                line.trim()
            ));
        }
    }
    out
}

/// Rule 5: no two source files import each other (a module and its own parent aside, as a
/// `mod.rs` re-exports what its children define). `files` are module paths (`["domain",
/// "order"]` for `src/domain/order.rs`) with their source; the paths followed are the
/// `crate::` and `super::` ones outside a file's tests, resolved to the longest module that
/// exists.
fn cycle_violations(files: &[(Vec<String>, String)]) -> Vec<String> {
    use std::collections::BTreeSet;
    let known: BTreeSet<&Vec<String>> = files.iter().map(|(m, _)| m).collect();
    let related = |a: &[String], b: &[String]| a.starts_with(b) || b.starts_with(a);
    let mut edges = BTreeSet::new();
    for (module, source) in files {
        // A file's tests (at its end) may reach anything.
        let shipped = source.split("#[cfg(test)]").next().unwrap_or_default();
        for line in shipped.lines() {
            let code = line.split("//").next().unwrap_or_default();
            for (at, _) in code
                .match_indices("crate::")
                .chain(code.match_indices("super::"))
            {
                if at > 0 && code[..at].ends_with("super::") {
                    continue; // the middle of a `super::super::` chain
                }
                let mut rest = &code[at..];
                let mut path: Vec<String> = Vec::new();
                if let Some(after) = rest.strip_prefix("crate::") {
                    rest = after;
                } else {
                    path = module.clone();
                    while let Some(after) = rest.strip_prefix("super::") {
                        path.pop();
                        rest = after;
                    }
                }
                for segment in rest.split("::") {
                    let name: String = segment
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if name.is_empty() {
                        break;
                    }
                    path.push(name);
                    if name_ends(segment) {
                        break;
                    }
                }
                let target = (0..=path.len())
                    .rev()
                    .map(|n| path[..n].to_vec())
                    .find(|p| known.contains(p));
                if let Some(target) = target {
                    if !related(&target, module) {
                        edges.insert((module.clone(), target));
                    }
                }
            }
        }
    }
    edges
        .iter()
        .filter(|(a, b)| a < b && edges.contains(&(b.clone(), a.clone())))
        .map(|(a, b)| format!("{} <-> {}", a.join("::"), b.join("::")))
        .collect()
}

/// Whether a path segment is the last one (`Foo` in `a::Foo;`, `{x, y}` ends it too).
fn name_ends(segment: &str) -> bool {
    segment.chars().any(|c| !(c.is_alphanumeric() || c == '_'))
}

/// Every `.rs` file under `src` as a module path with its source.
fn modules(src: &Path) -> Vec<(Vec<String>, String)> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files
        .into_iter()
        .map(|file| {
            let rel = file.strip_prefix(src).unwrap().with_extension("");
            let mut path: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                path.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                path.pop();
            }
            (path, std::fs::read_to_string(&file).unwrap())
        })
        .collect()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn contexts_depend_only_on_kernel_bus_and_contracts() {
    let output = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).unwrap();
    let names: Vec<&str> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for ctx in CONTEXTS {
        assert!(names.contains(&ctx), "context {ctx} is in the workspace");
        assert!(
            names.contains(&format!("{ctx}-contracts").as_str()),
            "{ctx}-contracts is in the workspace"
        );
    }
    let violations = dependency_violations(&metadata);
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn the_dependency_rule_catches_a_context_depending_on_another() {
    let fixture = json!({"packages": [
        {"name": "catalog", "dependencies": [{"name": "kernel", "kind": null}, {"name": "ordering", "kind": null}]},
        {"name": "ordering", "dependencies": [{"name": "emporium", "kind": null}, {"name": "catalog-contracts", "kind": null}]},
        {"name": "catalog-contracts", "dependencies": [{"name": "sqlx", "kind": null}, {"name": "utoipa", "kind": null, "optional": true}, {"name": "actix-web", "kind": null, "optional": true}]},
        {"name": "emporium", "dependencies": []},
        {"name": "kernel", "dependencies": []}
    ]});
    let violations = dependency_violations(&fixture);
    assert_eq!(
        violations,
        vec![
            "context catalog depends on ordering".to_owned(),
            "context ordering depends on emporium".to_owned(),
            "contracts crate catalog-contracts depends on sqlx".to_owned(),
            "contracts crate catalog-contracts optionally depends on actix-web".to_owned(),
        ]
    );
}

#[test]
fn contracts_crates_pull_in_no_framework_driver_or_client() {
    for ctx in CONTEXTS {
        let krate = format!("{ctx}-contracts");
        let output = std::process::Command::new(env!("CARGO"))
            .args([
                "tree",
                "--offline",
                "-p",
                &krate,
                "-e",
                "normal",
                "--all-features",
            ])
            .args(["--prefix", "none", "--format", "{p}"])
            .current_dir(root())
            .output()
            .expect("cargo tree runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let tree = String::from_utf8_lossy(&output.stdout);
        assert!(
            tree.contains("kernel v"),
            "{krate} speaks the kernel's types"
        );
        let violations = closure_violations(&krate, &tree);
        assert!(violations.is_empty(), "{violations:#?}");
    }
}

#[test]
fn the_closure_rule_catches_an_indirect_framework() {
    let tree = "catalog-contracts v0.1.0 (/w)\nkernel v0.1.0 (/w)\nactix-web v4.18.1\nserde v1.0.0\nsqlx v0.8.6\nactix-web v4.18.1\n";
    assert_eq!(
        closure_violations("catalog-contracts", tree),
        vec![
            "catalog-contracts depends on actix-web".to_owned(),
            "catalog-contracts depends on sqlx".to_owned(),
        ]
    );
}

#[test]
fn domain_code_is_free_of_io_frameworks() {
    let mut violations = Vec::new();
    for ctx in CONTEXTS {
        let mut files = Vec::new();
        rust_files(
            &root().join(format!("contexts/{ctx}/src/domain")),
            &mut files,
        );
        for file in files {
            let source = std::fs::read_to_string(&file).unwrap();
            violations.extend(domain_violations(&file.display().to_string(), &source));
        }
    }
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn the_domain_rule_catches_framework_imports() {
    let source = "use sqlx::Row;\n// actix in a comment is fine\nfn f() -> utoipa::openapi::OpenApi { todo!() }\n";
    let violations = domain_violations("fixture.rs", source);
    assert_eq!(
        violations,
        vec![
            "fixture.rs:1: domain code mentions sqlx".to_owned(),
            "fixture.rs:3: domain code mentions utoipa".to_owned(),
        ]
    );
}

#[test]
fn status_transitions_happen_only_in_the_domain() {
    let mut violations = Vec::new();
    for ctx in CONTEXTS {
        for layer in ["application", "infrastructure", "http"] {
            let mut files = Vec::new();
            rust_files(
                &root().join(format!("contexts/{ctx}/src/{layer}")),
                &mut files,
            );
            for file in files {
                let source = std::fs::read_to_string(&file).unwrap();
                violations.extend(transition_violations(&file.display().to_string(), &source));
            }
        }
    }
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn the_transition_rule_catches_a_status_set_outside_the_domain() {
    let source = "next.status = ProductStatus::Archived;\n\
                  let c = Change { status: Some(OrderStatus::Paid), ..Change::default() };\n\
                  sqlx::query(\"update t set x = 1 where o.status = 'cancelled' and s.status = $1\");\n\
                  // order.status = Paid in a comment is fine\n\
                  let allowed = order.reserve_stock(deadline);\n\
                  let command = ProductChange { name: None };\n";
    let found = transition_violations("x.rs", source);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found[0].starts_with("x.rs:1:") && found[1].starts_with("x.rs:2:"));
}

#[test]
fn no_two_files_import_each_other() {
    let mut crates: Vec<PathBuf> = CONTEXTS
        .iter()
        .map(|ctx| root().join(format!("contexts/{ctx}/src")))
        .collect();
    crates.extend(["bus", "kernel", "platform"].map(|c| root().join(format!("crates/{c}/src"))));
    crates.push(root().join("src"));
    let mut violations = Vec::new();
    for src in crates {
        for cycle in cycle_violations(&modules(&src)) {
            violations.push(format!("{}: {cycle}", src.display()));
        }
    }
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn the_cycle_rule_catches_two_files_importing_each_other() {
    let m = |path: &[&str], source: &str| {
        (
            path.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            source.to_owned(),
        )
    };
    let files = vec![
        m(
            &["application"],
            "pub(crate) use crate::application::ports::Port;\n",
        ),
        m(
            &["application", "ports"],
            "use super::rates::Unpriced;\nuse super::Error;\n",
        ),
        m(
            &["application", "rates"],
            "use super::ports::{Port, Book};\n",
        ),
        m(&["domain"], "pub(crate) use order::Order;\n"),
        m(&["domain", "order"], "use crate::domain::Quantity;\n"),
        m(
            &["domain", "cart"],
            "use super::super::application::ports::Port;\n",
        ),
        m(
            &["domain", "price"],
            "fn f() {}\n#[cfg(test)]\nmod tests { use crate::domain::stock::S; }\n",
        ),
        m(&["domain", "stock"], "use crate::domain::price::P;\n"),
    ];
    assert_eq!(
        cycle_violations(&files),
        ["application::ports <-> application::rates"]
    );
}

#[test]
fn each_context_keeps_its_own_migrations() {
    for ctx in CONTEXTS {
        let dir = root().join(format!("migrations/{ctx}"));
        let count = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
        assert!(count >= 1, "{} has no migrations", dir.display());
    }
}

/// The image's dependency layer builds the workspace from its manifests alone: every member's
/// `Cargo.toml` must be copied in, or that layer fails and every build compiles everything.
#[test]
fn the_dockerfile_copies_every_workspace_member() {
    let workspace = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let manifest: toml_like::Members = toml_like::members(&workspace);
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    for member in manifest.0.iter().filter(|m| *m != ".") {
        assert!(
            dockerfile.contains(&format!("COPY {member}/Cargo.toml {member}/")),
            "the Dockerfile does not copy {member}/Cargo.toml"
        );
    }
}

/// The `members = [...]` list of the workspace manifest (one quoted path per line).
mod toml_like {
    pub struct Members(pub Vec<String>);

    pub fn members(manifest: &str) -> Members {
        let start = manifest.find("members = [").unwrap_or(0);
        let list = &manifest[start..];
        let end = list.find(']').unwrap_or(list.len());
        Members(
            list[..end]
                .lines()
                .filter_map(|l| l.trim().strip_prefix('"'))
                .filter_map(|l| l.split('"').next())
                .map(str::to_owned)
                .collect(),
        )
    }
}

/// The codes the source states as literals where it makes a problem: the first literal of an
/// `ApiError::` constructor (after the status, for `new`), and the value of a `code` field in
/// a hand-written problem body.
fn problem_codes_in_source() -> std::collections::BTreeSet<String> {
    let mut files = Vec::new();
    for dir in ["src", "crates/platform/src", "contexts"] {
        rust_files(&root().join(dir), &mut files);
    }
    let mut codes = std::collections::BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for (i, _) in text.match_indices("ApiError::") {
            let call = &text[i..text.len().min(i + 160)];
            let takes_no_code = [
                "ApiError::validation",
                "ApiError::internal",
                "ApiError::field",
            ];
            if takes_no_code.iter().any(|c| call.starts_with(c)) {
                continue;
            }
            codes.extend(first_code_literal(call));
        }
        for (i, _) in text.match_indices("\"code\": \"") {
            codes.extend(first_code_literal(&text[i + 7..]));
        }
    }
    codes
}

fn first_code_literal(text: &str) -> Option<String> {
    let start = text.find('"')? + 1;
    let end = start + text[start..].find('"')?;
    let literal = &text[start..end];
    let is_code = !literal.is_empty()
        && literal
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'.');
    is_code.then(|| literal.to_owned())
}

#[test]
fn every_problem_code_the_source_makes_has_a_page() {
    let found = problem_codes_in_source();
    assert!(found.len() > 40, "the scan found too little: {found:?}");
    let missing: Vec<&String> = found
        .iter()
        .filter(|c| emporium::problems::describe(c).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "codes without a row in docs/problems.md: {missing:?}"
    );
    // The scan can fail: a code that is not in the table is found.
    let fixture = first_code_literal("ApiError::conflict(\n \"ordering.never_documented\", \"x\")");
    assert_eq!(fixture.as_deref(), Some("ordering.never_documented"));
    assert!(emporium::problems::describe("ordering.never_documented").is_none());
}
