//! `shellcheck` must pass on every script under `deploy/`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// `deploy/*.sh`, relative to the repository root, sorted.
fn scripts() -> Vec<String> {
    let mut scripts: Vec<String> = std::fs::read_dir(repo_root().join("deploy"))
        .expect("deploy/")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".sh"))
        .map(|name| format!("deploy/{name}"))
        .collect();
    scripts.sort();
    scripts
}

fn shellcheck(args: &[String]) -> std::process::Output {
    match Command::new("shellcheck")
        .args(args)
        .current_dir(repo_root())
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "shellcheck is not installed (not on PATH). `.ci/run` installs it; \
             locally: `apt-get install -y shellcheck` (or your platform's package)."
        ),
        Err(e) => panic!("cannot run shellcheck: {e}"),
    }
}

#[test]
fn deploy_scripts_pass_shellcheck() {
    let scripts = scripts();
    // Guard against passing vacuously on an empty or renamed directory.
    for expected in ["deploy/deploy.sh", "deploy/teardown.sh"] {
        assert!(scripts.iter().any(|s| s == expected), "{expected} missing");
    }

    // As CI runs it: `shellcheck deploy/*.sh`.
    let output = shellcheck(&scripts);
    assert!(
        output.status.success(),
        "shellcheck {}:\n{}{}",
        scripts.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    // And each script on its own, following what it sources (teardown.sh sources deploy.sh).
    for script in &scripts {
        let output = shellcheck(&["--external-sources".to_owned(), script.clone()]);
        assert!(
            output.status.success(),
            "shellcheck -x {script}:\n{}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
}

#[test]
fn scripts_are_strict_bash_and_executable() {
    use std::os::unix::fs::PermissionsExt;
    for script in scripts() {
        let path = repo_root().join(&script);
        let text = std::fs::read_to_string(&path).expect("script");
        assert!(
            text.starts_with("#!/usr/bin/env bash\n"),
            "{script}: not a bash script"
        );
        assert!(
            text.lines().any(|l| l == "set -euo pipefail"),
            "{script}: missing `set -euo pipefail`"
        );
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert!(mode & 0o111 != 0, "{script} is not executable");
    }
}
