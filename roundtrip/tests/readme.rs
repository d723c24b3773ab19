//! The dependencies the READMEs tell a new project to add are the ones the workspace
//! builds with: same versions, and features the workspace enables.

use std::collections::BTreeMap;

fn read(relative: &str) -> String {
    let path = format!("{}/{relative}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `name = { version = "x", features = [..] }` or `name = "x"`: the version and features.
fn dependency(line: &str) -> Option<(String, (String, Vec<String>))> {
    let (name, spec) = line.split_once('=')?;
    let name = name.trim().to_owned();
    let spec = spec.split('#').next()?.trim();
    let quoted = |text: &str| -> Vec<String> {
        text.split('"')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    if spec.starts_with('"') {
        return Some((name, (quoted(spec).first()?.clone(), Vec::new())));
    }
    let version = spec.split("version").nth(1).map(quoted)?.first()?.clone();
    let features = spec
        .split("features")
        .nth(1)
        .map(|rest| quoted(rest.split(']').next().unwrap_or_default()))
        .unwrap_or_default();
    Some((name, (version, features)))
}

/// The dependencies of the first ```toml block after `heading`.
fn readme_dependencies(readme: &str, heading: &str) -> BTreeMap<String, (String, Vec<String>)> {
    let section = readme
        .split(heading)
        .nth(1)
        .unwrap_or_else(|| panic!("the README has `{heading}`"));
    let block = section
        .split("```toml")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a toml block");
    block
        .lines()
        .filter(|l| !l.trim_start().starts_with("roundtrip"))
        .filter_map(dependency)
        .collect()
}

fn workspace_dependencies() -> BTreeMap<String, (String, Vec<String>)> {
    let cargo = read("../Cargo.toml");
    let section = cargo
        .split("[workspace.dependencies]")
        .nth(1)
        .expect("workspace dependencies");
    section.lines().filter_map(dependency).collect()
}

#[test]
fn the_readmes_name_the_versions_and_features_the_workspace_builds_with() {
    let workspace = workspace_dependencies();
    for (readme, heading) in [
        ("../README.md", "## Add roundtrip to your project"),
        ("README.md", "# Quick start"),
    ] {
        let listed = readme_dependencies(&read(readme), heading);
        assert_eq!(
            listed.keys().collect::<Vec<_>>(),
            ["schemars", "serde", "serde_json", "tokio"],
            "{readme}"
        );
        for (name, (version, features)) in &listed {
            let (ours, our_features) = &workspace[name];
            assert_eq!(version, ours, "{readme}: {name}'s version");
            for feature in features {
                assert!(
                    our_features.contains(feature),
                    "{readme}: {name}'s feature `{feature}` is not one the workspace enables"
                );
            }
        }
    }
}
