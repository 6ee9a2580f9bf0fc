//! The docs' YAML is config a reader pastes: every ```yaml block of every
//! page in docs/ (and the man page's host example) must pass
//! `chatstack-status validate`, so a renamed key, a changed default or a
//! typo cannot leave an example that no longer loads.

use crate::util::Env;

/// Top-level keys of the other programs' YAML the docs show (Prometheus
/// scrape configs, rules and file_sd targets, Alertmanager routes): not ours
/// to validate (tests/fleet.rs runs promtool and amtool on the shipped ones).
const FOREIGN_KEYS: [&str; 4] = ["scrape_configs:", "groups:", "route:", "- targets:"];

/// The services a fragment's `depends_on`, filters and windows may name.
const BACKGROUND: [&str; 2] = ["ChatStack", "AI-Memory"];

/// `BACKGROUND`'s services that `block` does not define itself, as list items.
fn background(block: &str) -> String {
    BACKGROUND
        .iter()
        .filter(|name| !block.contains(&format!("name: {name}\n")))
        .map(|name| format!("  - {{ name: {name}, port: 1 }}\n"))
        .collect()
}

/// What `${…}` in the docs' examples reads.
const ENVIRONMENT: [(&str, &str); 1] = [("HOSTNAME", "droplet-1")];

/// The ```yaml blocks of a Markdown text, with the line each starts on
/// (a fence indented in a list item: its lines without that indentation).
fn yaml_blocks(text: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, &str, String)> = None;
    for (n, line) in text.lines().enumerate() {
        let fence = line.trim();
        match &mut current {
            None if fence == "```yaml" => {
                current =
                    Some((n + 1, &line[..line.len() - line.trim_start().len()], String::new()))
            }
            Some(_) if fence == "```" => blocks.extend(current.take().map(|(n, _, b)| (n, b))),
            Some((_, indent, body)) => {
                body.push_str(line.strip_prefix(*indent).unwrap_or(line));
                body.push('\n');
            }
            None => {}
        }
    }
    assert!(current.is_none(), "an unclosed ```yaml block");
    blocks
}

/// How a block is checked.
#[derive(Debug, PartialEq)]
enum Shape {
    /// A whole main config file.
    Config(String),
    /// A `conf.d/` drop-in (its first comment says so), read beside a main
    /// file holding `BACKGROUND`.
    DropIn(String),
    /// Another program's YAML.
    Foreign,
}

/// A block as what `validate` reads: a list of checks goes into a service, a
/// list of services under `services:`, a fragment without `services:` gets
/// `BACKGROUND`'s.
fn shape(block: &str) -> Shape {
    let first = block.lines().find(|l| !l.trim().is_empty() && !l.starts_with('#'));
    let indent = |by: &str| block.lines().map(|l| format!("{by}{l}\n")).collect::<String>();
    let top_level = |key: &str| block.lines().any(|l| l.starts_with(key));
    match first.map(str::trim_start) {
        _ if FOREIGN_KEYS.iter().any(|k| top_level(k)) => Shape::Foreign,
        _ if block.lines().next().is_some_and(|l| l.starts_with('#') && l.contains("conf.d/")) => {
            Shape::DropIn(block.to_string())
        }
        Some(l) if l.starts_with("- name:") => {
            Shape::Config(format!("services:\n{}", indent("  ")))
        }
        Some(l) if l.starts_with("- ") => {
            Shape::Config(format!("services:\n  - name: Host\n    checks:\n{}", indent("      ")))
        }
        _ if !top_level("services:") => {
            Shape::Config(format!("{block}services:\n{}", background(block)))
        }
        _ => Shape::Config(block.to_string()),
    }
}

/// `validate` accepts the block: as a config, or as a drop-in beside one.
/// One allowance: a file the example names under /etc/chatstack-status/ (a
/// CA, a token) need not exist here.
#[track_caller]
fn assert_validates(env: &Env, what: &str, shape: &Shape) {
    let _ = std::fs::remove_dir_all(env.path("conf.d"));
    let main = match shape {
        Shape::Config(yaml) => env.write("doc.yml", yaml),
        Shape::DropIn(yaml) => {
            env.write("conf.d/doc.yml", yaml);
            env.write("doc.yml", &format!("services:\n{}", background(yaml)))
        }
        Shape::Foreign => return,
    };
    let out = env.cmd_env(&["validate", "-c", main.to_str().unwrap()], &ENVIRONMENT);
    if out.code == 0 {
        return;
    }
    let errors: Vec<&str> = out.stderr.lines().filter(|l| l.contains("error:")).collect();
    let absent_file = |l: &&str| l.contains("cannot read /etc/chatstack-status/");
    if out.code == 3 && !errors.is_empty() && errors.iter().all(absent_file) {
        eprintln!("{what}: validated but for: {}", errors.join(" | "));
        return;
    }
    panic!("{what} does not validate:\n{shape:?}\n{out:#?}");
}

#[test]
fn every_yaml_block_of_the_docs_validates() {
    let env = Env::new();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let mut pages: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| format!("docs/{}", e.file_name().to_string_lossy()))
        .filter(|n| n.ends_with(".md"))
        .collect();
    pages.sort();
    let (mut ours, mut foreign) = (0, 0);
    for page in pages {
        let text = crate::newcomer::repo_file(&page);
        let blocks = yaml_blocks(&text);
        let fences = text.lines().filter(|l| l.trim() == "```yaml").count();
        assert_eq!(blocks.len(), fences, "{page}: a block was missed");
        for (line, block) in blocks {
            let shape = shape(&block);
            match shape {
                Shape::Foreign => foreign += 1,
                _ => ours += 1,
            }
            assert_validates(&env, &format!("{page}:{line}"), &shape);
        }
    }
    // HOST.md alone has 8; the rest of docs/ 15 more, 3 of them foreign.
    assert!(ours >= 20 && foreign <= 4, "{ours} blocks validated, {foreign} foreign");
}

#[test]
#[should_panic(expected = "page:2 does not validate")]
fn a_block_that_does_not_validate_is_caught() {
    let text = "text\n```yaml\n- { type: disk, path: /, wran: 80 }\n```\n";
    let (line, block) = yaml_blocks(text).pop().unwrap();
    assert_validates(&Env::new(), &format!("page:{line}"), &shape(&block));
}

#[test]
#[should_panic(expected = "drop-in:1 does not validate")]
fn a_drop_in_is_validated_as_a_drop_in() {
    // A drop-in may hold only services and notify: a top-level key is an
    // error there, though the same text would be a valid main file.
    let text = "```yaml\n# /etc/chatstack-status/conf.d/web.yml\ninterval: 5s\n\
                services:\n  - { name: Web, port: 1 }\n```\n";
    let (line, block) = yaml_blocks(text).pop().unwrap();
    assert!(matches!(shape(&block), Shape::DropIn(_)));
    assert_validates(&Env::new(), &format!("drop-in:{line}"), &shape(&block));
}

#[test]
fn the_man_pages_host_example_validates() {
    let page = crate::newcomer::repo_file("packaging/man/chatstack-status.1");
    let example = page
        .split(".EX\n")
        .map(|b| b.split(".EE").next().unwrap())
        .find(|b| b.starts_with("services:"))
        .expect("the man page's EXAMPLES have a config with services:");
    let yaml = example.replace("\\-", "-");
    assert_validates(&Env::new(), "the man page's example", &Shape::Config(yaml));
}
