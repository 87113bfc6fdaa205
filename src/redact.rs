//! Owns what keeps secrets out of text: URLs without their userinfo or query, and error
//! chains that say why without naming a URL.

/// Removes userinfo and query from anything URL-like, for error messages about URLs that
/// failed to parse and so could not be cleaned structurally.
pub fn redact_url(s: &str) -> String {
    let (scheme, rest) = match s.split_once("://") {
        Some((a, b)) => (Some(a), b),
        None => (None, s),
    };
    let rest = match rest.rfind('@') {
        Some(at) if rest[..at].find('/').is_none() => format!("REDACTED@{}", &rest[at + 1..]),
        _ => rest.to_string(),
    };
    let rest = rest.split('?').next().unwrap_or_default().to_string();
    match scheme {
        Some(sc) => format!("{sc}://{rest}"),
        None => rest,
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
    }
}
