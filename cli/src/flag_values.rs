//! Flag values more than one verb takes, read as docker's CLI reads them:
//! `key=value` labels ([`parse_label`]), environment entries
//! ([`local_env_entry`], [`make_env`]), command words ([`parse_words`]:
//! POSIX-shell quoting for `--entrypoint` and `update --args`, which
//! docker splits with go-shlex) and the test that tells the long form of
//! `--publish` and `--network` from the short one ([`is_long_syntax`]).

/// A `key=value` label (a bare key has an empty value), as docker's
/// `--label`, `--container-label` and their `-add` forms take it.
pub fn parse_label(value: &str) -> Result<(String, String), String> {
    let (key, label) = value.split_once('=').unwrap_or((value, ""));
    if key.trim().is_empty() {
        return Err(format!("invalid label '{value}': empty name"));
    }
    Ok((key.to_owned(), label.to_owned()))
}

/// One `-e`/`--env-add` value as docker takes it: `NAME=value` as is, a
/// bare `NAME` from this environment when set there (`lookup`).
fn env_entry(value: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let (name, has_value) = match value.split_once('=') {
        Some((name, _)) => (name, true),
        None => (value, false),
    };
    if name.is_empty() {
        return Err(format!("invalid environment variable: {value}"));
    }
    Ok(match (has_value, lookup(name)) {
        (false, Some(local)) => format!("{name}={local}"),
        _ => value.to_owned(),
    })
}

/// [`env_entry`] with this process's environment, for `--env-add`.
pub fn local_env_entry(value: &str) -> Result<String, String> {
    env_entry(value, |name| std::env::var(name).ok())
}

/// The name of an environment entry (`NAME=value` or a bare `NAME`).
pub fn env_name(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(name, _)| name)
}

/// `-e` values as docker takes them ([`env_entry`]); a later value of a
/// name replaces an earlier one.
pub fn make_env(
    values: &[String],
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, String> {
    let mut env: Vec<String> = Vec::new();
    for value in values {
        let entry = env_entry(value, &lookup)?;
        let name = env_name(&entry);
        env.retain(|e| e == &entry || env_name(e) != name);
        if !env.contains(&entry) {
            env.push(entry);
        }
    }
    Ok(env)
}

/// The words of a command flag (`--entrypoint`, `update --args`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Words(pub Vec<String>);

/// Parses a command flag into [`Words`] with [`shell_words`].
pub fn parse_words(text: &str) -> Result<Words, String> {
    shell_words(text).map(Words)
}

/// Splits a command flag into words as a POSIX shell would: blanks
/// separate, quotes group, backslashes escape.
///
/// Not the agent's splitter (`agent/src/images/change.rs`) because Docker
/// reads the two with different grammars: command flags are split by
/// docker's CLI with go-shlex (whose error messages these are), the words
/// of a `docker import --change 'ENV …'` by the Dockerfile lexer. Where
/// this one departs from go-shlex: double quotes are POSIX ones (a
/// backslash escapes only `"`, `\`, `$`, `` ` `` and a newline, and stays
/// before anything else, where go-shlex drops it before any character),
/// and a `#` starting a word is kept, not a comment.
fn shell_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("EOF found when expecting closing quote".to_owned()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => {
                                return Err("EOF found when expecting closing quote".to_owned());
                            }
                        },
                        Some(c) => word.push(c),
                        None => return Err("EOF found when expecting closing quote".to_owned()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') => {}
                    Some(c) => word.push(c),
                    None => return Err("EOF found after escape character".to_owned()),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Docker's test for the long (`key=value,…`) form of a flag such as
/// `--publish` or `--network`, the regular expression `\w+=\w+`
/// unanchored: somewhere a word character, `=`, a word character.
pub fn is_long_syntax(value: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    value
        .char_indices()
        .any(|(i, c)| c == '=' && value[..i].ends_with(word) && value[i + 1..].starts_with(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_takes_bare_names_from_here() {
        let lookup = |name: &str| (name == "HOME").then(|| "/root".to_owned());
        assert_eq!(
            make_env(&["HOME".into(), "UNSET".into(), "X=1".into()], lookup),
            Ok(vec!["HOME=/root".into(), "UNSET".into(), "X=1".into()])
        );
    }

    #[test]
    fn shell_words_like_a_shell() {
        assert_eq!(
            shell_words(r#"/bin/sh -c 'echo "hi there"' a\ b "x\"y""#),
            Ok(vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo \"hi there\"".into(),
                "a b".into(),
                "x\"y".into()
            ])
        );
        assert_eq!(shell_words("  "), Ok(vec![]));
        assert_eq!(shell_words("''"), Ok(vec![String::new()]));
    }

    #[test]
    fn long_syntax_has_a_word_on_each_side_of_an_equals_sign() {
        assert!(is_long_syntax("published=8080,target=80"));
        assert!(is_long_syntax("front,alias=x"));
        assert!(!is_long_syntax("8080:80/udp"));
        assert!(!is_long_syntax(r#"name="a"#));
        assert!(!is_long_syntax("=x"));
    }
}
