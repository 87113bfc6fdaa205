//! Owns basic auth on port 7778: bcrypt hashes as in Prometheus's web config, verified
//! off the async runtime with bounded concurrency, so that a flood of wrong passwords
//! costs CPU on a bounded pool and never stalls the pollers or the scrapes.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, header};
use tokio::sync::Semaphore;

/// Users and bcrypt hashes, with a cache of credentials already verified: bcrypt costs
/// tens of milliseconds by design, which would otherwise be paid on every scrape.
pub struct BasicAuth {
    users: BTreeMap<String, String>,
    verified: Mutex<HashSet<(String, String)>>,
    /// A hash of the users' cost for unknown users, so that a wrong user costs the same
    /// time as a wrong password and the timing tells an attacker nothing.
    decoy: Option<String>,
    /// Bounds how many bcrypt verifications run at once.
    slots: Arc<Semaphore>,
}

impl Default for BasicAuth {
    /// No users: auth is off.
    fn default() -> Self {
        BasicAuth::new(BTreeMap::new())
    }
}

impl BasicAuth {
    pub fn new(users: BTreeMap<String, String>) -> BasicAuth {
        let cost = users
            .values()
            .filter_map(|h| h.parse::<bcrypt::HashParts>().ok())
            .map(|p| p.get_cost())
            .max();
        let decoy = cost.and_then(|c| bcrypt::hash("natsmon decoy password", c).ok());
        // Half the cores: the other half stays free for polling and scrapes.
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        BasicAuth {
            users,
            verified: Mutex::default(),
            decoy,
            slots: Arc::new(Semaphore::new((cores / 2).max(1))),
        }
    }

    pub fn enabled(&self) -> bool {
        !self.users.is_empty()
    }

    pub async fn check(&self, headers: &HeaderMap) -> bool {
        let Some((user, pass)) = credentials(headers) else {
            return false;
        };
        let key = (user, pass);
        if self
            .verified
            .lock()
            .expect("auth cache poisoned")
            .contains(&key)
        {
            return true;
        }
        let (known, hash) = match (self.users.get(&key.0), &self.decoy) {
            (Some(h), _) => (true, h.clone()),
            (None, Some(d)) => (false, d.clone()),
            (None, None) => return false,
        };
        let Ok(_slot) = self.slots.acquire().await else {
            return false;
        };
        let pass = key.1.clone();
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(&pass, &hash).unwrap_or(false))
            .await
            .unwrap_or(false);
        let ok = ok && known;
        if ok {
            self.verified
                .lock()
                .expect("auth cache poisoned")
                .insert(key);
        }
        ok
    }
}

/// The user and password of an `Authorization: Basic` header; the scheme name is
/// case-insensitive (RFC 7617).
fn credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, b64) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = String::from_utf8(decode_base64(b64.trim())?).ok()?;
    let (u, p) = raw.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= val(*c)? << (18 - 6 * i);
        }
        let n = match chunk.len() {
            4 => 3,
            3 => 2,
            2 => 1,
            _ => return None,
        };
        out.extend_from_slice(&acc.to_be_bytes()[1..1 + n]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn base64_decodes() {
        assert_eq!(decode_base64("dXNlcjpwYXNz").unwrap(), b"user:pass");
        assert_eq!(decode_base64("YQ==").unwrap(), b"a");
        assert!(decode_base64("!!!").is_none());
    }

    fn with_auth(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn the_scheme_name_is_case_insensitive() {
        for scheme in ["Basic", "basic", "BASIC", "bAsIc"] {
            assert_eq!(
                credentials(&with_auth(&format!("{scheme} dXNlcjpwYXNz"))),
                Some(("user".into(), "pass".into())),
                "{scheme}"
            );
        }
        assert_eq!(credentials(&with_auth("Bearer dXNlcjpwYXNz")), None);
    }

    #[tokio::test]
    async fn unknown_users_pay_the_bcrypt_cost_and_are_refused() {
        let mut users = BTreeMap::new();
        users.insert("prom".to_string(), bcrypt::hash("right", 6).unwrap());
        let auth = BasicAuth::new(users);
        let time = |v: &'static str| {
            let auth = &auth;
            async move {
                let t = std::time::Instant::now();
                let ok = auth.check(&with_auth(v)).await;
                (ok, t.elapsed())
            }
        };
        // prom:right, prom:wrong, nobody:right
        let (ok, _) = time("Basic cHJvbTpyaWdodA==").await;
        assert!(ok);
        let (wrong_pw, t_wrong) = time("Basic cHJvbTp3cm9uZw==").await;
        let (unknown, t_unknown) = time("Basic bm9ib2R5OnJpZ2h0").await;
        assert!(!wrong_pw && !unknown);
        // Both ran bcrypt at the users' cost: same order of magnitude, not 0.1 ms vs 5 ms.
        assert!(
            t_unknown * 4 > t_wrong && t_wrong * 4 > t_unknown,
            "wrong password {t_wrong:?}, unknown user {t_unknown:?}"
        );
    }
}
