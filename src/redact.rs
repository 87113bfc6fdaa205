//! Owns what keeps secrets out of text: URLs without their userinfo or query, and error
//! chains that say why without naming a URL.

/// Removes userinfo, query and fragment from anything URL-like, for messages about URLs
/// that failed to parse and so could not be cleaned structurally. Whatever the userinfo
/// holds (a password may contain `/`, `?`, `#` or `@`), everything before the last `@`
/// goes: redacting part of a path by mistake is harmless, showing a password is not.
pub fn redact_url(s: &str) -> String {
    let (scheme, rest) = match s.split_once("://") {
        Some((a, b)) => (Some(a), b),
        None => (None, s),
    };
    let rest = match rest.rfind('@') {
        Some(at) => format!("REDACTED@{}", &rest[at + 1..]),
        None => rest.to_string(),
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    match scheme {
        Some(sc) => format!("{sc}://{rest}"),
        None => rest.to_string(),
    }
}

/// reqwest's top-level message is generic ("error sending request"); the cause says why.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction() {
        assert_eq!(
            redact_url("http://user:secret@host:1/x?token=abc"),
            "http://REDACTED@host:1/x"
        );
        assert!(!redact_url("user:secret@host").contains("secret"));
        for tricky in [
            "http://user:abc/def@127.0.0.1:8222",
            "http://user:a?b#c@127.0.0.1:8222/x",
            "http://user:a@b/c@127.0.0.1:8222",
            "user:p/w@host:1",
        ] {
            let r = redact_url(tricky);
            assert!(
                !r.contains("user") && !r.contains("abc") && !r.contains("a?b"),
                "{r}"
            );
            assert!(r.contains("8222") || r.contains("host:1"), "{r}");
        }
    }
}
