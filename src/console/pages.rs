//! Owns the console's HTML, rendered on the server so every page reads without
//! JavaScript: the overview (`/`), `/streams` and `/consumers`. `assets/console.js`
//! builds the same markup from `/api/v1/status` to refresh a page in place; a change to
//! a table here needs the same change there.
//!
//! Every value from the cluster, Docker or a peer's error goes through `esc`; the only
//! unescaped text is this file's own literals.

use std::fmt::Write as _;

use super::format::{bytes, duration, esc, int, millis, percent, span, time};
use super::model::{
    self, AccountRow, ClusterStatus, ConsumerRow, JetStreamUse, MeshRow, NodeRow, NodeState,
    Overview, PeerRow, Shipping, StreamRow,
};
use super::query::TableQuery;
use crate::nats::view::{ConsumerView, PeerView, StreamView};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Overview,
    Streams,
    Consumers,
}

impl Page {
    fn id(self) -> &'static str {
        match self {
            Page::Overview => "overview",
            Page::Streams => "streams",
            Page::Consumers => "consumers",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Page::Overview => "Overview",
            Page::Streams => "Streams",
            Page::Consumers => "Consumers",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Page::Overview => "/",
            Page::Streams => "/streams",
            Page::Consumers => "/consumers",
        }
    }
}

const DASH: &str = "—";

const FRAME_END: &str = "</main></body></html>\n";

/// The page around `main`: head, navigation, the live indicator the script updates; the
/// part before `main`'s content, and the part after.
pub fn frame(page: Page, o: &Overview<'_>) -> (String, &'static str) {
    let mut h = String::with_capacity(2048);
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>natsmon · {title}</title>\
         <link rel=\"icon\" href=\"data:,\">\
         <link rel=\"stylesheet\" href=\"/console.css\">\
         <script src=\"/console.js\" defer></script></head>\
         <body data-page=\"{id}\" data-interval=\"{interval}\">\
         <header><a class=\"brand\" href=\"/\">natsmon</a><nav>",
        title = page.title(),
        id = page.id(),
        interval = o.natsmon.poll_interval_seconds,
    );
    for p in [Page::Overview, Page::Streams, Page::Consumers] {
        let current = if p == page {
            " aria-current=\"page\""
        } else {
            ""
        };
        let _ = write!(h, "<a href=\"{}\"{current}>{}</a>", p.path(), p.title());
    }
    let _ = write!(
        h,
        "<a href=\"/api/v1/status\">JSON</a><a href=\"/metrics\">Metrics</a></nav>\
         <span id=\"live\" class=\"live\">rendered {}</span></header><main id=\"main\">",
        time(o.generated_at)
    );
    (h, FRAME_END)
}

fn opt_int(v: Option<u64>) -> String {
    v.map_or_else(|| DASH.to_string(), int)
}

fn ago(now: f64, t: f64) -> String {
    format!("{} ago", duration(now - t))
}

/// `used / limit` with a meter when there is a limit.
fn usage(h: &mut String, used: u64, limit: Option<u64>) {
    match limit.filter(|l| *l > 0) {
        Some(l) => {
            let r = used as f64 / l as f64;
            let _ = write!(
                h,
                "{} / {} <meter min=\"0\" max=\"1\" value=\"{:.4}\"></meter> {}",
                bytes(used),
                bytes(l),
                r.min(1.0),
                percent(r)
            );
        }
        None => h.push_str(&bytes(used)),
    }
}

fn js_cell(h: &mut String, k: &str, js: Option<&JetStreamUse>, memory: bool) {
    let _ = write!(h, "<td data-k=\"{k}\">");
    match js {
        Some(j) if memory => usage(h, j.memory_bytes, j.memory_limit_bytes),
        Some(j) => usage(h, j.storage_bytes, j.storage_limit_bytes),
        None => h.push_str(DASH),
    }
    h.push_str("</td>");
}

fn td(h: &mut String, k: &str, text: &str) {
    let _ = write!(h, "<td data-k=\"{k}\">{}</td>", esc(text));
}

fn td_num(h: &mut String, k: &str, text: &str) {
    let _ = write!(h, "<td data-k=\"{k}\" class=\"num\">{}</td>", esc(text));
}

/// A cell of the stream and consumer tables, which have thousands of rows: no
/// attributes, the column's header names it (`th[data-k]`) and the stylesheet aligns it.
fn cell(h: &mut String, text: &str) {
    let _ = write!(h, "<td>{}</td>", esc(text));
}

fn link(h: &mut String, href: &str, text: &str) {
    let _ = write!(h, "<a href=\"{}\">{}</a>", esc(href), esc(text));
}

pub fn overview_main(o: &Overview<'_>) -> String {
    let mut h = String::with_capacity(16 * 1024);
    self_section(&mut h, o);
    if !o.natsmon.roles.contains(&"exporter") {
        h.push_str(
            "<section id=\"exporter-off\"><h2>NATS</h2><p>This natsmon ships logs only \
             (<code>--roles shipper</code>): it polls no NATS node. The cluster is on the \
             console of the natsmon that exports it.</p></section>",
        );
    }
    for c in &o.clusters {
        cluster_section(&mut h, o, c);
    }
    accounts_section(&mut h, &o.accounts);
    shipping_section(&mut h, o.generated_at, &o.log_shipping);
    h
}

fn self_section(h: &mut String, o: &Overview<'_>) {
    let n = &o.natsmon;
    let t = &o.totals;
    let _ = write!(
        h,
        "<section id=\"self\"><h2>natsmon</h2><dl class=\"facts\">\
         <dt>version</dt><dd data-k=\"version\">{}</dd>\
         <dt>roles</dt><dd data-k=\"roles\">{}</dd>\
         <dt>uptime</dt><dd data-k=\"uptime\">{} (since {})</dd>\
         <dt>poll interval</dt><dd data-k=\"poll_interval\">{} (timeout {})</dd>\
         <dt>last cycle</dt><dd data-k=\"last_cycle\">{}</dd>\
         <dt>streams</dt><dd data-k=\"streams\"><a href=\"/streams\">{}</a>{}</dd>\
         <dt>consumers</dt><dd data-k=\"consumers\"><a href=\"/consumers\">{}</a>{}</dd>\
         </dl></section>",
        esc(n.version),
        esc(&n.roles.join(", ")),
        duration(n.uptime_seconds),
        time(n.started_at),
        span(n.poll_interval_seconds),
        span(n.poll_timeout_seconds),
        match (n.last_cycle_seconds, n.last_cycle_at) {
            (Some(d), Some(at)) => format!("{} (at {})", millis(d), time(at)),
            _ => "no poll finished yet".to_string(),
        },
        int(t.streams as u64),
        if t.streams_unavailable > 0 {
            format!(", {} unavailable", int(t.streams_unavailable as u64))
        } else {
            String::new()
        },
        int(t.consumers as u64),
        if t.consumers_stalled > 0 {
            format!(", {} stalled", int(t.consumers_stalled as u64))
        } else {
            String::new()
        },
    );
}

fn cluster_section(h: &mut String, o: &Overview<'_>, c: &ClusterStatus<'_>) {
    let title = if c.name.is_empty() {
        "Nodes not seen up yet".to_string()
    } else {
        format!("Cluster {}", esc(c.name))
    };
    let _ = write!(
        h,
        "<section class=\"cluster\" data-cluster=\"{}\"><h2>{title}</h2>\
         <table class=\"nodes\"><thead><tr><th>node</th><th>state</th><th>server</th>\
         <th>version</th><th>since</th><th class=\"num\">connections</th>\
         <th class=\"num\">subscriptions</th><th class=\"num\">slow consumers</th>\
         <th class=\"num\">memory</th><th class=\"num\">CPU</th><th>JetStream memory</th>\
         <th>JetStream storage</th><th>last poll</th><th>error</th></tr></thead><tbody>",
        esc(c.name)
    );
    for n in &c.nodes {
        node_row(h, o.generated_at, n);
    }
    h.push_str("</tbody></table>");
    meta_block(h, o.generated_at, c);
    mesh_block(h, c);
    h.push_str("</section>");
}

fn node_state_word(s: NodeState) -> &'static str {
    match s {
        NodeState::Pending => "pending",
        NodeState::Up => "up",
        NodeState::Down => "down",
    }
}

fn node_row(h: &mut String, now: f64, n: &NodeRow<'_>) {
    let state = node_state_word(n.state);
    let _ = write!(
        h,
        "<tr data-node=\"{}\" class=\"{state}\"><td data-k=\"node\">",
        esc(n.node)
    );
    link(h, &n.dashboard, n.node);
    let _ = write!(
        h,
        "<div class=\"sub\">{}</div></td><td data-k=\"state\"><span class=\"badge {state}\">{state}</span>",
        esc(n.url)
    );
    if n.meta_leader {
        h.push_str(" <span class=\"badge leader\">meta leader</span>");
    }
    h.push_str("</td>");
    td(h, "server", n.server_name.unwrap_or(DASH));
    td(h, "version", n.version.unwrap_or(DASH));
    let since = match (n.state, n.down_since, n.uptime_seconds) {
        (NodeState::Down, Some(t), _) => {
            format!("down since {} ({})", time(t), duration(now - t))
        }
        (NodeState::Up, _, Some(u)) => format!("up {}", duration(u)),
        _ => DASH.to_string(),
    };
    td(h, "since", &since);
    td_num(h, "connections", &opt_int(n.connections));
    td_num(h, "subscriptions", &opt_int(n.subscriptions));
    td_num(h, "slow_consumers", &opt_int(n.slow_consumers));
    td_num(
        h,
        "memory",
        &n.memory_bytes.map_or_else(|| DASH.to_string(), bytes),
    );
    td_num(
        h,
        "cpu",
        &n.cpu_percent
            .map_or_else(|| DASH.to_string(), |c| percent(c / 100.0)),
    );
    js_cell(h, "js_memory", n.jetstream.as_ref(), true);
    js_cell(h, "js_storage", n.jetstream.as_ref(), false);
    let polled = match n.last_poll_at {
        Some(t) => format!("{}, took {}", ago(now, t), millis(n.poll_duration_seconds)),
        None => "not yet".to_string(),
    };
    td(h, "last_poll", &polled);
    match &n.error {
        Some(e) => {
            let _ = write!(
                h,
                "<td data-k=\"error\" class=\"error\"><b>{}</b>: {}</td>",
                e.endpoint,
                esc(e.message)
            );
        }
        None => td(h, "error", ""),
    }
    h.push_str("</tr>");
}

fn peer_line(p: &PeerView) -> String {
    let mut s = format!("{} {}", p.name, model::peer_state(p));
    if p.lag > 0 {
        let _ = write!(s, ", lag {}", int(p.lag));
    }
    s
}

fn meta_block(h: &mut String, now: f64, c: &ClusterStatus<'_>) {
    h.push_str("<h3>JetStream meta group</h3>");
    let Some(m) = &c.meta else {
        h.push_str("<p class=\"meta\" data-k=\"meta\">No node reports a meta group.</p>");
        return;
    };
    let _ = write!(
        h,
        "<p class=\"meta\" data-k=\"meta\">Leader: <b data-k=\"meta_leader\">{}</b>{} · cluster size {}</p>",
        if m.leader.is_empty() {
            "none".into()
        } else {
            esc(m.leader)
        },
        if !m.leader.is_empty() && !m.leader_polled {
            " (on a node natsmon does not poll)"
        } else {
            ""
        },
        int(m.cluster_size)
    );
    if m.peers.is_empty() {
        return;
    }
    h.push_str(
        "<table class=\"peers\"><thead><tr><th>peer</th><th>state</th><th class=\"num\">lag</th>\
         <th>last seen</th></tr></thead><tbody>",
    );
    for p in &m.peers {
        peer_row(h, now, p);
    }
    h.push_str("</tbody></table>");
}

fn peer_row(h: &mut String, _now: f64, p: &PeerRow<'_>) {
    let _ = write!(h, "<tr class=\"{}\">", p.state);
    td(h, "peer", &p.peer.name);
    let _ = write!(
        h,
        "<td data-k=\"state\"><span class=\"badge {0}\">{0}</span></td>",
        p.state
    );
    td_num(h, "lag", &int(p.peer.lag));
    td(
        h,
        "active",
        &format!("{} ago", duration(p.peer.active_seconds)),
    );
    h.push_str("</tr>");
}

fn mesh_block(h: &mut String, c: &ClusterStatus<'_>) {
    let m = &c.routes;
    h.push_str("<h3>Routes</h3>");
    if m.rows.is_empty() {
        h.push_str("<p data-k=\"routes\">No route information.</p>");
        return;
    }
    let _ = write!(
        h,
        "<p data-k=\"routes\" class=\"{}\">{}</p>",
        if m.missing == 0 { "ok" } else { "bad" },
        if m.missing == 0 {
            "Every known route is up.".to_string()
        } else {
            format!("{} routes missing.", int(m.missing as u64))
        }
    );
    // Members the cluster knows of that natsmon does not poll: their own figures, and any
    // leader on them, are out of sight (nats_cluster_member_polled 0 says so too).
    let unpolled: Vec<&str> = m
        .rows
        .iter()
        .filter(|r| r.node.is_none())
        .map(|r| r.server_name)
        .collect();
    if !unpolled.is_empty() {
        let _ = write!(
            h,
            "<p data-k=\"not_polled\" class=\"bad\">Not polled by natsmon: {}. Add their \
             monitoring URLs to <code>--nats-url</code>, or use <code>--discover</code>.</p>",
            esc(&unpolled.join(", "))
        );
    }
    h.push_str("<table class=\"mesh\"><thead><tr><th>from \\ to</th>");
    for to in &m.members {
        let _ = write!(h, "<th>{}</th>", esc(to));
    }
    h.push_str("</tr></thead><tbody>");
    for r in &m.rows {
        mesh_row(h, &m.members, r);
    }
    h.push_str("</tbody></table>");
}

fn mesh_row(h: &mut String, members: &[&str], r: &MeshRow<'_>) {
    let _ = write!(
        h,
        "<tr data-server=\"{0}\"><th>{0}{1}</th>",
        esc(r.server_name),
        if r.node.is_none() {
            " <small>(not polled)</small>"
        } else {
            ""
        }
    );
    for to in members {
        let (class, text) = if *to == r.server_name {
            ("self", "·")
        } else if !r.known {
            ("unknown", "?")
        } else if r.routes.contains(to) {
            ("ok", "✓")
        } else {
            ("bad", "missing")
        };
        let _ = write!(h, "<td class=\"{class}\">{text}</td>");
    }
    h.push_str("</tr>");
}

fn accounts_section(h: &mut String, accounts: &[AccountRow<'_>]) {
    h.push_str(
        "<section id=\"accounts\"><h2>Accounts</h2><table class=\"accounts\"><thead><tr>\
         <th>cluster</th><th>account</th><th class=\"num\">connections</th>\
         <th class=\"num\">subscriptions</th><th class=\"num\">slow consumers</th>\
         <th>JetStream memory</th><th>JetStream storage</th></tr></thead><tbody>",
    );
    for a in accounts {
        let _ = write!(h, "<tr data-account=\"{}\">", esc(a.name));
        td(h, "cluster", a.cluster);
        h.push_str("<td data-k=\"account\">");
        link(h, &a.dashboard, a.name);
        h.push_str("</td>");
        td_num(h, "connections", &int(a.connections));
        td_num(h, "subscriptions", &opt_int(a.subscriptions));
        td_num(h, "slow_consumers", &int(a.slow_consumers));
        js_cell(h, "js_memory", a.jetstream.as_ref(), true);
        js_cell(h, "js_storage", a.jetstream.as_ref(), false);
        h.push_str("</tr>");
    }
    if accounts.is_empty() {
        h.push_str("<tr><td colspan=\"7\">No account reported.</td></tr>");
    }
    h.push_str("</tbody></table></section>");
}

fn shipping_section(h: &mut String, now: f64, s: &Shipping<'_>) {
    h.push_str("<section id=\"shipping\"><h2>Log shipping</h2>");
    let Some(d) = &s.details else {
        h.push_str("<p data-k=\"shipping\" class=\"off\">Log shipping is <b>off</b> (no --loki-url).</p></section>");
        return;
    };
    let reachable = match d.loki_up {
        Some(true) => "<span class=\"badge up\">reachable</span>",
        Some(false) => "<span class=\"badge down\">unreachable</span>",
        None => "<span class=\"badge pending\">not asked yet</span>",
    };
    let last_push = match &d.last_push {
        Some(p) => {
            let mut s = format!(
                "{} {} lines, {} ({}), took {}",
                p.result,
                int(p.lines as u64),
                time(p.at),
                ago(now, p.at),
                millis(p.duration_seconds)
            );
            if let Some(st) = p.status {
                let _ = write!(s, ", HTTP {st}");
            }
            if let Some(r) = p.reason {
                let _ = write!(s, ", {r}");
            }
            s
        }
        None => "none yet".to_string(),
    };
    let _ = write!(
        h,
        "<p data-k=\"shipping\" class=\"on\">Log shipping is <b>on</b>.</p><dl class=\"facts\">\
         <dt>Loki</dt><dd data-k=\"loki\">{} {reachable}</dd>\
         <dt>last push</dt><dd data-k=\"last_push\">{}</dd>\
         <dt>containers tailed</dt><dd data-k=\"containers_tailed\">{}</dd>\
         <dt>buffer</dt><dd data-k=\"buffer\">",
        esc(d.loki_url),
        esc(&last_push),
        int(d.containers_tailed as u64),
    );
    usage(h, d.buffered_bytes as u64, Some(d.buffer_max_bytes as u64));
    let _ = write!(
        h,
        " ({} lines)</dd><dt>lag</dt><dd data-k=\"lag\">{}</dd><dt>last error</dt><dd data-k=\"last_error\">",
        int(d.buffered_lines as u64),
        duration(d.max_lag_seconds),
    );
    match &d.last_error {
        Some(e) => {
            let _ = write!(
                h,
                "<span class=\"error\">{} at {}: {}</span>",
                e.source,
                time(e.at),
                esc(e.message)
            );
        }
        None => h.push_str("none"),
    }
    h.push_str(
        "</dd></dl><table class=\"containers\"><thead><tr><th>container</th><th>job</th>\
         <th>service</th><th>logs</th></tr></thead><tbody>",
    );
    for c in &d.containers {
        let _ = write!(h, "<tr data-container=\"{}\">", esc(c.name));
        td(h, "name", c.name);
        td(h, "job", c.job);
        td(h, "service", c.service);
        h.push_str("<td data-k=\"logs\">");
        if let Some(l) = &c.logs {
            link(h, l, "Grafana");
        }
        h.push_str("</td></tr>");
    }
    h.push_str("</tbody></table></section>");
}

/// The sort link of a column header: the same filter, this key, flipped if already on.
fn sort_header(h: &mut String, path: &str, q: &TableQuery, key: &str, label: &str, num: bool) {
    let on = q.sort == key;
    let dir = if on && !q.desc() { "desc" } else { "asc" };
    let mut href = format!("{path}?sort={key}&dir={dir}");
    if !q.account.is_empty() {
        href.push_str("&account=");
        href.push_str(&encode(&q.account));
    }
    if !q.q.is_empty() {
        href.push_str("&q=");
        href.push_str(&encode(&q.q));
    }
    let mark = match (on, q.desc()) {
        (true, false) => " ▲",
        (true, true) => " ▼",
        _ => "",
    };
    let _ = write!(
        h,
        "<th data-k=\"{key}\" data-sort=\"{key}\"{}><a href=\"{}\">{label}{mark}</a></th>",
        if num { " class=\"num\"" } else { "" },
        esc(&href)
    );
}

fn encode(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The filter form: works as a plain GET without JavaScript.
fn filter_form(h: &mut String, path: &str, q: &TableQuery, accounts: &[String]) {
    let _ = write!(
        h,
        "<form class=\"filter\" method=\"get\" action=\"{path}\"><label>account \
         <select name=\"account\"><option value=\"\">all</option>"
    );
    for a in accounts {
        let _ = write!(
            h,
            "<option value=\"{0}\"{1}>{0}</option>",
            esc(a),
            if *a == q.account { " selected" } else { "" }
        );
    }
    let _ = write!(
        h,
        "</select></label> <label>name <input type=\"search\" name=\"q\" value=\"{}\"></label>\
         <input type=\"hidden\" name=\"sort\" value=\"{}\"><input type=\"hidden\" name=\"dir\" value=\"{}\">\
         <button type=\"submit\">Filter</button></form>",
        esc(&q.q),
        esc(&q.sort),
        esc(&q.dir)
    );
}

pub const STREAM_COLUMNS: &[(&str, &str, bool)] = &[
    ("cluster", "cluster", false),
    ("account", "account", false),
    ("name", "stream", false),
    ("state", "state", false),
    ("replicas", "R", true),
    ("leader", "leader", false),
    ("peers", "replicas", false),
    ("messages", "messages", true),
    ("messages_share", "of max msgs", true),
    ("bytes", "bytes", true),
    ("bytes_share", "of max bytes", true),
    ("consumers", "consumers", true),
];

pub const CONSUMER_COLUMNS: &[(&str, &str, bool)] = &[
    ("cluster", "cluster", false),
    ("account", "account", false),
    ("stream", "stream", false),
    ("name", "consumer", false),
    ("state", "state", false),
    ("num_pending", "pending", true),
    ("num_ack_pending", "ack pending", true),
    ("num_redelivered", "redelivered", true),
    ("num_waiting", "waiting", true),
    ("lag", "lag", true),
    ("last_active", "last active", false),
    ("leader", "leader", false),
    ("peers", "replicas", false),
];

/// A table page up to its rows: heading with the row count, filter, sortable header.
pub fn table_before(
    page: Page,
    q: &TableQuery,
    accounts: &[String],
    shown: usize,
    total: usize,
) -> String {
    let (path, columns) = match page {
        Page::Consumers => ("/consumers", CONSUMER_COLUMNS),
        _ => ("/streams", STREAM_COLUMNS),
    };
    let mut h = String::with_capacity(4096);
    let _ = write!(
        h,
        "<section id=\"table-section\"><h2>{} <span id=\"count\" class=\"count\">{}</span></h2>",
        page.title(),
        count_text(shown, total)
    );
    filter_form(&mut h, path, q, accounts);
    let _ = write!(
        h,
        "<table class=\"data\" id=\"table\" data-table=\"{}\"><thead><tr>",
        page.id()
    );
    for (key, label, num) in columns {
        if *key == "peers" {
            let _ = write!(h, "<th data-k=\"{key}\">{label}</th>");
        } else {
            sort_header(&mut h, path, q, key, label, *num);
        }
    }
    h.push_str("</tr></thead><tbody id=\"rows\">");
    h
}

/// A table page after its rows.
pub fn table_after(page: Page, total: usize) -> String {
    let mut h = String::from("</tbody></table>");
    if total == 0 {
        let _ = write!(h, "<p id=\"empty\">No {} reported yet.</p>", page.id());
    }
    h.push_str("</section>");
    h
}

pub fn count_text(shown: usize, total: usize) -> String {
    if shown == total {
        int(total as u64)
    } else {
        format!("{} of {}", int(shown as u64), int(total as u64))
    }
}

fn state_text(state: &str) -> &'static str {
    match state {
        "ok" => "ok",
        "degraded" => "degraded",
        "no_leader" => "no leader",
        "leader_not_polled" => "leader on a node natsmon does not poll",
        "unavailable" => "unavailable",
        "stalled" => "stalled",
        _ => "unknown",
    }
}

fn peers_cell(h: &mut String, leader: &str, peers: &[PeerView]) {
    h.push_str("<td>");
    if !leader.is_empty() {
        let _ = write!(
            h,
            "<span class=\"peer leader\">{} leader</span>",
            esc(leader)
        );
    }
    for p in peers {
        let _ = write!(
            h,
            " <span class=\"peer {}\">{}</span>",
            model::peer_state(p),
            esc(&peer_line(p))
        );
    }
    h.push_str("</td>");
}

fn share_cell(h: &mut String, share: Option<f64>, limit: Option<u64>, as_bytes: bool) {
    h.push_str("<td>");
    match (share, limit) {
        (Some(s), Some(l)) => {
            let _ = write!(
                h,
                "<meter min=\"0\" max=\"1\" value=\"{:.4}\"></meter> {} of {}",
                s.min(1.0),
                percent(s),
                if as_bytes { bytes(l) } else { int(l) }
            );
        }
        _ => h.push_str("no limit"),
    }
    h.push_str("</td>");
}

fn state_cell(h: &mut String, state: &str) {
    let _ = write!(
        h,
        "<td><span class=\"badge {state}\">{}</span></td>",
        state_text(state)
    );
}

pub fn stream_rows(h: &mut String, streams: &[&StreamView]) {
    for s in streams {
        let r: StreamRow<'_> = model::stream_row(s);
        let _ = write!(
            h,
            "<tr class=\"{}\" data-stream=\"{}\">",
            r.state,
            esc(&s.name)
        );
        cell(h, &s.cluster);
        cell(h, &s.account);
        h.push_str("<td>");
        link(h, &r.dashboard, &s.name);
        h.push_str("</td>");
        state_cell(h, r.state);
        cell(
            h,
            &if s.replicas == 0 {
                DASH.to_string()
            } else {
                int(s.replicas)
            },
        );
        cell(h, if s.leader.is_empty() { DASH } else { &s.leader });
        peers_cell(h, &s.leader, &s.peers);
        cell(h, &int(s.messages));
        share_cell(h, r.messages_share, s.max_msgs, false);
        cell(h, &bytes(s.bytes));
        share_cell(h, r.bytes_share, s.max_bytes, true);
        cell(h, &int(s.consumers));
        h.push_str("</tr>");
    }
}

pub fn consumer_rows(h: &mut String, now: f64, consumers: &[&ConsumerView]) {
    for c in consumers {
        let r: ConsumerRow<'_> = model::consumer_row(c);
        let _ = write!(
            h,
            "<tr class=\"{}\" data-consumer=\"{}\">",
            r.state,
            esc(&c.name)
        );
        cell(h, &c.cluster);
        cell(h, &c.account);
        cell(h, &c.stream);
        h.push_str("<td>");
        link(h, &r.dashboard, &c.name);
        h.push_str("</td>");
        state_cell(h, r.state);
        cell(h, &int(c.num_pending));
        cell(h, &int(c.num_ack_pending));
        cell(h, &int(c.num_redelivered));
        cell(h, &int(c.num_waiting));
        cell(h, &opt_int(c.lag));
        cell(
            h,
            &c.last_active
                .map_or_else(|| DASH.to_string(), |t| ago(now, t)),
        );
        cell(h, if c.leader.is_empty() { DASH } else { &c.leader });
        peers_cell(h, &c.leader, &c.peers);
        h.push_str("</tr>");
    }
}
