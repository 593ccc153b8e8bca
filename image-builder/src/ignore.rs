//! `.dockerignore` matching with Docker's exact semantics.
//!
//! This is a port of `github.com/moby/patternmatcher` (used by the Docker CLI and
//! BuildKit): lines are read like `ignorefile.ReadAll` (comments, trimming, `!`
//! exceptions, `filepath.Clean`, leading `/` removed), each pattern is turned into a
//! regular expression the way `Pattern.compile` does (`*`, `?`, `[...]`, `**`, `\`
//! escapes) and a path is excluded when the *last* pattern that matches it, or one of
//! its parent directories, is not an exception.

use regex::Regex;

use crate::error::Error;
use crate::spec::StackKind;

/// Patterns that are always applied before the user's own `.dockerignore`, so that
/// secrets and bulky local state never reach the engine. A user can re-include any of
/// them with an explicit `!` exception (last match wins).
pub const DEFAULT_EXCLUDES: &[&str] = &[
    ".git",
    "**/.git",
    "**/.hg",
    "**/.svn",
    "**/.env*",
    "**/node_modules",
    "**/__pycache__",
    "**/*.pyc",
    "**/.next",
    "**/.venv",
    "**/.pytest_cache",
    "**/.mypy_cache",
    "**/.ruff_cache",
    "**/.turbo",
    "**/.DS_Store",
    "**/.idea",
    "**/.vscode",
    // Editors' swap, lock and backup files: saving a file must not change
    // the context (nor start a `dev` rebuild) while the editor has them open.
    "**/.*.swp",
    "**/.*.swx",
    "**/.*.swo",
    "**/4913",
    "**/*~",
    "**/.#*",
    "**/#*#",
];

/// What must never reach a Python runtime image: build output, packaging metadata,
/// virtualenvs and tests. Applied after the user's `.dockerignore` (so no `!`
/// exception brings them back), they stay out of the context and of the digest, and
/// no step of the image has to delete them.
pub const PYTHON_EXCLUDES: &[&str] = &[
    "build",
    "dist",
    "*.egg-info",
    "src/*.egg-info",
    "venv",
    "tests",
];

/// The excludes a stack adds to the context (after the user's own).
pub fn stack_excludes(stack: StackKind) -> &'static [&'static str] {
    match stack {
        StackKind::Python => PYTHON_EXCLUDES,
        _ => &[],
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MatchType {
    Exact,
    Prefix,
    Suffix,
    Regexp,
}

#[derive(Debug, Clone)]
struct Pattern {
    exclusion: bool,
    cleaned: String,
    kind: MatchType,
    re: Option<Regex>,
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match self.kind {
            MatchType::Exact => path == self.cleaned,
            MatchType::Prefix => {
                // strip the trailing "**"
                let prefix = &self.cleaned[..self.cleaned.len() - 2];
                path.starts_with(prefix)
            }
            MatchType::Suffix => {
                // strip the leading "**"
                let suffix = &self.cleaned[2..];
                if path.ends_with(suffix) {
                    return true;
                }
                // "**/foo" matches "foo"
                suffix.starts_with('/') && path == &suffix[1..]
            }
            MatchType::Regexp => self.re.as_ref().is_some_and(|re| re.is_match(path)),
        }
    }
}

/// A compiled list of `.dockerignore` patterns.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

/// Per-directory state used while walking: for every pattern, whether it matched the
/// directory itself or one of its parents (moby's `MatchesUsingParentResults`).
#[derive(Debug, Clone, Default)]
pub struct ParentInfo {
    matched: Vec<bool>,
}

impl Matcher {
    /// Parse the text of a `.dockerignore` file, after the built-in defaults.
    pub fn from_dockerignore(text: &str, with_defaults: bool) -> Result<Self, Error> {
        Self::for_stack(text, with_defaults, &[])
    }

    /// Like [`Matcher::from_dockerignore`], then the stack's own excludes.
    pub fn for_stack(text: &str, with_defaults: bool, stack: &[&str]) -> Result<Self, Error> {
        let mut lines: Vec<String> = Vec::new();
        if with_defaults {
            lines.extend(DEFAULT_EXCLUDES.iter().map(|s| s.to_string()));
        }
        lines.extend(read_all(text));
        lines.extend(stack.iter().map(|s| s.to_string()));
        Self::new(&lines)
    }

    /// Compile already-read patterns (`!` prefixed for exceptions).
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, Error> {
        let mut m = Matcher::default();
        for raw in patterns {
            let p = raw.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            let mut p = clean(p);
            let mut exclusion = false;
            if let Some(rest) = p.strip_prefix('!') {
                if rest.is_empty() {
                    return Err(Error::Ignore {
                        pattern: raw.as_ref().to_string(),
                        reason: "illegal exclusion pattern: \"!\"".into(),
                    });
                }
                exclusion = true;
                p = rest.to_string();
                m.exclusions = true;
            }
            validate_glob(&p).map_err(|reason| Error::Ignore {
                pattern: raw.as_ref().to_string(),
                reason,
            })?;
            m.patterns
                .push(compile(p, exclusion).map_err(|reason| Error::Ignore {
                    pattern: raw.as_ref().to_string(),
                    reason,
                })?);
        }
        Ok(m)
    }

    /// Whether any `!` exception exists (if not, an excluded directory can be skipped
    /// whole).
    pub fn has_exclusions(&self) -> bool {
        self.exclusions
    }

    /// `MatchesOrParentMatches` from moby: is `path` (slash separated, relative to the
    /// context root) excluded?
    pub fn matches(&self, path: &str) -> bool {
        let parents: Vec<&str> = match path.rfind('/') {
            Some(i) => {
                let dir = &path[..i];
                let mut v = Vec::new();
                for (j, c) in dir.char_indices() {
                    if c == '/' {
                        v.push(&dir[..j]);
                    }
                }
                v.push(dir);
                v
            }
            None => Vec::new(),
        };
        let mut matched = false;
        for pat in &self.patterns {
            if pat.exclusion != matched {
                continue;
            }
            let mut m = pat.matches(path);
            if !m {
                m = parents.iter().any(|p| pat.matches(p));
            }
            if m {
                matched = !pat.exclusion;
            }
        }
        matched
    }

    /// The same decision as [`Matcher::matches`], reusing the results computed for the
    /// parent directory so that a walk costs one test per pattern per entry. Returns
    /// the decision and the info to hand to this entry's children.
    pub fn matches_with_parent(&self, path: &str, parent: &ParentInfo) -> (bool, ParentInfo) {
        let mut info = ParentInfo {
            matched: vec![false; self.patterns.len()],
        };
        let mut matched = false;
        for (i, pat) in self.patterns.iter().enumerate() {
            let parent_matched = parent.matched.get(i).copied().unwrap_or(false);
            // Always compute the per-pattern result so children can use it.
            let m = parent_matched || pat.matches(path);
            info.matched[i] = m;
            if pat.exclusion != matched {
                continue;
            }
            if m {
                matched = !pat.exclusion;
            }
        }
        (matched, info)
    }

    /// Could an exception pattern re-include something below the excluded directory
    /// `dir`? If not, the walk does not descend into it (Docker does the same).
    pub fn may_reinclude_below(&self, dir: &str) -> bool {
        if !self.exclusions {
            return false;
        }
        let prefix = format!("{dir}/");
        self.patterns.iter().filter(|p| p.exclusion).any(|p| {
            // A pattern that starts with the directory's path, or contains wildcards
            // before reaching it, might match something inside.
            let literal: String = p
                .cleaned
                .chars()
                .take_while(|c| !matches!(c, '*' | '?' | '[' | '\\'))
                .collect();
            if literal.len() == p.cleaned.len() {
                p.cleaned.starts_with(&prefix)
            } else {
                prefix.starts_with(&literal) || literal.starts_with(&prefix)
            }
        })
    }
}

/// `ignorefile.ReadAll`: the patterns of a `.dockerignore` text.
pub fn read_all(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let mut p = line.trim();
        if p.is_empty() {
            continue;
        }
        let invert = p.starts_with('!');
        if invert {
            p = p[1..].trim();
        }
        let mut pattern = String::new();
        if !p.is_empty() {
            pattern = clean(p);
            if pattern.len() > 1 && pattern.starts_with('/') {
                pattern.remove(0);
            }
        }
        if invert {
            pattern.insert(0, '!');
        }
        out.push(pattern);
    }
    out
}

/// Go's `filepath.Clean` for slash-separated paths.
pub fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// The syntax check `filepath.Match(pattern, ".")` performs: unterminated or empty
/// character classes and a trailing backslash are errors.
fn validate_glob(p: &str) -> Result<(), String> {
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                if i + 1 >= chars.len() {
                    return Err("the pattern ends with a lone backslash".into());
                }
                i += 2;
            }
            '[' => {
                i += 1;
                if i < chars.len() && chars[i] == '^' {
                    i += 1;
                }
                let start = i;
                let mut closed = false;
                while i < chars.len() {
                    match chars[i] {
                        ']' if i > start => {
                            closed = true;
                            break;
                        }
                        ']' => return Err("empty character class `[]`".into()),
                        '\\' => i += 2,
                        '-' if i == start => {
                            return Err("a range in `[...]` has no start".into());
                        }
                        _ => i += 1,
                    }
                }
                if !closed {
                    return Err("unterminated character class: `[` without `]`".into());
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

fn should_escape(c: char) -> bool {
    matches!(c, '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' | '^')
}

fn compile(cleaned: String, exclusion: bool) -> Result<Pattern, String> {
    let mut re = String::from("^");
    let mut kind = MatchType::Exact;
    let chars: Vec<char> = cleaned.chars().collect();
    let mut i = 0;
    let mut idx = 0usize; // position counter like moby's loop variable
    let mut in_class = false;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        if in_class {
            // inside [...]: pass through, with Go's `^` negation kept as is
            match ch {
                ']' => {
                    in_class = false;
                    re.push(']');
                }
                '\\' => {
                    re.push('\\');
                    if i < chars.len() {
                        re.push(chars[i]);
                        i += 1;
                    }
                }
                '[' => re.push_str("\\["),
                c => re.push(c),
            }
            idx += 1;
            continue;
        }
        if ch == '*' {
            if chars.get(i) == Some(&'*') {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i >= chars.len() {
                    if kind == MatchType::Exact {
                        kind = MatchType::Prefix;
                    } else {
                        re.push_str(".*");
                        kind = MatchType::Regexp;
                    }
                } else {
                    re.push_str("(.*/)?");
                    kind = MatchType::Regexp;
                }
                if idx == 0 {
                    kind = MatchType::Suffix;
                }
            } else {
                re.push_str("[^/]*");
                kind = MatchType::Regexp;
            }
        } else if ch == '?' {
            re.push_str("[^/]");
            kind = MatchType::Regexp;
        } else if should_escape(ch) {
            re.push('\\');
            re.push(ch);
        } else if ch == '\\' {
            if i < chars.len() {
                let n = chars[i];
                i += 1;
                if n.is_ascii_alphanumeric() {
                    re.push(n);
                } else {
                    re.push('\\');
                    re.push(n);
                }
            } else {
                re.push_str("\\\\");
            }
        } else if ch == '[' {
            in_class = true;
            re.push('[');
            kind = MatchType::Regexp;
        } else if ch == ']' {
            re.push_str("\\]");
            kind = MatchType::Regexp;
        } else {
            re.push(ch);
        }
        idx += 1;
    }
    // moby: a suffix pattern whose remainder has wildcards is still matched with the
    // suffix rule only if nothing after `**` turned it into a regexp. Keep that order.
    if kind != MatchType::Regexp {
        return Ok(Pattern {
            exclusion,
            cleaned,
            kind,
            re: None,
        });
    }
    re.push('$');
    let compiled = Regex::new(&re).map_err(|e| format!("cannot compile pattern: {e}"))?;
    Ok(Pattern {
        exclusion,
        cleaned,
        kind,
        re: Some(compiled),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_excludes_win_over_the_users_exceptions() {
        let py = Matcher::for_stack("!tests\n", true, PYTHON_EXCLUDES).unwrap();
        for p in [
            "tests",
            "tests/test_a.py",
            "build/lib/x.py",
            "x.egg-info",
            "src/x.egg-info/PKG-INFO",
            "venv/bin/python",
        ] {
            assert!(py.matches(p), "{p}");
        }
        for p in ["app/tests.py", "src/x/main.py", "main.py"] {
            assert!(!py.matches(p), "{p}");
        }
        assert!(
            !Matcher::for_stack("", true, stack_excludes(StackKind::Node))
                .unwrap()
                .matches("build")
        );
    }

    fn m(pats: &[&str], path: &str) -> bool {
        Matcher::new(pats).unwrap().matches(path)
    }

    #[test]
    fn docker_pattern_semantics() {
        // cases from moby/patternmatcher's tests
        assert!(m(&["**"], "file"));
        assert!(m(&["**"], "file/"));
        assert!(m(&["**/"], "file"));
        assert!(m(&["**/"], "file/"));
        assert!(m(&["**/**"], "dir/file"));
        assert!(m(&["dir/**"], "dir/file"));
        assert!(m(&["dir/**"], "dir/dir2/file"));
        assert!(m(&["**/file"], "file"));
        assert!(m(&["**/file"], "dir/file"));
        assert!(m(&["**/file"], "dir/dir/file"));
        assert!(m(&["**/file*"], "dir/dir/file"));
        assert!(m(&["**/file*txt"], "dir/dir/file.txt"));
        assert!(!m(&["**/file*.txt"], "dir/dir/file.tx"));
        assert!(m(&["**.txt"], "file.txt"));
        assert!(m(&["**.txt"], "dir/file.txt"));
        assert!(!m(&["**.txt"], "file.txt.bak"));
        assert!(m(&["dir/**/file"], "dir/file"));
        assert!(m(&["dir/**/file"], "dir/a/b/file"));
        assert!(!m(&["dir/**/file"], "dir/a/b/file2"));
        assert!(m(&["*.go"], "main.go"));
        assert!(!m(&["*.go"], "cmd/main.go"));
        assert!(m(&["*/*.go"], "cmd/main.go"));
        assert!(m(&["a?c"], "abc"));
        assert!(!m(&["a?c"], "a/c"));
        assert!(m(&["[a-c]x"], "bx"));
        assert!(!m(&["[^a-c]x"], "bx"));
        // moby: an escape alone leaves the pattern an exact (literal) match...
        assert!(!m(&["a\\*b"], "a*b"));
        assert!(m(&["a\\*b"], "a\\*b"));
        // ...while with another wildcard it becomes a regexp where `\*` is literal
        assert!(m(&["a\\*b?"], "a*bc"));
        assert!(!m(&["a\\*b?"], "axbc"));
        assert!(m(&["abc.def"], "abc.def"));
        assert!(!m(&["abc.def"], "abcxdef"));
        assert!(m(&["pkg"], "pkg/file"));
        assert!(m(&["./pkg/"], "pkg/file"));
        // a leading `/` is removed when the .dockerignore is read
        let f = Matcher::from_dockerignore("/pkg\n", false).unwrap();
        assert!(f.matches("pkg/sub/file"));
    }

    #[test]
    fn exceptions_last_match_wins() {
        assert!(!m(&["*.md", "!README.md"], "README.md"));
        assert!(m(&["*.md", "!README.md"], "CHANGES.md"));
        assert!(m(&["*.md", "!README.md", "README*"], "README.md"));
        assert!(!m(&["docs", "!docs/keep.txt"], "docs/keep.txt"));
        assert!(m(&["docs", "!docs/keep.txt"], "docs/other.txt"));
    }

    #[test]
    fn parent_results_agree_with_full_match() {
        let pats = [
            "**/node_modules",
            "build",
            "!build/keep",
            "*.log",
            "!important.log",
            "a/**/z",
        ];
        let mm = Matcher::new(&pats).unwrap();
        let paths = [
            "node_modules",
            "node_modules/x/y.js",
            "src/node_modules/a",
            "build",
            "build/keep",
            "build/keep/file",
            "build/other",
            "x.log",
            "important.log",
            "a/b/c/z",
            "a/b/c/z/q",
            "src/main.rs",
        ];
        for p in paths {
            // compute parent info by walking components
            let mut info = ParentInfo::default();
            let comps: Vec<&str> = p.split('/').collect();
            let mut dec = false;
            for k in 1..=comps.len() {
                let sub = comps[..k].join("/");
                let (d, i) = mm.matches_with_parent(&sub, &info);
                dec = d;
                info = i;
            }
            assert_eq!(dec, mm.matches(p), "path {p}");
        }
    }

    #[test]
    fn read_all_like_docker() {
        let text = "\u{feff}# comment\n  \n/abs\n!  keep \n./a/../b/\n*.tmp\n";
        assert_eq!(read_all(text), vec!["abs", "!keep", "b", "*.tmp"]);
    }

    #[test]
    fn malformed_patterns_are_errors() {
        assert!(Matcher::new(&["[abc"]).is_err());
        assert!(Matcher::new(&["!"]).is_err());
        assert!(Matcher::new(&["a\\"]).is_err());
    }

    #[test]
    fn defaults_exclude_editor_scratch_files() {
        let d = Matcher::from_dockerignore("", true).unwrap();
        for path in [
            ".main.py.swp",
            "app/.main.py.swx",
            "app/.main.py.swo",
            "app/4913",
            "main.py~",
            "app/.#main.py",
            "app/#main.py#",
        ] {
            assert!(d.matches(path), "{path}");
        }
        for path in ["main.py", "app/swp", "x.swp.py", "app/4913.py", "a#b.py"] {
            assert!(!d.matches(path), "{path}");
        }
    }

    #[test]
    fn defaults_exclude_secrets_and_allow_reinclusion() {
        let d = Matcher::from_dockerignore("", true).unwrap();
        assert!(d.matches(".env"));
        assert!(d.matches(".env.local"));
        assert!(d.matches("sub/.env.production"));
        assert!(d.matches(".git/config"));
        assert!(d.matches("node_modules/react/index.js"));
        assert!(d.matches("app/__pycache__/x.pyc"));
        assert!(!d.matches("src/index.js"));
        let r = Matcher::from_dockerignore("!.env.example\n", true).unwrap();
        assert!(!r.matches(".env.example"));
        assert!(r.matches(".env"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// A `.dockerignore` comes with the repository: any text compiles
        /// or is refused, and any path is matched, without a panic.
        #[test]
        fn any_dockerignore_and_path_never_panics(
            text in proptest::prop_oneof![
                proptest::prelude::any::<String>(),
                "([!#]?[a-z*?/.\\\\\\[\\]^-]{0,12}\n){0,8}",
            ],
            path in "[a-z*?/.\\[\\]]{0,16}",
        ) {
            if let Ok(m) = Matcher::from_dockerignore(&text, true) {
                let _ = m.matches(&path);
                let _ = m.may_reinclude_below(&path);
            }
        }
    }
}
