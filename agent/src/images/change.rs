//! The runtime part of an image config ([`ImageRuntimeConfig`]: env,
//! entrypoint, cmd, working dir, user) and the `docker import --change`
//! Dockerfile instructions that set it (`CMD`, `ENTRYPOINT`, `ENV`,
//! `WORKDIR`, `USER`), with their exec/shell forms and `ENV` word splitting.

use std::path::Path;

use super::ImageError;

/// What the image config says about how to run it (OCI image config
/// `config` fields).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageRuntimeConfig {
    /// `NAME=value` pairs.
    pub env: Vec<String>,
    /// The entrypoint; the command's arguments follow it.
    pub entrypoint: Vec<String>,
    /// The default command (or the entrypoint's default arguments).
    pub cmd: Vec<String>,
    /// The working directory; empty for `/`.
    pub working_dir: String,
    /// `user[:group]` (names or IDs); empty for root.
    pub user: String,
}

impl ImageRuntimeConfig {
    /// The config `docker import --change` makes from Dockerfile
    /// instructions: `CMD`, `ENTRYPOINT` (JSON array or shell form), `ENV`
    /// (`K=V …` or `K V`), `WORKDIR` and `USER`, applied in order.
    pub fn from_changes(changes: &[impl AsRef<str>]) -> Result<Self, ImageError> {
        let mut config = Self::default();
        for change in changes {
            config.apply(change.as_ref())?;
        }
        Ok(config)
    }

    fn apply(&mut self, change: &str) -> Result<(), ImageError> {
        let invalid = |reason: &str| ImageError::InvalidChange {
            change: change.to_owned(),
            reason: reason.to_owned(),
        };
        let change = change.trim();
        let (instruction, rest) = change
            .split_once(char::is_whitespace)
            .map_or((change, ""), |(i, r)| (i, r.trim()));
        if rest.is_empty() {
            return Err(invalid("missing arguments"));
        }
        match instruction.to_ascii_uppercase().as_str() {
            "CMD" => self.cmd = exec_form(rest),
            "ENTRYPOINT" => self.entrypoint = exec_form(rest),
            "ENV" => {
                let words = shell_words(rest).ok_or_else(|| invalid("unbalanced quotes"))?;
                let pairs: Vec<(String, String)> = if words[0].contains('=') {
                    words
                        .iter()
                        .map(|w| {
                            w.split_once('=')
                                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                                .ok_or_else(|| invalid("expected KEY=value"))
                        })
                        .collect::<Result<_, _>>()?
                } else {
                    // The legacy form: `ENV KEY the value`.
                    let (key, value) = rest
                        .split_once(char::is_whitespace)
                        .ok_or_else(|| invalid("expected KEY=value or KEY value"))?;
                    vec![(key.to_owned(), value.trim().to_owned())]
                };
                for (key, value) in pairs {
                    if key.is_empty() {
                        return Err(invalid("empty variable name"));
                    }
                    self.env
                        .retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
                    self.env.push(format!("{key}={value}"));
                }
            }
            "WORKDIR" => {
                self.working_dir = if rest.starts_with('/') {
                    rest.to_owned()
                } else {
                    // Relative to the previous WORKDIR, as Dockerfiles have it.
                    let base = if self.working_dir.is_empty() {
                        "/"
                    } else {
                        self.working_dir.as_str()
                    };
                    Path::new(base).join(rest).display().to_string()
                };
            }
            "USER" => rest.clone_into(&mut self.user),
            _ => {
                return Err(invalid(
                    "unsupported instruction (CMD, ENTRYPOINT, ENV, WORKDIR or USER)",
                ));
            }
        }
        Ok(())
    }

    /// The OCI image config's `config` object.
    pub(super) fn to_oci(&self) -> oci_spec::image::Config {
        let mut config = oci_spec::image::Config::default();
        let some = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        config.set_env(some(&self.env));
        config.set_entrypoint(some(&self.entrypoint));
        config.set_cmd(some(&self.cmd));
        config.set_working_dir((!self.working_dir.is_empty()).then(|| self.working_dir.clone()));
        config.set_user((!self.user.is_empty()).then(|| self.user.clone()));
        config
    }

    /// What an image config's `config` object says (absent fields empty).
    pub(super) fn from_oci(config: Option<&oci_spec::image::Config>) -> Self {
        let runtime = config.cloned().unwrap_or_default();
        Self {
            env: runtime.env().clone().unwrap_or_default(),
            entrypoint: runtime.entrypoint().clone().unwrap_or_default(),
            cmd: runtime.cmd().clone().unwrap_or_default(),
            working_dir: runtime.working_dir().clone().unwrap_or_default(),
            user: runtime.user().clone().unwrap_or_default(),
        }
    }
}

/// A `CMD`/`ENTRYPOINT` argument: a JSON array of strings (exec form), or
/// else a command line for `/bin/sh -c` (shell form), as Docker reads it.
fn exec_form(rest: &str) -> Vec<String> {
    if rest.starts_with('[')
        && let Ok(words) = serde_json::from_str::<Vec<String>>(rest)
    {
        return words;
    }
    vec!["/bin/sh".into(), "-c".into(), rest.to_owned()]
}

/// Splits `text` into words at unquoted whitespace; `"…"` and `'…'` quote,
/// a backslash escapes the next character (not inside single quotes).
/// `None` when a quote is not closed.
///
/// Not the CLI's splitter (`cli/src/flag_values.rs`) because Docker reads
/// the two with different grammars: these are the words of a Dockerfile
/// `ENV` instruction, which Docker reads with its Dockerfile lexer; the
/// CLI's are command flags, which docker's CLI splits with go-shlex. Where
/// this one departs from the Dockerfile lexer: inside double quotes a
/// backslash escapes any character (Docker: only `"`, `$` and `\`; before
/// anything else it stays), a trailing backslash is kept (Docker drops
/// it), and `$VAR` is not expanded.
fn shell_words(text: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => word.push(c),
            (_, '\\') => {
                word.push(chars.next().unwrap_or('\\'));
                in_word = true;
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (_, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return None;
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::{
        ImageStore,
        fixtures::{Entry, layer},
    };

    #[test]
    fn changes_parse_like_docker_import() {
        let config = ImageRuntimeConfig::from_changes(&[
            r#"CMD ["/usr/local/bin/whoami", "--port", "80"]"#,
            "entrypoint /bin/run me",
            "ENV PATH=/bin:/usr/bin GREETING=\"hello world\"",
            "ENV LEGACY some value",
            "ENV PATH=/sbin",
            "WORKDIR /srv",
            "WORKDIR data",
            "USER nobody:nogroup",
        ])
        .expect("valid changes");
        assert_eq!(config.cmd, ["/usr/local/bin/whoami", "--port", "80"]);
        assert_eq!(config.entrypoint, ["/bin/sh", "-c", "/bin/run me"]);
        assert_eq!(
            config.env,
            ["GREETING=hello world", "LEGACY=some value", "PATH=/sbin"]
        );
        assert_eq!(config.working_dir, "/srv/data");
        assert_eq!(config.user, "nobody:nogroup");
        // Not a JSON array: the shell form, as Docker falls back to.
        let shell = ImageRuntimeConfig::from_changes(&["CMD [oops"]).expect("shell form");
        assert_eq!(shell.cmd, ["/bin/sh", "-c", "[oops"]);
        for bad in ["EXPOSE 80", "CMD", "ENV", "ENV A=\"open", "ENV =x"] {
            let error = ImageRuntimeConfig::from_changes(&[bad]).expect_err(bad);
            assert!(error.to_string().starts_with("invalid change"), "{error}");
        }
    }

    #[test]
    fn imported_changes_come_back_from_unpack() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ImageStore::new(dir.path().join("images"));
        let runtime =
            ImageRuntimeConfig::from_changes(&[r#"CMD ["/hello"]"#, "ENV A=1", "USER 65534"])
                .expect("changes");
        store
            .import_with(
                &mut layer(&[Entry::File("hello", 0o755, b"hi")]).as_slice(),
                "demo",
                "now",
                &runtime,
            )
            .expect("import");
        let unpacked = store
            .unpack("demo", &dir.path().join("rootfs"))
            .expect("unpack");
        assert_eq!(unpacked, runtime);
    }
}
