//! What a newcomer and an operator see first (issue 19): the text tables,
//! mutes and suspended healing on the service's row, the CLI's hints and
//! bounds, a restart command that backgrounds its service.

use crate::util::{Env, closed_port};

fn cfg(env: &Env) -> String {
    env.config_path().to_str().unwrap().to_string()
}

/// The row of `name` in a text table.
#[track_caller]
fn row<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no row {name}:\n{text}"))
}

#[test]
fn a_mute_and_its_reason_show_in_the_json_and_on_the_row_of_check_and_status() {
    let env = Env::new();
    env.config(&format!(
        "timeout: 1s\nservices:\n  - name: web\n    port: {}\n  - name: db\n    port: {}\n",
        closed_port(),
        closed_port()
    ));
    env.cmd(&["mute", "-c", &cfg(&env), "web", "--for", "1h", "--reason", "deploy of v2"]).code(0);
    let out = env.check(&[]);
    let web = row(&out.stdout, "web");
    assert!(web.contains("muted until 20") && web.contains(": deploy of v2"), "{}", out.stdout);
    assert!(!row(&out.stdout, "db").contains("muted"), "{}", out.stdout);
    assert_eq!(env.service("web")["mute_reason"], "deploy of v2");
    assert!(env.service("db")["mute_reason"].is_null(), "{:#}", env.service("db"));

    let out = env.cmd(&["status", "-c", &cfg(&env)]);
    assert!(row(&out.stdout, "web").contains("deploy of v2"), "{}", out.stdout);

    env.cmd(&["unmute", "-c", &cfg(&env), "web"]).code(0);
    let out = env.check(&[]);
    assert!(!row(&out.stdout, "web").contains("muted"), "{}", out.stdout);
    assert!(env.service("web")["mute_reason"].is_null());
}

#[test]
fn suspended_healing_shows_on_the_row() {
    let env = Env::new();
    env.fake_systemctl();
    env.unit("web.service", "failed", "failed", "exit-code");
    env.config(
        "timeout: 2s\nheal: {after_failures: 1, grace: 0s, max_restarts: 1, window: 1h}\n\
         services:\n  - name: web\n    unit: web.service\n",
    );
    env.check(&[]);
    env.check(&[]);
    assert_eq!(env.service("web")["heal_suspended"], true);
    let out = env.cmd(&["status", "-c", &cfg(&env)]);
    assert!(row(&out.stdout, "web").contains("healing suspended"), "{}", out.stdout);
}

#[test]
fn a_long_service_name_never_touches_the_next_column() {
    let env = Env::new();
    let long = "NeuroSphere SendTextended service";
    env.config(&format!("timeout: 1s\nservices:\n  - name: {long}\n    port: {}\n", closed_port()));
    let out = env.check(&[]);
    let line = row(&out.stdout, long);
    assert!(line[long.len()..].starts_with("  "), "{}", out.stdout);
    let header = out.stdout.lines().next().unwrap();
    assert_eq!(header.find("STATUS"), line.find("DOWN"), "{}", out.stdout);
    assert!(out.stdout.contains("(down: "), "{}", out.stdout);
    assert!(out.stdout.contains("1 service in"), "{}", out.stdout);
}

#[test]
fn service_names_match_ignoring_case_when_unambiguous() {
    let env = Env::new();
    env.config(&format!(
        "timeout: 1s\nservices:\n  - name: ChatStack\n    port: {}\n  - name: Host\n    port: {}\n",
        closed_port(),
        closed_port()
    ));
    let out = env.check(&["--only", "chatstack"]);
    assert!(row(&out.stdout, "ChatStack").contains("DOWN"), "{out:#?}");
    assert!(!out.stdout.contains("Host"), "{}", out.stdout);
    env.cmd(&["mute", "-c", &cfg(&env), "CHATSTACK", "--for", "1h"]).code(0);
    assert!(env.state()["services"]["ChatStack"]["muted_until"].is_string());

    let out = env.check(&["--only", "chatstak"]);
    out.code(3);
    assert!(out.stderr.contains("did you mean \"ChatStack\"?"), "{}", out.stderr);
    assert!(out.stderr.contains("ChatStack, Host"), "{}", out.stderr);

    // Two names that differ in case only: no guess, the names.
    env.config(&format!(
        "timeout: 1s\nservices:\n  - name: web\n    port: {p}\n  - name: Web\n    port: {p}\n",
        p = closed_port()
    ));
    let out = env.check(&["--only", "WEB"]);
    out.code(3);
    assert!(out.stderr.contains("ambiguous") && out.stderr.contains("web, Web"), "{}", out.stderr);
}

#[test]
fn an_unknown_key_gets_its_path_and_a_guess() {
    let env = Env::new();
    env.config(
        "intervall: 5s\nservices:\n  - name: web\n    checks:\n      - type: tcp\n        address: 127.0.0.1:1\n",
    );
    let out = env.cmd(&["validate", "-c", &cfg(&env)]);
    out.code(3);
    assert!(
        out.stderr.contains(":4:1: top level: unknown key `intervall` (did you mean `interval`?)"),
        "{}",
        out.stderr
    );
    env.config(
        "services:\n  - name: web\n    checks:\n      - type: tcp\n        address: 127.0.0.1:1\n        tiemout: 2s\n",
    );
    let out = env.cmd(&["validate", "-c", &cfg(&env)]);
    out.code(3);
    assert!(
        out.stderr.contains(
            ":9:9: services[0].checks[0]: unknown key `tiemout` (did you mean `timeout`?): expected one of"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn an_empty_config_says_so() {
    let env = Env::new();
    for text in ["", "\n\n", "# nothing yet\n"] {
        let file = env.write("empty.yml", text);
        let out = env.cmd(&["validate", "-c", file.to_str().unwrap()]);
        out.code(3);
        assert!(out.stderr.contains("the config file is empty"), "{text:?}: {}", out.stderr);
        assert!(!out.stderr.contains("end of file"), "{}", out.stderr);
    }
}

#[test]
fn mute_refuses_durations_outside_1s_to_90d() {
    let env = Env::new();
    env.config(&format!("services:\n  - name: web\n    port: {}\n", closed_port()));
    for bad in ["0s", "400d", "500ms"] {
        let out = env.cmd(&["mute", "-c", &cfg(&env), "web", "--for", bad]);
        out.code(3);
        assert!(out.stderr.contains("expected from 1s to 90d"), "{bad}: {}", out.stderr);
    }
    assert!(
        !env.path("state.json").exists() || env.state()["services"]["web"]["muted_until"].is_null()
    );
    env.cmd(&["mute", "-c", &cfg(&env), "web", "--for", "90d"]).code(0);
    env.cmd(&["mute", "-c", &cfg(&env), "web", "--for", "1s"]).code(0);
}

#[test]
fn a_restart_script_that_backgrounds_the_service_keeps_it() {
    let env = Env::new();
    env.fake_systemctl();
    env.unit("web.service", "failed", "failed", "exit-code");
    let pidfile = env.path("service.pid");
    // The service as a script might start it: in the background, output
    // redirected, the script exiting 0 at once.
    let script = env.write(
        "restart.sh",
        &format!(
            "#!/bin/sh\nsleep 300 >/dev/null 2>&1 &\necho $! > {}\nexit 0\n",
            pidfile.display()
        ),
    );
    env.config(&format!(
        "timeout: 1s\nheal: {{after_failures: 1, grace: 0s, restart_command: [sh, {script:?}]}}\n\
         services:\n  - name: web\n    unit: web.service\n    port: {}\n",
        closed_port()
    ));
    env.check(&[]).code(2);
    let r = &env.service("web")["restarts"][0];
    assert_eq!(r["ok"], true, "{r:#}");
    let pid: u32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    let alive = !crate::util::cmdline(pid).is_empty();
    crate::util::kill(pid);
    assert!(alive, "the service the restart script started in the background was killed");
}

/// A file of this checkout, by its path from the repository root.
pub(crate) fn repo_file(rel: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Docs other helpers write in parallel: linked from the README already.
const DOCS_TO_COME: [&str; 4] =
    ["docs/DIAGNOSIS.md", "docs/HOST.md", "docs/MAINTENANCE.md", "docs/OPENAPI.md"];

#[test]
fn the_readme_is_a_page_that_starts_with_the_two_commands_and_links_only_what_exists() {
    let readme = repo_file("README.md");
    let lines: Vec<&str> = readme.lines().collect();
    assert!(lines.len() <= 350, "README.md has {} lines", lines.len());
    let first_block: Vec<&str> = lines
        .iter()
        .skip_while(|l| **l != "```sh")
        .skip(1)
        .take_while(|l| **l != "```")
        .copied()
        .collect();
    assert_eq!(first_block.len(), 2, "{first_block:?}");
    assert!(first_block[0].starts_with("make run ") && first_block[0].contains("config/demo.yml"));
    assert!(first_block[1].starts_with("make test "));
    let cargo = repo_file("Cargo.toml");
    let version =
        cargo.lines().find_map(|l| l.strip_prefix("rust-version = ")).unwrap().trim_matches('"');
    assert!(readme.contains(&format!("**{version}**")), "README does not state Rust {version}");
    assert!(repo_file("docs/MIGRATING.md").contains(&format!("**{version}**")));
    for doc in ["README.md", "ARCHITECTURE.md"].into_iter().map(String::from).chain(
        std::fs::read_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs"))
            .unwrap()
            .flatten()
            .map(|e| format!("docs/{}", e.file_name().to_string_lossy()))
            .filter(|n| n.ends_with(".md")),
    ) {
        let text = repo_file(&doc);
        let dir = std::path::Path::new(&doc).parent().unwrap().to_path_buf();
        let mut in_code = false;
        for line in text.lines() {
            if line.starts_with("```") {
                in_code = !in_code;
            }
            if in_code {
                continue;
            }
            for (i, _) in line.match_indices("](") {
                let rest = &line[i + 2..];
                let Some(end) = rest.find(')') else { continue };
                let link = &rest[..end];
                if link.starts_with("http") || link.starts_with('#') || link.starts_with("mailto:")
                {
                    continue;
                }
                let path = link.split('#').next().unwrap();
                let target = normalize(&dir.join(path));
                if DOCS_TO_COME.contains(&target.as_str()) {
                    continue;
                }
                let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(&target);
                assert!(full.exists(), "{doc}: broken link {link}");
            }
        }
    }
}

/// `a/b/../c` as `a/c`, without touching the file system.
fn normalize(p: &std::path::Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                parts.pop();
            }
            std::path::Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            _ => {}
        }
    }
    parts.join("/")
}

#[test]
fn the_worked_config_of_the_migration_guide_validates() {
    let guide = repo_file("docs/MIGRATING.md");
    let section = guide.split("## A worked ChatStack config").nth(1).unwrap();
    let yaml = section.split("```yaml\n").nth(1).unwrap().split("```").next().unwrap();
    let env = Env::new();
    let file = env.write("chatstack.yml", yaml);
    let out = env.cmd(&["validate", "-c", file.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(out.stdout.contains("4 services"), "{}", out.stdout);
}
