//! Owns the web console: the cluster at a glance (`/`), `/streams`, `/consumers`, and
//! `/api/v1/status`, the same data as JSON for the pages' script and for `curl | jq`.
//! `http` routes the requests here and adds the security headers.
//!
//! - `model`: what is shown, as serializable values; `pages`: the server-rendered HTML;
//!   `query`: sorting and filtering the tables; `format`: how values read; `links`: the
//!   Grafana dashboard links.
//! - `assets/`: the stylesheet and script, embedded in the binary (no CDN, no build
//!   step). The script refreshes a page in place every poll interval from
//!   `/api/v1/status`, using DOM text nodes only; without it the pages still read.
//!
//! Streams and consumers are the bulk of every answer (thousands of rows); their JSON and
//! their default table rows are built once per cluster view (that is, once per render),
//! plain and deflated, off the request path, and shared by every request until the next
//! one: ten browsers on a cluster of a thousand streams cost one rendering per poll, and
//! a request copies or compresses only its few kilobytes that change per request.

pub mod deflate;
pub mod format;
pub mod links;
pub mod model;
pub mod pages;
pub mod query;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use self::deflate::Piece;
use self::model::{Inputs, unix};
use self::pages::Page;
use self::query::TableQuery;
use crate::config::Settings;
use crate::logs::status::ShipperStatus;
use crate::nats::snapshot::Store;
use crate::nats::view::ClusterView;

pub const CSS: &str = include_str!("assets/console.css");
pub const JS: &str = include_str!("assets/console.js");

/// Scripts and styles only from natsmon itself, and nothing inline: a name that slipped
/// past escaping still could not run.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// A body as chunks to send in order (cached parts are shared, not copied), gzipped or
/// not as the client asked.
#[derive(Debug)]
pub struct Answer {
    pub chunks: Vec<Bytes>,
    pub gzip: bool,
}

impl Answer {
    fn new(parts: Vec<(Bytes, Option<&Piece>)>, gzip: bool) -> Answer {
        if !gzip {
            return Answer {
                chunks: parts.into_iter().map(|(b, _)| b).collect(),
                gzip,
            };
        }
        let fresh: Vec<Option<Piece>> = parts
            .iter()
            .map(|(b, cached)| cached.is_none().then(|| Piece::new(b)))
            .collect();
        let pieces: Vec<&Piece> = parts
            .iter()
            .zip(&fresh)
            .map(|((_, cached), f)| cached.or(f.as_ref()).expect("a piece for every part"))
            .collect();
        Answer {
            chunks: deflate::gzip(&pieces),
            gzip,
        }
    }

    /// The whole body, for tests and tools.
    pub fn concat(&self) -> Vec<u8> {
        self.chunks.iter().flat_map(|c| c.iter().copied()).collect()
    }
}

/// What one cluster view costs to show: the stream and consumer JSON and the default
/// table rows, plain and deflated, built once per view.
#[derive(Debug)]
struct Cached {
    view: Arc<ClusterView>,
    /// Order of the builds' starts; an older build never replaces a newer one.
    seq: u64,
    /// `None` for the empty cache natsmon starts with, which is never served stale.
    built_at: Option<Instant>,
    /// `,"streams":[...],"consumers":[...]}`: the end of `/api/v1/status`.
    json_tail: (Bytes, Piece),
    stream_rows: (Bytes, Piece),
    consumer_rows: (Bytes, Piece),
    /// Accounts that have streams or consumers, for the tables' filter.
    accounts: Vec<String>,
}

fn with_piece(s: Vec<u8>) -> (Bytes, Piece) {
    let p = Piece::new(&s);
    (Bytes::from(s), p)
}

impl Cached {
    fn empty() -> Cached {
        let mut c = Cached::build(Arc::default(), 0);
        c.built_at = None;
        c
    }

    fn build(view: Arc<ClusterView>, seq: u64) -> Cached {
        let now = unix(SystemTime::now());
        let mut json = Vec::with_capacity(1024 * (view.streams.len() + view.consumers.len()));
        json.extend_from_slice(b",\"streams\":");
        let streams: Vec<_> = view.streams.iter().map(model::stream_row).collect();
        serde_json::to_writer(&mut json, &streams).expect("serializing to a Vec");
        drop(streams);
        json.extend_from_slice(b",\"consumers\":");
        let consumers: Vec<_> = view.consumers.iter().map(model::consumer_row).collect();
        serde_json::to_writer(&mut json, &consumers).expect("serializing to a Vec");
        drop(consumers);
        json.push(b'}');
        let q = TableQuery::default();
        let mut rows = String::with_capacity(900 * view.streams.len());
        pages::stream_rows(&mut rows, &q.streams(&view.streams));
        let stream_rows = with_piece(rows.into_bytes());
        let mut rows = String::with_capacity(900 * view.consumers.len());
        pages::consumer_rows(&mut rows, now, &q.consumers(&view.consumers));
        let consumer_rows = with_piece(rows.into_bytes());
        let mut accounts: Vec<String> = view
            .streams
            .iter()
            .map(|s| s.account.clone())
            .chain(view.consumers.iter().map(|c| c.account.clone()))
            .collect();
        accounts.sort_unstable();
        accounts.dedup();
        Cached {
            view,
            seq,
            built_at: Some(Instant::now()),
            json_tail: with_piece(json),
            stream_rows,
            consumer_rows,
            accounts,
        }
    }
}

#[derive(Debug)]
struct CacheState {
    ready: Arc<Cached>,
    /// The view being built in the background, if any.
    building: Option<Arc<ClusterView>>,
    next_seq: u64,
}

/// The console's own state: when natsmon started, the shipper's status handle, and the
/// per-view cache.
#[derive(Debug)]
pub struct Console {
    started_at: SystemTime,
    shipper: Option<Arc<ShipperStatus>>,
    cache: Arc<Mutex<CacheState>>,
}

fn lock(m: &Mutex<CacheState>) -> std::sync::MutexGuard<'_, CacheState> {
    // The state is replaced whole; a panic elsewhere cannot leave it half-written.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Console {
    /// `shipper` is `None` when log shipping is off.
    pub fn new(started_at: SystemTime, shipper: Option<Arc<ShipperStatus>>) -> Console {
        Console {
            started_at,
            shipper,
            cache: Arc::new(Mutex::new(CacheState {
                ready: Arc::new(Cached::empty()),
                building: None,
                next_seq: 1,
            })),
        }
    }

    /// The cache to answer from, and the inputs built on the same view.
    fn inputs(&self, store: &Store, settings: &Arc<Settings>) -> (Inputs, Arc<Cached>) {
        let cached = self.cached(store.view(), settings.poll_interval);
        let inputs = Inputs {
            settings: settings.clone(),
            nodes: store.nodes(),
            view: cached.view.clone(),
            shipper: self.shipper.as_ref().map(|s| s.snapshot()),
            started_at: self.started_at,
            now: SystemTime::now(),
        };
        (inputs, cached)
    }

    /// The cache of `view`. A new view is built on the blocking pool while requests are
    /// answered from the previous one, as long as that one is recent (a page refreshing
    /// every poll interval sees each render at most one build late, and no request ever
    /// waits for a build); after a pause, or without a runtime, it is built right here.
    fn cached(&self, view: Arc<ClusterView>, interval: Duration) -> Arc<Cached> {
        let mut g = lock(&self.cache);
        if Arc::ptr_eq(&g.ready.view, &view) {
            return g.ready.clone();
        }
        let recent = g
            .ready
            .built_at
            .is_some_and(|t| t.elapsed() < interval.saturating_mul(2));
        let seq = g.next_seq;
        g.next_seq += 1;
        if let (true, Ok(rt)) = (recent, tokio::runtime::Handle::try_current()) {
            if !g.building.as_ref().is_some_and(|b| Arc::ptr_eq(b, &view)) {
                g.building = Some(view.clone());
                let cache = self.cache.clone();
                rt.spawn_blocking(move || {
                    let built = Arc::new(Cached::build(view, seq));
                    let mut g = lock(&cache);
                    if g.building
                        .as_ref()
                        .is_some_and(|b| Arc::ptr_eq(b, &built.view))
                    {
                        g.building = None;
                    }
                    if built.seq > g.ready.seq {
                        g.ready = built;
                    }
                });
            }
            return g.ready.clone();
        }
        drop(g);
        let built = Arc::new(Cached::build(view, seq));
        let mut g = lock(&self.cache);
        if built.seq > g.ready.seq {
            g.ready = built.clone();
        }
        built
    }

    /// `/api/v1/status`: the overview's fields, then `streams` and `consumers`.
    pub fn status(&self, store: &Store, settings: &Arc<Settings>, gzip: bool) -> Answer {
        let (inputs, cached) = self.inputs(store, settings);
        let mut head = serde_json::to_vec(&inputs.overview()).expect("serializing to a Vec");
        // The cached arrays follow as they are: the overview is an object, so its closing
        // brace is the last byte, and the cached tail brings it back.
        debug_assert_eq!(head.last(), Some(&b'}'));
        head.pop();
        let (tail, tail_gz) = &cached.json_tail;
        Answer::new(
            vec![(Bytes::from(head), None), (tail.clone(), Some(tail_gz))],
            gzip,
        )
    }

    pub fn page(
        &self,
        page: Page,
        store: &Store,
        settings: &Arc<Settings>,
        q: &TableQuery,
        gzip: bool,
    ) -> Answer {
        let (inputs, cached) = self.inputs(store, settings);
        let overview = inputs.overview();
        let (mut before, after) = pages::frame(page, &overview);
        if page == Page::Overview {
            before.push_str(&pages::overview_main(&overview));
            before.push_str(after);
            return Answer::new(vec![(Bytes::from(before), None)], gzip);
        }
        let view = &*inputs.view;
        let (shown, total, rows, rows_gz) = match (page, q.is_default()) {
            (Page::Consumers, true) => {
                let (b, p) = &cached.consumer_rows;
                (
                    view.consumers.len(),
                    view.consumers.len(),
                    b.clone(),
                    Some(p),
                )
            }
            (Page::Consumers, false) => {
                let picked = q.consumers(&view.consumers);
                let mut h = String::with_capacity(picked.len() * 900);
                pages::consumer_rows(&mut h, unix(inputs.now), &picked);
                (picked.len(), view.consumers.len(), Bytes::from(h), None)
            }
            (_, true) => {
                let (b, p) = &cached.stream_rows;
                (view.streams.len(), view.streams.len(), b.clone(), Some(p))
            }
            (_, false) => {
                let picked = q.streams(&view.streams);
                let mut h = String::with_capacity(picked.len() * 900);
                pages::stream_rows(&mut h, &picked);
                (picked.len(), view.streams.len(), Bytes::from(h), None)
            }
        };
        before.push_str(&pages::table_before(
            page,
            q,
            &cached.accounts,
            shown,
            total,
        ));
        let mut end = pages::table_after(page, total);
        end.push_str(after);
        Answer::new(
            vec![
                (Bytes::from(before), None),
                (rows, rows_gz),
                (Bytes::from(end), None),
            ],
            gzip,
        )
    }

    /// The page as one string, for tests and tools.
    pub fn page_html(
        &self,
        page: Page,
        store: &Store,
        settings: &Arc<Settings>,
        q: &TableQuery,
    ) -> String {
        String::from_utf8(self.page(page, store, settings, q, false).concat())
            .expect("pages are UTF-8")
    }

    /// `/api/v1/status` as one body, for tests and tools.
    pub fn status_json(&self, store: &Store, settings: &Arc<Settings>) -> Vec<u8> {
        self.status(store, settings, false).concat()
    }
}

#[cfg(test)]
mod tests;
