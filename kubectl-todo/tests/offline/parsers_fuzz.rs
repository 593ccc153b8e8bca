//! Property tests of the parser of outside input `todo.yaml` (cloned with a
//! repository): whatever the text, loading never panics, and a refusal
//! points at a line and column of the file. A fixed number of cases keeps
//! CI time bounded.

use kubectl_todo::project::{Error, FILE_NAME, Project};
use proptest::prelude::*;

const VALID: &str = "name: shop
namespace: shop-dev
secret:
  keys:
    - name: API_KEY
      generateBytes: 32
      pattern: \"[a-z]+\"
components:
  - name: web
    stack: nextjs
    port: 3000
    service: {type: NodePort, nodePort: 30080}
    writablePaths: [/var/cache]
    secretKeys: [API_KEY]
  - name: api
    path: api
    port: 8000
    healthPath: /health
    resources:
      requests: {cpu: 100m, memory: 128Mi}
      limits: {cpu: 500m, memory: 512Mi}
";

/// Loads `text` as a project file: `Ok`, or an error located in the file.
fn load_located(text: &str) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".git")).unwrap();
    std::fs::write(dir.path().join(FILE_NAME), text).unwrap();
    match Project::load(dir.path()) {
        Ok(_) => Ok(()),
        Err(Error::Invalid { line, column, .. }) => {
            let lines = text.lines().count().max(1) as u64;
            prop_assert!(
                line >= 1 && line <= lines + 1 && column >= 1,
                "refused at {line}:{column} of a {lines}-line file:\n{text}"
            );
            Ok(())
        }
        Err(e) => Err(TestCaseError::fail(format!("not located: {e}\n{text}"))),
    }
}

/// A scalar as a hostile file might hold it.
fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,40}",
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        Just("~".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just("../..".to_string()),
        Just("/".to_string()),
        Just("&a [*a]".to_string()),
    ]
}

#[test]
fn the_file_mutated_below_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(FILE_NAME), VALID).unwrap();
    let p = Project::load(dir.path()).unwrap();
    assert_eq!(p.component_names(), ["web", "api"]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_text_is_loaded_or_refused_at_a_place(text in any::<String>()) {
        load_located(&text)?;
    }

    #[test]
    fn any_value_in_a_valid_file_is_loaded_or_refused_at_a_place(
        line in 0usize..22,
        value in scalar(),
    ) {
        // The value replaces what follows the first `: ` (or `- `) of one line.
        let text: String = VALID
            .lines()
            .enumerate()
            .map(|(i, l)| {
                if i != line {
                    return format!("{l}\n");
                }
                match l.find(": ").or_else(|| l.find("- ")) {
                    Some(at) => format!("{}{}\n", &l[..at + 2], value.replace('\n', " ")),
                    None => format!("{l}\n"),
                }
            })
            .collect();
        load_located(&text)?;
    }

    #[test]
    fn any_line_dropped_or_repeated_is_loaded_or_refused_at_a_place(
        line in 0usize..22,
        repeat in any::<bool>(),
    ) {
        let text: String = VALID
            .lines()
            .enumerate()
            .flat_map(|(i, l)| {
                let times = match (i == line, repeat) {
                    (false, _) => 1,
                    (true, true) => 2,
                    (true, false) => 0,
                };
                std::iter::repeat_n(format!("{l}\n"), times)
            })
            .collect();
        load_located(&text)?;
    }
}
