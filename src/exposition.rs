//! Owns the exposition model for NATS data: a snapshot of metric families built by the
//! pure endpoint functions, encoded once per poll through prometheus-client, and the
//! conversion to the classic Prometheus text format for scrapers that do not ask for
//! OpenMetrics. NATS series are rebuilt whole every poll, which a registry of long-lived
//! metrics would model badly; natsmon's own metrics use that registry instead.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Whether a family only grows (counter) or is a level (gauge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
}

/// A metric family's static description. Counter names carry their `_total` suffix here,
/// exactly as they appear in the exposition, so the README reference and the code agree.
#[derive(Debug)]
pub struct Def {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    /// Samples in the family's last render: the next one's vector starts that large
    /// instead of doubling its way up (a family can hold thousands).
    last_len: AtomicUsize,
}

impl Def {
    pub const fn gauge(name: &'static str, help: &'static str) -> Def {
        Def {
            name,
            help,
            kind: Kind::Gauge,
            last_len: AtomicUsize::new(0),
        }
    }

    pub const fn counter(name: &'static str, help: &'static str) -> Def {
        Def {
            name,
            help,
            kind: Kind::Counter,
            last_len: AtomicUsize::new(0),
        }
    }

    /// The descriptor name prometheus-client expects: it appends `_total` to counters itself.
    fn descriptor_name(&self) -> &'static str {
        match self.kind {
            Kind::Counter => self.name.strip_suffix("_total").unwrap_or(self.name),
            Kind::Gauge => self.name,
        }
    }
}

/// A sample value. Integers stay integers so the text shows `42`, not `42.0`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Int(i64),
    Uint(u64),
    Float(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Uint(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(i64::from(v))
    }
}
impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::Uint(v as u64)
    }
}

/// A label set, shared between the samples of one object (a stream's dozen series share
/// one allocation).
pub type Labels = Arc<[(&'static str, String)]>;

#[derive(Debug)]
struct Family {
    def: &'static Def,
    samples: Vec<(Labels, Value)>,
}

/// All NATS-derived samples of one render, grouped by family so that each family is
/// contiguous in the output however many nodes contributed to it.
#[derive(Debug, Default)]
pub struct MetricSet {
    families: Vec<Family>,
    /// Family position by the address of its `Def` (every family is one static).
    index: HashMap<usize, usize, BuildHasherDefault<AddressHasher>>,
}

/// Hashes an address (of a `Def`, or of a shared label set): a push per sample (a hundred
/// thousand per render at scale) hashed the family's name with SipHash before.
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_usize(&mut self, n: usize) {
        // Statics are aligned: the low bits carry nothing, the multiply spreads the rest.
        self.0 = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

impl MetricSet {
    pub fn push(&mut self, def: &'static Def, labels: impl Into<Labels>, value: impl Into<Value>) {
        let labels = labels.into();
        let key = def as *const Def as usize;
        let i = *self.index.entry(key).or_insert_with(|| {
            debug_assert!(
                self.families.iter().all(|f| f.def.name != def.name),
                "two Defs named {}",
                def.name
            );
            self.families.push(Family {
                def,
                samples: Vec::with_capacity(def.last_len.load(Ordering::Relaxed)),
            });
            self.families.len() - 1
        });
        self.families[i].samples.push((labels, value.into()));
    }

    /// Pushes only when the source field was present, so a field an older server does
    /// not send yields no series instead of a misleading zero.
    pub fn push_opt<V: Into<Value>, L: Into<Labels>>(
        &mut self,
        def: &'static Def,
        labels: impl FnOnce() -> L,
        value: Option<V>,
    ) {
        if let Some(v) = value {
            self.push(def, labels(), v);
        }
    }

    pub fn len(&self) -> usize {
        self.families.iter().map(|f| f.samples.len()).sum()
    }

    /// Gives every sample labelled with a node in `clusters` (node label -> cluster
    /// name) that has no `cluster` label one, right after `node`: one natsmon watching
    /// several clusters of a supercluster then filters every node-level series by
    /// cluster.
    ///
    /// Label sets are shared between samples (a node's `{node="n1"}` by hundreds of
    /// families), so each shared set is extended once and the result shared in turn: a
    /// copy per sample made the render three times as costly.
    pub fn label_clusters(&mut self, clusters: &HashMap<&str, &str>) {
        let mut done: HashMap<usize, Labels, BuildHasherDefault<AddressHasher>> =
            HashMap::default();
        for fam in &mut self.families {
            for (labels, _) in &mut fam.samples {
                let key = labels.as_ptr() as usize;
                if let Some(l) = done.get(&key) {
                    *labels = l.clone();
                    continue;
                }
                let extended = with_cluster(labels, clusters);
                if let Some(l) = extended {
                    // Only shared sets are worth remembering. Their other holders keep
                    // the original alive, so its address is not reused meanwhile.
                    if Arc::strong_count(labels) > 1 {
                        done.insert(key, l.clone());
                    }
                    *labels = l;
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps only the families `keep` names.
    pub fn retain_families(&mut self, keep: impl Fn(&Def) -> bool) {
        self.families.retain(|f| keep(f.def));
        self.index = self
            .families
            .iter()
            .enumerate()
            .map(|(i, f)| (f.def as *const Def as usize, i))
            .collect();
    }

    /// Pushes again every sample of `from` whose labels `keep` accepts (sharing them).
    pub fn carry(&mut self, from: &MetricSet, keep: impl Fn(&[(&'static str, String)]) -> bool) {
        for fam in &from.families {
            for (labels, value) in &fam.samples {
                if keep(labels) {
                    self.push(fam.def, labels.clone(), *value);
                }
            }
        }
    }

    /// Looks a sample up by family name and label subset, for tests.
    pub fn get(&self, name: &str, want: &[(&str, &str)]) -> Option<Value> {
        let fam = self.families.iter().find(|f| f.def.name == name)?;
        fam.samples
            .iter()
            .find(|(labels, _)| {
                want.iter()
                    .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, v)| *v)
    }

    /// Encodes the set as OpenMetrics text without the trailing `# EOF`, so that the
    /// HTTP layer can append natsmon's own registry and the terminator.
    ///
    /// Written by hand rather than through prometheus-client's encoder: the render of a
    /// large cluster is millions of small writes, and the generic encoder's dynamic
    /// dispatch per label, key and value made it most of natsmon's CPU. The text is the
    /// same byte for byte (numbers by the same `itoa` and `dtoa`, label values escaped
    /// the same way); a test compares the two.
    pub fn encode_openmetrics(&self) -> String {
        // The last render's size is the best guess of this one's: growing a 10 MB string
        // by doubling copied it several times.
        // Only a size of the same order counts: a small set encoded after a big render
        // must not reserve megabytes.
        let estimate = self.len() * 96;
        let last = LAST_RENDER_BYTES.load(Ordering::Relaxed);
        let guess = if (estimate..estimate * 2).contains(&last) {
            last
        } else {
            estimate
        };
        let mut out: Vec<u8> = Vec::with_capacity(guess + guess / 8);
        let mut int = itoa::Buffer::new();
        let mut float = dtoa::Buffer::new();
        // Where each shared label set was first written: a stream's dozen families share
        // one set, whose text is copied from there instead of escaped again. Every set
        // lives as long as `self`, so no address is reused meanwhile.
        let mut written: HashMap<usize, (usize, usize), BuildHasherDefault<AddressHasher>> =
            HashMap::default();
        for fam in &self.families {
            fam.def.last_len.store(fam.samples.len(), Ordering::Relaxed);
            let name = fam.def.descriptor_name().as_bytes();
            let ty: &[u8] = match fam.def.kind {
                Kind::Gauge => b"gauge",
                Kind::Counter => b"counter",
            };
            for part in [
                b"# HELP ".as_slice(),
                name,
                b" ",
                fam.def.help.as_bytes(),
                b"\n# TYPE ",
                name,
                b" ",
                ty,
                b"\n",
            ] {
                out.extend_from_slice(part);
            }
            for (labels, value) in &fam.samples {
                out.extend_from_slice(name);
                if fam.def.kind == Kind::Counter {
                    out.extend_from_slice(b"_total");
                }
                if !labels.is_empty() {
                    let key = labels.as_ptr() as usize;
                    match written.get(&key) {
                        Some(&(start, end)) => out.extend_from_within(start..end),
                        None => {
                            let start = out.len();
                            push_labels(&mut out, labels);
                            if Arc::strong_count(labels) > 1 {
                                written.insert(key, (start, out.len()));
                            }
                        }
                    }
                }
                out.push(b' ');
                let v = match (fam.def.kind, *value) {
                    (Kind::Counter, Value::Int(v)) => int.format(v.max(0) as u64),
                    (_, Value::Int(v)) => int.format(v),
                    (_, Value::Uint(v)) => int.format(v),
                    (_, Value::Float(v)) => float.format(v),
                };
                out.extend_from_slice(v.as_bytes());
                out.push(b'\n');
            }
        }
        LAST_RENDER_BYTES.store(out.len(), Ordering::Relaxed);
        // Only `&str`s were written, whole: this cannot fail.
        String::from_utf8(out).expect("the exposition is UTF-8")
    }
}

/// `{k="v",...}` with every value escaped.
fn push_labels(out: &mut Vec<u8>, labels: &[(&'static str, String)]) {
    out.push(b'{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"=\"");
        push_escaped(out, v);
        out.push(b'"');
    }
    out.push(b'}');
}

/// The size of the last exposition encoded, to size the next one's buffer.
static LAST_RENDER_BYTES: AtomicUsize = AtomicUsize::new(0);

/// A label value as the text formats want it: backslash, quote and newline escaped.
fn push_escaped(out: &mut Vec<u8>, v: &str) {
    let bytes = v.as_bytes();
    if !bytes.iter().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        out.extend_from_slice(bytes);
        return;
    }
    // The three are ASCII, so a byte-wise pass never splits a UTF-8 sequence.
    for &b in bytes {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b => out.push(b),
        }
    }
}

/// Rewrites OpenMetrics text (without `# EOF`) into the Prometheus 0.0.4 text format:
/// counter families are named with their `_total` suffix, `# UNIT` and `# EOF` lines are
/// dropped, and `info` families become `_info` gauges. Sample lines are unchanged, so this
/// touches only metadata and costs one pass over the text.
pub fn openmetrics_to_prometheus(om: &str) -> String {
    let mut out = String::with_capacity(om.len());
    let mut pending_help: Option<(&str, &str)> = None;
    for line in om.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            pending_help = Some((name, help));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (new_name, new_ty) = match ty {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "stateset" | "gaugehistogram" | "unknown" => (name.to_string(), "untyped"),
                other => (name.to_string(), other),
            };
            if let Some((hname, help)) = pending_help.take()
                && hname == name
            {
                let _ = writeln!(out, "# HELP {new_name} {help}");
            }
            let _ = writeln!(out, "# TYPE {new_name} {new_ty}");
        } else if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// `labels` with its node's cluster right after `node`; `None` when it has a cluster
/// already, no node, or a node of no known cluster.
fn with_cluster(labels: &Labels, clusters: &HashMap<&str, &str>) -> Option<Labels> {
    if labels.iter().any(|(k, _)| *k == "cluster") {
        return None;
    }
    let pos = labels.iter().position(|(k, _)| *k == "node")?;
    let cluster = clusters.get(labels[pos].1.as_str())?;
    let mut l = labels.to_vec();
    l.insert(pos + 1, ("cluster", cluster.to_string()));
    Some(l.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::{
        collector::Collector,
        encoding::{DescriptorEncoder, EncodeMetric},
        metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
        registry::Registry,
    };

    /// The set through prometheus-client's own encoder, which natsmon used before: the
    /// reference the hand encoder is held to.
    #[derive(Debug)]
    struct ThroughPrometheusClient(MetricSet);

    impl Collector for ThroughPrometheusClient {
        fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
            for fam in &self.0.families {
                let metric_type = match fam.def.kind {
                    Kind::Gauge => MetricType::Gauge,
                    Kind::Counter => MetricType::Counter,
                };
                let mut fenc = encoder.encode_descriptor(
                    fam.def.descriptor_name(),
                    fam.def.help,
                    None,
                    metric_type,
                )?;
                for (labels, value) in &fam.samples {
                    let labels: &[(&'static str, String)] = &labels[..];
                    let menc = fenc.encode_family(&labels)?;
                    match (fam.def.kind, *value) {
                        (Kind::Counter, Value::Uint(v)) => ConstCounter::new(v).encode(menc)?,
                        (Kind::Counter, Value::Int(v)) => {
                            ConstCounter::new(v.max(0) as u64).encode(menc)?
                        }
                        (Kind::Counter, Value::Float(v)) => ConstCounter::new(v).encode(menc)?,
                        (Kind::Gauge, Value::Int(v)) => ConstGauge::new(v).encode(menc)?,
                        (Kind::Gauge, Value::Uint(v)) => ConstGauge::new(v).encode(menc)?,
                        (Kind::Gauge, Value::Float(v)) => ConstGauge::new(v).encode(menc)?,
                    }
                }
            }
            Ok(())
        }
    }

    fn encode_with_prometheus_client(set: MetricSet) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(ThroughPrometheusClient(set)));
        let mut out = String::new();
        prometheus_client::encoding::text::encode_registry(&mut out, &registry)
            .expect("encoding to a String");
        out
    }

    static G: Def = Def::gauge("x_level_bytes", "A level.");
    static C: Def = Def::counter("x_events_total", "Events.");

    #[test]
    fn families_are_contiguous_and_counters_get_total_once() {
        let mut set = MetricSet::default();
        set.push(&G, vec![("node", "a".into())], 1u64);
        set.push(&C, vec![("node", "a".into())], 5u64);
        set.push(&G, vec![("node", "b".into())], 2.5f64);
        let om = set.encode_openmetrics();
        assert_eq!(
            om,
            "# HELP x_level_bytes A level.\n# TYPE x_level_bytes gauge\nx_level_bytes{node=\"a\"} 1\nx_level_bytes{node=\"b\"} 2.5\n\
             # HELP x_events Events.\n# TYPE x_events counter\nx_events_total{node=\"a\"} 5\n"
        );
        let prom = openmetrics_to_prometheus(&om);
        assert_eq!(
            prom,
            "# HELP x_level_bytes A level.\n# TYPE x_level_bytes gauge\nx_level_bytes{node=\"a\"} 1\nx_level_bytes{node=\"b\"} 2.5\n\
             # HELP x_events_total Events.\n# TYPE x_events_total counter\nx_events_total{node=\"a\"} 5\n"
        );
    }

    #[test]
    fn the_hand_encoder_writes_what_prometheus_client_writes() {
        let build = || {
            let mut set = MetricSet::default();
            let tricky: Labels = vec![
                ("node", "n\"1\\x\ny".to_string()),
                ("stream", "ÖRDERS-µ".to_string()),
                ("empty", String::new()),
            ]
            .into();
            for v in [
                0.0,
                -0.0,
                0.1,
                1.0,
                2.5,
                1e21,
                1e-7,
                123456789.125,
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::NAN,
            ] {
                set.push(&G, tricky.clone(), v);
                set.push(&C, vec![("node", format!("{v}"))], v);
            }
            for v in [0i64, -1, i64::MIN, i64::MAX, 42] {
                set.push(&G, vec![("node", "i".into())], v);
                set.push(&C, vec![("node", "i".into())], v);
            }
            for v in [0u64, u64::MAX, 7] {
                set.push(&G, vec![("node", "u".into())], v);
                set.push(&C, vec![("node", "u".into())], v);
            }
            set.push(&G, vec![("node", "b".into())], true);
            set
        };
        assert_eq!(
            build().encode_openmetrics(),
            encode_with_prometheus_client(build())
        );
    }

    #[test]
    fn info_and_unit_lines_are_converted() {
        let om = "# HELP b Build.\n# TYPE b info\n# UNIT b seconds\nb_info{v=\"1\"} 1\n# EOF\n";
        assert_eq!(
            openmetrics_to_prometheus(om),
            "# HELP b_info Build.\n# TYPE b_info gauge\nb_info{v=\"1\"} 1\n"
        );
    }
}
