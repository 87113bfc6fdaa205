//! Owns a log line's level: the closed set `log_level` takes, and parsing it from NATS
//! server tags, logfmt and JSON lines. The set is closed so the label stays
//! low-cardinality.

/// The levels `log_level` can take; `UNKNOWN` is the documented fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
    Unknown,
}

/// How many levels there are: `Level as usize` indexes arrays of this length.
pub const LEVELS: usize = Level::Unknown as usize + 1;

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
            Level::Fatal => "FATAL",
            Level::Unknown => "UNKNOWN",
        }
    }

    fn from_word(w: &str) -> Option<Level> {
        Some(match w.to_ascii_lowercase().as_str() {
            "trace" | "trc" => Level::Trace,
            "debug" | "dbg" => Level::Debug,
            "info" | "inf" | "information" | "notice" => Level::Info,
            "warn" | "warning" | "wrn" => Level::Warn,
            "error" | "err" | "eror" => Level::Error,
            "fatal" | "ftl" | "critical" | "crit" | "panic" | "emerg" | "alert" => Level::Fatal,
            _ => return None,
        })
    }
}

/// Parses the level of a line: the NATS server tag (`[INF]`, possibly wrapped in ANSI colour
/// codes on TTY containers), then logfmt `level=`, then JSON `"level":`.
pub fn parse_level(line: &str) -> Level {
    nats_level(line)
        .or_else(|| logfmt_level(line))
        .or_else(|| json_level(line))
        .unwrap_or(Level::Unknown)
}

fn nats_level(line: &str) -> Option<Level> {
    nats_tag(line).map(|(level, _)| level)
}

/// `[1] 2024/01/02 15:04:05.123456 [INF] ...`: the tag is the first bracket group after
/// the date and time; its level, and the byte offset just past its `]` (where the
/// message begins). Only the head of the line is looked at.
pub fn nats_tag(line: &str) -> Option<(Level, usize)> {
    let head = &line.as_bytes()[..line.len().min(96)];
    let mut i = 0;
    while i < head.len() {
        if head[i] == b'[' {
            // Skip ANSI escapes such as "\x1b[32m" inside the tag.
            let mut j = i + 1;
            let mut tag = Vec::with_capacity(3);
            while j < head.len() && head[j] != b']' {
                if head[j] == 0x1b {
                    while j < head.len() && head[j] != b'm' {
                        j += 1;
                    }
                } else if head[j].is_ascii_alphabetic() {
                    tag.push(head[j]);
                } else if !(head[j] == b'[' || head[j].is_ascii_digit() || head[j] == b';') {
                    break;
                }
                j += 1;
            }
            if tag.len() == 3 && j < head.len() && head[j] == b']' {
                let level = match &tag[..] {
                    b"INF" => Some(Level::Info),
                    b"WRN" => Some(Level::Warn),
                    b"ERR" => Some(Level::Error),
                    b"DBG" => Some(Level::Debug),
                    b"TRC" => Some(Level::Trace),
                    b"FTL" => Some(Level::Fatal),
                    _ => None,
                };
                if let Some(level) = level {
                    return Some((level, j + 1));
                }
            }
        }
        i += 1;
    }
    None
}

fn logfmt_level(line: &str) -> Option<Level> {
    let pos = line.find("level=")?;
    if pos > 0 && !line.as_bytes()[pos - 1].is_ascii_whitespace() {
        return None;
    }
    let v = &line[pos + 6..];
    let v = v.trim_start_matches('"');
    let end = v
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(v.len());
    Level::from_word(&v[..end])
}

fn json_level(line: &str) -> Option<Level> {
    let t = line.trim_start();
    if !t.starts_with('{') {
        return None;
    }
    for key in ["\"level\"", "\"lvl\"", "\"severity\""] {
        if let Some(p) = t.find(key) {
            let rest = t[p + key.len()..]
                .trim_start()
                .strip_prefix(':')?
                .trim_start()
                .strip_prefix('"')?;
            let end = rest.find('"')?;
            return Level::from_word(&rest[..end]);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_tags() {
        assert_eq!(
            parse_level("[1] 2024/01/02 15:04:05.123456 [INF] Server is ready"),
            Level::Info
        );
        assert_eq!(
            parse_level("[7] 2024/01/02 15:04:05.123456 [WRN] slow"),
            Level::Warn
        );
        assert_eq!(
            parse_level("[7] 2024/01/02 15:04:05.123456 [ERR] boom"),
            Level::Error
        );
        assert_eq!(
            parse_level("[7] 2024/01/02 15:04:05.123456 [DBG] x"),
            Level::Debug
        );
        assert_eq!(
            parse_level("[7] 2024/01/02 15:04:05.123456 [TRC] x"),
            Level::Trace
        );
        assert_eq!(
            parse_level("[7] 2024/01/02 15:04:05.123456 [FTL] x"),
            Level::Fatal
        );
        assert_eq!(
            parse_level("[1] 2024/01/02 15:04:05.123456 [\x1b[32mINF\x1b[0m] tty"),
            Level::Info
        );
        assert_eq!(
            parse_level("[1] 2024/01/02 15:04:05.123456 [\x1b[31mERR\x1b[0m] tty"),
            Level::Error
        );
        assert_eq!(
            parse_level("[1] 2024/01/02 15:04:05.123456 [\x1b[33;1mWRN\x1b[0m] tty"),
            Level::Warn
        );
    }

    #[test]
    fn other_forms_and_fallback() {
        assert_eq!(parse_level("ts=1 level=warn msg=x"), Level::Warn);
        assert_eq!(parse_level("level=\"error\" msg=x"), Level::Error);
        assert_eq!(parse_level(r#"{"level":"debug","msg":"x"}"#), Level::Debug);
        assert_eq!(
            parse_level(r#"{"msg":"x", "severity": "CRITICAL"}"#),
            Level::Fatal
        );
        assert_eq!(parse_level("just text [not a tag]"), Level::Unknown);
        assert_eq!(parse_level("xlevel=warn"), Level::Unknown);
        assert_eq!(parse_level(""), Level::Unknown);
    }
}
