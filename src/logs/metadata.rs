//! Owns a NATS log line's structured metadata for Loki: the fields that identify one
//! connection or account (`cid`, `remote_addr`, `account`), which would make a label's
//! cardinality unbounded but are worth querying. Only lines in nats-server's own format
//! get any; everything else ships with none.

use super::level::nats_tag;

/// Loki's default `max_structured_metadata_entries_count` is 128 and a value is bounded
/// too; a field longer than this is not an identifier but a parse gone wrong.
const MAX_VALUE: usize = 256;

/// The metadata of one line, borrowed from it, in a fixed order.
pub fn nats_fields(line: &str) -> Vec<(&'static str, &str)> {
    let Some(msg) = after_tag(line) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    // Connection lines: `127.0.0.1:54668 - cid:6 - "app1" - "APP/user:a" - Client ...`;
    // routes, gateways and leaf nodes say rid:, gid: and lid: instead of cid:.
    let mut parts = msg.split(" - ");
    if let (Some(addr), Some(id)) = (parts.next(), parts.next())
        && looks_like_addr(addr)
        && let Some((kind, n)) = id.split_once(':')
        && matches!(kind, "cid" | "rid" | "gid" | "lid")
        && !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit())
    {
        out.push(("remote_addr", addr));
        if kind == "cid" {
            out.push(("cid", n));
        }
        // From 2.10 an authenticated client's prefix carries `"ACCOUNT/user:NAME"`.
        if let Some(acc) = parts.take(3).find_map(account_of_user) {
            out.push(("account", acc));
        }
    }
    if !out.iter().any(|(k, _)| *k == "account")
        && let Some(acc) = stream_account(msg).or_else(|| quoted_account(msg))
    {
        out.push(("account", acc));
    }
    out.retain(|(_, v)| !v.is_empty() && v.len() <= MAX_VALUE);
    out
}

/// The message after nats-server's level tag (`level::nats_tag` finds it, also wrapped
/// in a TTY container's ANSI colour codes).
fn after_tag(line: &str) -> Option<&str> {
    nats_tag(line).map(|(_, end)| line[end..].trim_start())
}

/// `host:port` or `[v6]:port`, as nats-server prints a peer.
fn looks_like_addr(s: &str) -> bool {
    let Some((host, port)) = s.rsplit_once(':') else {
        return false;
    };
    !host.is_empty()
        && !host.contains(' ')
        && !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
}

/// `"APP/user:a"` (a client's account and user) names the account `APP`.
fn account_of_user(seg: &str) -> Option<&str> {
    let inner = seg.strip_prefix('"')?.strip_suffix('"')?;
    let (acc, rest) = inner.split_once('/')?;
    let (kind, _) = rest.split_once(':')?;
    (!acc.is_empty() && !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_alphabetic()))
        .then_some(acc)
}

/// JetStream names a stream `'ACCOUNT > STREAM'`.
fn stream_account(msg: &str) -> Option<&str> {
    let start = msg.find('\'')? + 1;
    let end = msg[start..].find('\'')? + start;
    let (acc, _) = msg[start..end].split_once(" > ")?;
    (!acc.is_empty()).then_some(acc)
}

/// `... for account "APP" ...`.
fn quoted_account(msg: &str) -> Option<&str> {
    let lower = msg.to_ascii_lowercase();
    let i = lower.find("account \"")? + "account \"".len();
    let end = msg[i..].find('"')? + i;
    Some(&msg[i..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    // Lines as nats-server 2.12.8 wrote them (captured with -D).
    #[test]
    fn client_lines_give_address_cid_and_account() {
        let l = r#"[25851] 2026/12/03 13:57:45.471489 [DBG] 127.0.0.1:54668 - cid:6 - "app1" - "APP/user:a" - Client connection closed: Client Closed"#;
        assert_eq!(
            nats_fields(l),
            [
                ("remote_addr", "127.0.0.1:54668"),
                ("cid", "6"),
                ("account", "APP")
            ]
        );
        let l = r#"[25851] 2026/12/03 13:57:45.471287 [ERR] 127.0.0.1:54670 - cid:10 - authentication error - User "a""#;
        assert_eq!(
            nats_fields(l),
            [("remote_addr", "127.0.0.1:54670"), ("cid", "10")]
        );
    }

    #[test]
    fn routes_give_the_address_only() {
        let l = "[14921] 2026/12/02 00:03:29.068410 [INF] 127.0.0.1:43639 - rid:10 - Route connection created";
        assert_eq!(nats_fields(l), [("remote_addr", "127.0.0.1:43639")]);
        let l =
            "[1] 2026/12/02 00:03:29.068410 [INF] [::1]:4248 - lid:3 - Leafnode connection created";
        assert_eq!(nats_fields(l), [("remote_addr", "[::1]:4248")]);
    }

    #[test]
    fn jetstream_lines_give_the_account() {
        let l = "[1] 2026/12/02 00:03:29.382569 [INF] JetStream cluster new stream leader for 'APP > ORDERS'";
        assert_eq!(nats_fields(l), [("account", "APP")]);
        let l = r#"[25851] 2026/12/03 13:57:43.887502 [DBG] Enabled JetStream for account "APP""#;
        assert_eq!(nats_fields(l), [("account", "APP")]);
    }

    #[test]
    fn tty_colour_codes_are_read_through() {
        let l = "[1] 2026/12/02 00:03:29.068410 [\x1b[32mINF\x1b[0m] 10.0.0.2:5000 - cid:7 - Client connection created";
        assert_eq!(
            nats_fields(l),
            [("remote_addr", "10.0.0.2:5000"), ("cid", "7")]
        );
    }

    #[test]
    fn other_lines_get_none() {
        for l in [
            "",
            "hello world",
            "level=info msg=\"account \\\"X\\\"\" cid:5",
            "[1] 2026/12/02 00:03:29.068410 [INF] Server is ready",
            "[1] 2026/12/02 00:03:29.068410 [INF] Listening for client connections on 0.0.0.0:4222",
            "{\"level\":\"info\",\"msg\":\"127.0.0.1:1 - cid:5 - x\"}",
            "[1] 2026/12/02 00:03:29.068410 [INF] 127.0.0.1:5 - cid:x - nope",
        ] {
            assert!(nats_fields(l).is_empty(), "{l:?} -> {:?}", nats_fields(l));
        }
    }
}
