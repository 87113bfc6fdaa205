//! Owns the validated settings of natsmon's own HTTP port: the listen address, TLS, and
//! the basic auth users.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::ConfigError;
use super::raw::{DEFAULT_LISTEN, RawConfig};

#[derive(Debug, Clone, Default)]
pub struct WebSettings {
    pub tls: Option<(PathBuf, PathBuf)>,
    /// User to bcrypt hash.
    pub basic_auth_users: BTreeMap<String, String>,
}

/// The listen address; `:7778` means every interface, as in Prometheus.
pub(super) fn listen(v: Option<&str>) -> Result<SocketAddr, ConfigError> {
    let listen = v.unwrap_or(DEFAULT_LISTEN).trim();
    let full;
    let listen = if listen.starts_with(':') {
        full = format!("0.0.0.0{listen}");
        full.as_str()
    } else {
        listen
    };
    listen.parse().map_err(|e| ConfigError::Invalid {
        option: "listen",
        why: format!("{listen}: {e}"),
    })
}

impl WebSettings {
    pub(super) fn from_raw(raw: &RawConfig) -> Result<WebSettings, ConfigError> {
        let tls = match (&raw.web_tls_cert_file, &raw.web_tls_key_file) {
            (Some(c), Some(k)) => Some((c.clone(), k.clone())),
            (None, None) => None,
            _ => {
                return Err(ConfigError::Invalid {
                    option: "web-tls-cert-file",
                    why: "needs --web-tls-key-file too".into(),
                });
            }
        };
        Ok(WebSettings {
            tls,
            basic_auth_users: basic_auth_users(raw.web_basic_auth_users.as_deref())?,
        })
    }
}

/// `USER:BCRYPT_HASH` entries, as in Prometheus's web config.
fn basic_auth_users(entries: Option<&[String]>) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut users = BTreeMap::new();
    for entry in entries.unwrap_or_default() {
        let Some((user, hash)) = entry.trim().split_once(':') else {
            return Err(ConfigError::Invalid {
                option: "web-basic-auth-users",
                why: "expected USER:BCRYPT_HASH".into(),
            });
        };
        if hash.parse::<bcrypt::HashParts>().is_err() {
            return Err(ConfigError::Invalid {
                option: "web-basic-auth-users",
                why: format!("the hash of user {user} is not a bcrypt hash"),
            });
        }
        users.insert(user.to_string(), hash.to_string());
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_port_listens_everywhere() {
        assert_eq!(listen(Some(":7778")).unwrap().to_string(), "0.0.0.0:7778");
        assert_eq!(
            listen(Some("127.0.0.1:1")).unwrap().to_string(),
            "127.0.0.1:1"
        );
        assert!(listen(Some("7778")).is_err());
    }
}
