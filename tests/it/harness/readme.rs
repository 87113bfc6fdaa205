//! The README's metric reference: the table between `<!-- metric-reference:start -->`
//! and `<!-- metric-reference:end -->`, one `| `name` | type | labels | meaning |` row per
//! metric family. The one parser of it; the reference, rules, dashboards and shipper
//! tests all check against it.

use std::collections::{BTreeMap, BTreeSet};

/// One documented metric family.
#[derive(Debug, Clone)]
pub struct RefMetric {
    /// `counter`, `gauge`, `histogram`, ...
    pub kind: String,
    /// Label names (`—` for none is left out).
    pub labels: BTreeSet<String>,
}

/// Family name -> its row, for every row of the README's metric reference.
pub fn metric_reference() -> BTreeMap<String, RefMetric> {
    let path = super::repo_root().join("README.md");
    let readme = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let start = readme
        .find("<!-- metric-reference:start -->")
        .expect("README has the metric-reference start marker");
    let end = readme
        .find("<!-- metric-reference:end -->")
        .expect("README has the metric-reference end marker");
    let mut out = BTreeMap::new();
    for line in readme[start..end].lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // "| `name` | type | labels | meaning |" splits into ["", name, type, labels, ...]
        if cells.len() < 5 {
            continue;
        }
        let Some(name) = cells[1].strip_prefix('`').and_then(|s| s.strip_suffix('`')) else {
            continue;
        };
        let labels = cells[3]
            .split(',')
            .map(str::trim)
            .filter(|l| !l.is_empty() && *l != "—" && *l != "-")
            .map(String::from)
            .collect();
        out.insert(
            name.to_string(),
            RefMetric {
                kind: cells[2].to_string(),
                labels,
            },
        );
    }
    assert!(
        out.len() > 50,
        "the metric reference parsed to only {} metrics",
        out.len()
    );
    out
}

/// Family names listed in the README's metric reference.
pub fn documented_families() -> BTreeSet<String> {
    metric_reference().into_keys().collect()
}
