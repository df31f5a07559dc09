//! AWS credentials from the standard chain, as the AWS SDKs and CLI read it, minus the network
//! sources: the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`), then the profile `AWS_PROFILE` (default `default`) of the shared
//! credentials file (`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`), then of the
//! shared config file (`AWS_CONFIG_FILE`, default `~/.aws/config`, where the section is
//! `[profile NAME]`). Container and instance metadata endpoints, SSO, `credential_process`
//! and role assumption are not read: a profile that only has those is an error that says so.

use std::path::{Path, PathBuf};

use wicket_sigv4::Credentials;

/// Why no credentials were found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error("{0} is set but {1} is not: set both, or neither to use the shared files")]
    HalfEnvironment(&'static str, &'static str),
    #[error("cannot read {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("{path}:{line}: {message}")]
    Malformed {
        path: String,
        line: usize,
        message: String,
    },
    #[error("profile {profile:?} in {path} has no aws_access_key_id and aws_secret_access_key (it sets {only}, which Wicket does not run: give it static keys, or export them in the environment)")]
    Unsupported {
        profile: String,
        path: String,
        only: String,
    },
    #[error("profile {profile:?} in {path} sets {have} without {missing}")]
    HalfProfile {
        profile: String,
        path: String,
        have: &'static str,
        missing: &'static str,
    },
    #[error("no AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set, and profile {profile:?} is in neither {credentials} nor {config} (container and instance metadata are not read)")]
    NotFound {
        profile: String,
        credentials: String,
        config: String,
    },
}

/// Where the chain looks: the process environment, as a lookup so tests can give their own.
pub struct Chain<'a> {
    pub var: &'a dyn Fn(&str) -> Option<String>,
    pub home: Option<PathBuf>,
}

impl Chain<'_> {
    /// The chain of this process.
    pub fn resolve_process() -> Result<Credentials, CredentialsError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Chain {
            var: &var,
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
        .resolve()
    }

    pub fn resolve(&self) -> Result<Credentials, CredentialsError> {
        let var = |n: &str| (self.var)(n).filter(|v| !v.is_empty());
        match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(id), Some(secret)) => {
                return Ok(Credentials {
                    access_key_id: id,
                    secret_access_key: secret,
                    session_token: var("AWS_SESSION_TOKEN"),
                })
            }
            (Some(_), None) => {
                return Err(CredentialsError::HalfEnvironment(
                    "AWS_ACCESS_KEY_ID",
                    "AWS_SECRET_ACCESS_KEY",
                ))
            }
            (None, Some(_)) => {
                return Err(CredentialsError::HalfEnvironment(
                    "AWS_SECRET_ACCESS_KEY",
                    "AWS_ACCESS_KEY_ID",
                ))
            }
            (None, None) => {}
        }
        let profile = var("AWS_PROFILE").unwrap_or_else(|| "default".to_owned());
        let in_home = |rel: &str| {
            self.home
                .as_ref()
                .map(|h| h.join(rel))
                .unwrap_or_else(|| PathBuf::from("~").join(rel))
        };
        let credentials_file = var("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| in_home(".aws/credentials"));
        let config_file = var("AWS_CONFIG_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| in_home(".aws/config"));
        if let Some(c) = from_file(&credentials_file, &profile, &profile)? {
            return Ok(c);
        }
        let section = if profile == "default" {
            "default".to_owned()
        } else {
            format!("profile {profile}")
        };
        if let Some(c) = from_file(&config_file, &section, &profile)? {
            return Ok(c);
        }
        Err(CredentialsError::NotFound {
            profile,
            credentials: credentials_file.display().to_string(),
            config: config_file.display().to_string(),
        })
    }
}

/// The credentials of `section` in the INI file at `path`; `None` when the file or the
/// section does not exist.
fn from_file(
    path: &Path,
    section: &str,
    profile: &str,
) -> Result<Option<Credentials>, CredentialsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(CredentialsError::Unreadable {
                path: path.display().to_string(),
                reason: e.to_string(),
            })
        }
    };
    let shown = path.display().to_string();
    let Some(keys) = ini_section(&text, section, &shown)? else {
        return Ok(None);
    };
    let get = |k: &str| {
        keys.iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    match (get("aws_access_key_id"), get("aws_secret_access_key")) {
        (Some(id), Some(secret)) => Ok(Some(Credentials {
            access_key_id: id,
            secret_access_key: secret,
            session_token: get("aws_session_token"),
        })),
        (Some(_), None) => Err(CredentialsError::HalfProfile {
            profile: profile.to_owned(),
            path: shown,
            have: "aws_access_key_id",
            missing: "aws_secret_access_key",
        }),
        (None, Some(_)) => Err(CredentialsError::HalfProfile {
            profile: profile.to_owned(),
            path: shown,
            have: "aws_secret_access_key",
            missing: "aws_access_key_id",
        }),
        (None, None) => {
            let unsupported: Vec<&str> = [
                "role_arn",
                "source_profile",
                "credential_process",
                "sso_session",
                "sso_start_url",
                "credential_source",
                "web_identity_token_file",
            ]
            .into_iter()
            .filter(|k| get(k).is_some())
            .collect();
            if unsupported.is_empty() {
                // A section with only a region or output: the profile's keys are elsewhere.
                Ok(None)
            } else {
                Err(CredentialsError::Unsupported {
                    profile: profile.to_owned(),
                    path: shown,
                    only: unsupported.join(", "),
                })
            }
        }
    }
}

/// The `key = value` pairs of `[section]` (every occurrence of it, in order), or `None` when
/// the file has no such section. `#` and `;` start comment lines; an indented line continues
/// a nested block (`s3 =` sub-settings), which is skipped.
fn ini_section(
    text: &str,
    section: &str,
    path: &str,
) -> Result<Option<Vec<(String, String)>>, CredentialsError> {
    let mut found = false;
    let mut inside = false;
    let mut keys = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let Some(name) = rest.strip_suffix(']') else {
                return Err(CredentialsError::Malformed {
                    path: path.to_owned(),
                    line: i + 1,
                    message: format!("section header {line:?} does not end with ']'"),
                });
            };
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            inside = name == section;
            found |= inside;
            continue;
        }
        if !inside || raw.starts_with([' ', '\t']) {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(CredentialsError::Malformed {
                path: path.to_owned(),
                line: i + 1,
                message: "expected `key = value`".to_owned(),
            });
        };
        keys.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    Ok(found.then_some(keys))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(env: &[(&str, &str)], home: Option<&Path>) -> Result<Credentials, CredentialsError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let var = move |n: &str| env.get(n).cloned();
        Chain {
            var: &var,
            home: home.map(Path::to_path_buf),
        }
        .resolve()
    }

    fn home_with(credentials: Option<&str>, config: Option<&str>) -> tempfile::TempDir {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join(".aws")).unwrap();
        if let Some(c) = credentials {
            std::fs::write(home.path().join(".aws/credentials"), c).unwrap();
        }
        if let Some(c) = config {
            std::fs::write(home.path().join(".aws/config"), c).unwrap();
        }
        home
    }

    #[test]
    fn the_environment_comes_first() {
        let home = home_with(
            Some("[default]\naws_access_key_id = FILE\naws_secret_access_key = f\n"),
            None,
        );
        let c = resolve(
            &[
                ("AWS_ACCESS_KEY_ID", "ENV"),
                ("AWS_SECRET_ACCESS_KEY", "e"),
                ("AWS_SESSION_TOKEN", "tok"),
            ],
            Some(home.path()),
        )
        .unwrap();
        assert_eq!(c, Credentials::new("ENV", "e", Some("tok")));
        assert_eq!(
            resolve(&[("AWS_ACCESS_KEY_ID", "ENV")], Some(home.path())),
            Err(CredentialsError::HalfEnvironment(
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY"
            ))
        );
    }

    #[test]
    fn then_the_profile_of_the_credentials_file_then_the_config_file() {
        let home = home_with(
            Some(
                "# keys\n[default]\naws_access_key_id=DEF\naws_secret_access_key = d \n\n\
                 [ci]\naws_access_key_id = CI\naws_secret_access_key = c\naws_session_token = t\n",
            ),
            Some(
                "[default]\nregion = us-east-1\n[profile other]\naws_access_key_id = O\n\
                 aws_secret_access_key = o\ns3 =\n  addressing_style = path\n",
            ),
        );
        assert_eq!(
            resolve(&[], Some(home.path())).unwrap(),
            Credentials::new("DEF", "d", None)
        );
        assert_eq!(
            resolve(&[("AWS_PROFILE", "ci")], Some(home.path())).unwrap(),
            Credentials::new("CI", "c", Some("t"))
        );
        assert_eq!(
            resolve(&[("AWS_PROFILE", "other")], Some(home.path())).unwrap(),
            Credentials::new("O", "o", None)
        );
        let err = resolve(&[("AWS_PROFILE", "nobody")], Some(home.path())).unwrap_err();
        assert!(matches!(err, CredentialsError::NotFound { .. }), "{err}");
        assert!(err.to_string().contains("\"nobody\""), "{err}");
    }

    #[test]
    fn the_files_can_be_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("creds.ini");
        std::fs::write(
            &file,
            "[default]\naws_access_key_id = X\naws_secret_access_key = y\n",
        )
        .unwrap();
        let c = resolve(
            &[("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap())],
            None,
        )
        .unwrap();
        assert_eq!(c.access_key_id, "X");
    }

    #[test]
    fn profiles_it_cannot_use_are_named() {
        let home = home_with(
            None,
            Some("[profile sso]\nsso_start_url = https://x\nregion = eu-west-1\n"),
        );
        let err = resolve(&[("AWS_PROFILE", "sso")], Some(home.path())).unwrap_err();
        assert!(err.to_string().contains("sso_start_url"), "{err}");
        let home = home_with(Some("[default]\naws_access_key_id = X\n"), None);
        let err = resolve(&[], Some(home.path())).unwrap_err();
        assert!(
            err.to_string().contains("without aws_secret_access_key"),
            "{err}"
        );
        let home = home_with(Some("[default\naws_access_key_id = X\n"), None);
        let err = resolve(&[], Some(home.path())).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("credentials:1: section header \"[default\" does not end with ']'"),
            "{err}"
        );
        assert!(matches!(
            resolve(&[], Some(Path::new("/nonexistent"))),
            Err(CredentialsError::NotFound { .. })
        ));
    }
}
