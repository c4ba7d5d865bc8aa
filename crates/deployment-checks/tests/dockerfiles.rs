//! The service Dockerfiles, read as text: they build a binary that exists, reproducibly, and
//! ship only that binary, run as a non-root user, with no secret baked in.

use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// (Dockerfile, the binary it must build and run).
const IMAGES: [(&str, &str); 2] = [
    ("Dockerfile.connector", "ui-connector"),
    ("Dockerfile.interceptor", "cloud-pubsub-interceptor"),
];

#[derive(Debug, Clone)]
struct Instruction {
    keyword: String,
    args: String,
}

#[derive(Debug, Default)]
struct Stage {
    image: String,
    alias: Option<String>,
    instructions: Vec<Instruction>,
}

impl Stage {
    fn all(&self, keyword: &str) -> impl Iterator<Item = &Instruction> {
        let keyword = keyword.to_owned();
        self.instructions
            .iter()
            .filter(move |i| i.keyword == keyword)
    }

    fn last(&self, keyword: &str) -> Option<&Instruction> {
        self.all(keyword).last()
    }
}

/// Instructions of a Dockerfile: comments and blank lines dropped, `\` continuations joined.
fn instructions(text: &str) -> Vec<Instruction> {
    let mut result = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if pending.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if !pending.is_empty() && trimmed.starts_with('#') {
            continue; // comment inside a continued instruction
        }
        if let Some(body) = trimmed.strip_suffix('\\') {
            pending.push_str(body);
            pending.push(' ');
            continue;
        }
        pending.push_str(trimmed);
        let (keyword, args) = pending
            .split_once(char::is_whitespace)
            .unwrap_or((&pending, ""));
        result.push(Instruction {
            keyword: keyword.to_ascii_uppercase(),
            args: args.trim().to_owned(),
        });
        pending.clear();
    }
    result
}

fn stages(text: &str) -> Vec<Stage> {
    let mut stages: Vec<Stage> = Vec::new();
    for instruction in instructions(text) {
        if instruction.keyword == "FROM" {
            let words: Vec<&str> = instruction
                .args
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            let alias = match words.as_slice() {
                [_, as_, alias] if as_.eq_ignore_ascii_case("as") => Some((*alias).to_owned()),
                _ => None,
            };
            stages.push(Stage {
                image: words.first().map(|w| (*w).to_owned()).unwrap_or_default(),
                alias,
                instructions: Vec::new(),
            });
        } else if let Some(stage) = stages.last_mut() {
            stage.instructions.push(instruction);
        } else if instruction.keyword != "ARG" {
            panic!("{} before the first FROM", instruction.keyword);
        }
    }
    stages
}

/// `name=value` / `name value` pairs set by an ENV or ARG instruction (`None`: no value).
fn assignments(instruction: &Instruction) -> Vec<(String, Option<String>)> {
    let args = instruction.args.trim();
    if instruction.keyword == "ENV" && !args.split_whitespace().next().unwrap_or("").contains('=') {
        // Legacy `ENV NAME value with spaces`.
        let (name, value) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
        return vec![(name.to_owned(), Some(value.trim().to_owned()))];
    }
    split_words(args)
        .into_iter()
        .map(|word| match word.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (word, None),
        })
        .collect()
}

/// Whitespace-separated words, honouring double and single quotes.
fn split_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    for c in text.chars() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            (_, c) => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// ENV/ARG settings whose name looks like a secret and which carry a value.
fn baked_secrets(stages: &[Stage]) -> Vec<String> {
    stages
        .iter()
        .flat_map(|s| s.instructions.iter())
        .filter(|i| i.keyword == "ENV" || i.keyword == "ARG")
        .flat_map(assignments)
        .filter(|(name, value)| {
            let upper = name.to_ascii_uppercase();
            ["SECRET", "TOKEN", "PASSWORD", "KEY"]
                .iter()
                .any(|word| upper.contains(word))
                && value.as_deref().is_some_and(|v| !v.is_empty())
        })
        .map(|(name, _)| name)
        .collect()
}

/// Whether the final stage runs as a non-root user.
fn runs_as_non_root(stage: &Stage) -> bool {
    match stage.last("USER") {
        Some(user) => {
            let name = user.args.split(':').next().unwrap_or("").trim();
            !name.is_empty() && name != "root" && name != "0"
        }
        // Without USER, the base image's user applies: distroless `:nonroot` is uid 65532.
        None => stage.image.ends_with(":nonroot") || stage.image.contains(":nonroot@"),
    }
}

/// The first element of an exec-form `["...", ...]` instruction.
fn exec_program(instruction: &Instruction) -> String {
    let args = instruction.args.trim();
    assert!(
        args.starts_with('['),
        "{} should use the exec form, so the binary is PID 1 and receives SIGTERM: {args}",
        instruction.keyword
    );
    args.trim_start_matches('[')
        .split(',')
        .next()
        .unwrap_or("")
        .trim()
        .trim_end_matches(']')
        .trim()
        .trim_matches('"')
        .to_owned()
}

/// The `name` in the `[package]` section of a Cargo.toml.
fn package_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package {
            if let Some(rest) = line.strip_prefix("name") {
                if let Some(value) = rest.trim_start().strip_prefix('=') {
                    return Some(value.trim().trim_matches('"').to_owned());
                }
            }
        }
    }
    None
}

fn workspace_members() -> Vec<String> {
    let manifest = std::fs::read_to_string(repo_root().join("Cargo.toml")).expect("Cargo.toml");
    let start = manifest.find("members").expect("members");
    let list = &manifest[start..];
    let list = &list[list.find('[').unwrap() + 1..list.find(']').unwrap()];
    list.split(',')
        .map(|m| m.trim().trim_matches('"').to_owned())
        .filter(|m| !m.is_empty())
        .collect()
}

/// The value of `--flag value` or `--flag=value` in a command line.
fn flag_value<'a>(command: &'a str, flag: &str) -> Option<&'a str> {
    let words: Vec<&str> = command.split_whitespace().collect();
    words.iter().enumerate().find_map(|(i, w)| {
        if *w == flag {
            words.get(i + 1).copied()
        } else {
            w.strip_prefix(flag).and_then(|r| r.strip_prefix('='))
        }
    })
}

fn check_dockerfile(file: &str, binary: &str) {
    let root = repo_root();
    let text = std::fs::read_to_string(root.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let stages = stages(&text);
    assert!(stages.len() >= 2, "{file}: not a multi-stage build");
    let runtime = stages.last().unwrap();

    // The final stage copies the binary out of a builder stage.
    let copy = runtime
        .all("COPY")
        .find(|c| c.args.contains("--from="))
        .unwrap_or_else(|| panic!("{file}: the final stage copies nothing from a build stage"));
    let words: Vec<&str> = copy.args.split_whitespace().collect();
    let from = words
        .iter()
        .find_map(|w| w.strip_prefix("--from="))
        .unwrap();
    let paths: Vec<&str> = words
        .iter()
        .copied()
        .filter(|w| !w.starts_with("--"))
        .collect();
    let [source, destination] = paths.as_slice() else {
        panic!(
            "{file}: expected `COPY --from=... <binary> <destination>`: {}",
            copy.args
        );
    };
    let builder = stages
        .iter()
        .find(|s| s.alias.as_deref() == Some(from))
        .unwrap_or_else(|| panic!("{file}: no stage named {from}"));
    assert!(
        !runtime.image.starts_with("rust"),
        "{file}: the runtime image should be minimal, not {}",
        runtime.image
    );

    // The builder builds exactly that binary, from the lock file, optimised.
    let build = builder
        .all("RUN")
        .find(|r| r.args.contains("cargo build"))
        .unwrap_or_else(|| panic!("{file}: no `cargo build` in stage {from}"));
    let command = &build.args;
    assert!(
        command.contains("--release"),
        "{file}: build without --release"
    );
    assert!(
        command.contains("--locked"),
        "{file}: build without --locked"
    );
    assert_eq!(flag_value(command, "--bin"), Some(binary), "{file}: --bin");
    if let Some(package) = flag_value(command, "-p").or_else(|| flag_value(command, "--package")) {
        assert_eq!(package, binary, "{file}: -p");
    }

    // The binary is a workspace member's: <binary>/Cargo.toml names the package, with a main.
    let manifest = std::fs::read_to_string(root.join(binary).join("Cargo.toml"))
        .unwrap_or_else(|e| panic!("{file}: {binary}/Cargo.toml: {e}"));
    assert_eq!(package_name(&manifest).as_deref(), Some(binary));
    assert!(
        root.join(binary).join("src/main.rs").is_file(),
        "{binary} has no src/main.rs"
    );
    assert!(
        workspace_members().iter().any(|m| m == binary),
        "{binary} is not a workspace member"
    );

    // What is copied is what cargo produced: <WORKDIR>/target/release/<binary>.
    let workdir = builder
        .last("WORKDIR")
        .map(|w| w.args.trim_end_matches('/').to_owned())
        .unwrap_or_default();
    let expected_source = format!("{workdir}/target/release/{binary}");
    let source_path = if source.starts_with('/') {
        (*source).to_owned()
    } else {
        format!("{workdir}/{source}")
    };
    assert_eq!(
        source_path, expected_source,
        "{file}: copies the wrong file"
    );

    // The entrypoint runs the copied binary.
    let installed = if destination.ends_with('/') {
        format!("{destination}{binary}")
    } else {
        (*destination).to_owned()
    };
    let program = runtime
        .last("ENTRYPOINT")
        .or_else(|| runtime.last("CMD"))
        .map(exec_program)
        .unwrap_or_else(|| panic!("{file}: no ENTRYPOINT or CMD"));
    assert_eq!(
        program, installed,
        "{file}: the entrypoint is not the copied binary"
    );

    assert!(
        runs_as_non_root(runtime),
        "{file}: the final stage runs as root"
    );
    let secrets = baked_secrets(&stages);
    assert!(
        secrets.is_empty(),
        "{file}: secret-looking settings baked in: {secrets:?}"
    );

    // PORT, when set, is what EXPOSE says (the binaries listen on PORT, default 8080).
    let port = runtime
        .all("ENV")
        .flat_map(assignments)
        .find(|(name, _)| name == "PORT")
        .and_then(|(_, v)| v);
    if let Some(port) = port {
        assert!(port.parse::<u16>().is_ok(), "{file}: PORT={port}");
        if let Some(expose) = runtime.last("EXPOSE") {
            assert!(
                expose
                    .args
                    .split_whitespace()
                    .any(|p| p.trim_end_matches("/tcp") == port),
                "{file}: EXPOSE {} but PORT={port}",
                expose.args
            );
        }
    }
}

#[test]
fn connector_dockerfile() {
    let (file, binary) = IMAGES[0];
    check_dockerfile(file, binary);
}

#[test]
fn interceptor_dockerfile() {
    let (file, binary) = IMAGES[1];
    check_dockerfile(file, binary);
}

#[test]
fn dockerignore_keeps_build_output_and_local_settings_out() {
    let text = std::fs::read_to_string(repo_root().join(".dockerignore")).expect(".dockerignore");
    let entries: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let listed = |names: &[&str]| entries.iter().any(|e| names.contains(e));
    assert!(
        listed(&["target", "target/", "/target", "**/target"]),
        "target"
    );
    assert!(listed(&[".git", ".git/", "/.git"]), ".git");
    assert!(listed(&[
        "node_modules",
        "node_modules/",
        "**/node_modules",
        "**/node_modules/"
    ]));
    assert!(
        listed(&["deploy/.env", "/deploy/.env", "**/.env"]),
        "deploy/.env"
    );
    // Nothing the build needs is excluded.
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "crates",
        "crates/",
        "*",
        "ui-connector",
    ] {
        assert!(
            !entries.contains(&needed),
            ".dockerignore excludes {needed}"
        );
    }
}

// The checks above must be able to fail: feed them bad Dockerfiles.

#[test]
fn secret_detection_flags_baked_secrets_only() {
    let bad = stages(
        "FROM scratch\nARG GITHUB_TOKEN=ghp_x\nENV JWT_SECRET_KEY=abc PORT=8080\n\
         ENV DB_PASSWORD hunter2\nENV API_KEY=\"a b\"\n",
    );
    assert_eq!(
        baked_secrets(&bad),
        ["GITHUB_TOKEN", "JWT_SECRET_KEY", "DB_PASSWORD", "API_KEY"]
    );
    let fine =
        stages("FROM scratch\nARG RUST_VERSION=1.88\nARG NPM_TOKEN\nENV PORT=8080 RUST_LOG=info\n");
    assert!(baked_secrets(&fine).is_empty());
}

#[test]
fn root_detection() {
    let last = |text: &str| stages(text).pop().unwrap();
    assert!(!runs_as_non_root(&last("FROM debian:12\n")));
    assert!(!runs_as_non_root(&last(
        "FROM gcr.io/distroless/cc-debian12:nonroot\nUSER root\n"
    )));
    assert!(!runs_as_non_root(&last("FROM debian:12\nUSER 0:0\n")));
    assert!(runs_as_non_root(&last(
        "FROM gcr.io/distroless/cc-debian12:nonroot\n"
    )));
    assert!(runs_as_non_root(&last("FROM debian:12\nUSER 10001\n")));
}

#[test]
fn parser_joins_continuations_and_reads_stages() {
    let parsed = stages(
        "# syntax=docker/dockerfile:1\nFROM rust:1 AS build\nRUN cargo build \\\n  \
         --release \\\n  # a comment\n  --bin x\nFROM scratch\nENTRYPOINT [\"/x\", \"--flag\"]\n",
    );
    assert_eq!(parsed.len(), 2);
    assert_eq!(parsed[0].alias.as_deref(), Some("build"));
    let run = parsed[0].last("RUN").unwrap();
    assert_eq!(flag_value(&run.args, "--bin"), Some("x"));
    assert!(run.args.contains("--release"));
    assert_eq!(exec_program(parsed[1].last("ENTRYPOINT").unwrap()), "/x");
}
