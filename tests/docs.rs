//! The docs' YAML is config a reader pastes: every ```yaml block of the
//! pages listed here must pass `chatstack-status validate`, so a renamed key
//! or a changed default cannot leave a recipe that no longer loads.

use crate::util::Env;

/// Pages whose every ```yaml block must validate.
const VALIDATED_PAGES: [&str; 1] = ["docs/HOST.md"];

/// Keys a page documents before they are on this branch (another helper
/// builds them in parallel). A block using one may fail validation, but only
/// with "unknown key `KEY`": once the key exists the block is validated in
/// full, and any other problem fails the test now.
const KEYS_TO_COME: [&str; 0] = [];

/// The ```yaml blocks of a Markdown text, with the line each starts on.
fn yaml_blocks(text: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (n, line) in text.lines().enumerate() {
        match (&mut current, line.trim_end()) {
            (None, "```yaml") => current = Some((n + 1, String::new())),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some((_, body)), _) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "an unclosed ```yaml block");
    blocks
}

/// A block as a whole config file: a list of checks goes into a service, a
/// list of services under `services:`; anything else is a config already.
fn as_config(block: &str) -> String {
    let first = block.lines().find(|l| !l.trim().is_empty() && !l.starts_with('#'));
    let indent = |by: &str| block.lines().map(|l| format!("{by}{l}\n")).collect::<String>();
    match first.map(str::trim_start) {
        Some(l) if l.starts_with("- name:") => format!("services:\n{}", indent("  ")),
        Some(l) if l.starts_with("- ") => {
            format!("services:\n  - name: Host\n    checks:\n{}", indent("      "))
        }
        _ => block.to_string(),
    }
}

/// `validate` accepts `yaml` (or, for a block using one of `KEYS_TO_COME`,
/// rejects that key and nothing else).
#[track_caller]
fn assert_validates(env: &Env, what: &str, yaml: &str) {
    let file = env.write("doc.yml", yaml);
    let out = env.cmd(&["validate", "-c", file.to_str().unwrap()]);
    let pending = out.code == 3
        && KEYS_TO_COME.iter().any(|k| out.stderr.contains(&format!("unknown key `{k}`")));
    if pending {
        eprintln!("{what}: skipped until its key exists: {}", out.stderr.trim());
        return;
    }
    assert_eq!(out.code, 0, "{what} does not validate:\n{yaml}\n{out:#?}");
}

#[test]
fn every_yaml_block_of_the_host_page_validates() {
    let env = Env::new();
    for page in VALIDATED_PAGES {
        let text = crate::newcomer::repo_file(page);
        let blocks = yaml_blocks(&text);
        assert_eq!(blocks.len(), text.matches("```yaml").count(), "{page}: a block was missed");
        assert!(blocks.len() >= 8, "{page}: only {} yaml blocks found", blocks.len());
        for (line, block) in blocks {
            assert_validates(&env, &format!("{page}:{line}"), &as_config(&block));
        }
    }
}

#[test]
#[should_panic(expected = "page:2 does not validate")]
fn a_block_that_does_not_validate_is_caught() {
    let text = "text\n```yaml\n- { type: disk, path: /, wran: 80 }\n```\n";
    let (line, block) = yaml_blocks(text).pop().unwrap();
    assert_validates(&Env::new(), &format!("page:{line}"), &as_config(&block));
}

#[test]
fn the_man_pages_host_example_validates() {
    let page = crate::newcomer::repo_file("packaging/man/chatstack-status.1");
    let example = page
        .split(".EX\n")
        .map(|b| b.split(".EE").next().unwrap())
        .find(|b| b.starts_with("services:"))
        .expect("the man page's EXAMPLES have a config with services:");
    assert_validates(&Env::new(), "the man page's example", &example.replace("\\-", "-"));
}
