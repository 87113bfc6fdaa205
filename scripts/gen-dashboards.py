#!/usr/bin/env python3
"""Generate natsmon's Grafana dashboards (dashboards/*.json).

The committed JSON files are this script's output; `tests/dashboards.rs` runs
`python3 scripts/gen-dashboards.py --check` and fails when they differ.

    python3 scripts/gen-dashboards.py          # rewrite dashboards/*.json
    python3 scripts/gen-dashboards.py --check  # exit 1 if a file is out of date

Only metric names from the README's metric reference may be used (the test
checks that too). Conventions: every panel and target uses the `datasource`
template variable; counters only inside rate()/increase() over
$__rate_interval; Loki range vectors use $__auto.
"""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "dashboards")

SCHEMA_VERSION = 39
TAGS = ["nats", "natsmon"]
RI = "$__rate_interval"

# Prometheus selectors used throughout.
# Every node-level NATS series carries `cluster` (one natsmon may watch several
# clusters of a supercluster), so node panels follow the cluster variable too.
N = 'cluster=~"$cluster", node=~"$node"'
# natsmon's own per-node series have no `cluster` label.
N_SELF = 'node=~"$node"'
JS = 'cluster=~"$cluster", account=~"$account", stream=~"$stream"'
JSC = JS + ', consumer=~"$consumer"'


class Ctx:
    """Per-dashboard state: datasource type, panel ids."""

    def __init__(self, ds_type):
        self.ds_type = ds_type
        self.next_id = 1

    def ds(self):
        return {"type": self.ds_type, "uid": "${datasource}"}

    def pid(self):
        i = self.next_id
        self.next_id += 1
        return i


# ---------------------------------------------------------------- targets

def prom(expr, legend="__auto", ref=None, instant=False, fmt=None):
    t = {"expr": expr, "legendFormat": legend, "range": not instant, "instant": instant,
         "editorMode": "code"}
    if fmt:
        t["format"] = fmt
    if ref:
        t["refId"] = ref
    return t


def loki(expr, legend=None, ref=None, query_type="range"):
    t = {"expr": expr, "queryType": query_type, "editorMode": "code"}
    if legend:
        t["legendFormat"] = legend
    if ref:
        t["refId"] = ref
    return t


# ---------------------------------------------------------------- panels

def thresholds(*steps):
    """steps: (value, color) pairs; the first value is ignored (base)."""
    out = []
    for i, (v, c) in enumerate(steps):
        out.append({"color": c, "value": None if i == 0 else v})
    return {"mode": "absolute", "steps": out}


GREEN = thresholds((None, "green"))


def value_map(pairs):
    """pairs: (value, text, color)."""
    opts = {}
    for i, (v, text, color) in enumerate(pairs):
        opts[str(v)] = {"text": text, "color": color, "index": i}
    return [{"type": "value", "options": opts}]


UP_DOWN = value_map([(1, "UP", "green"), (0, "DOWN", "red")])
YES_NO = value_map([(1, "yes", "green"), (0, "no", "red")])


def panel(ctx, ptype, title, desc, unit, targets, w=12, h=8, options=None, custom=None,
          overrides=None, mappings=None, thr=None, transformations=None, minv=None,
          maxv=None, decimals=None, color=None):
    refs = iter("ABCDEFGHIJKLMNOP")
    tgts = []
    for t in targets:
        t = dict(t)
        t.setdefault("refId", next(refs))
        t = {"datasource": ctx.ds(), **t}
        tgts.append(t)
    defaults = {"unit": unit, "mappings": mappings or [], "thresholds": thr or GREEN}
    if color:
        defaults["color"] = color
    if custom is not None:
        defaults["custom"] = custom
    if minv is not None:
        defaults["min"] = minv
    if maxv is not None:
        defaults["max"] = maxv
    if decimals is not None:
        defaults["decimals"] = decimals
    p = {
        "type": ptype,
        "title": title,
        "description": desc,
        "datasource": ctx.ds(),
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": options or {},
        "targets": tgts,
        "_w": w,
        "_h": h,
    }
    if transformations:
        p["transformations"] = transformations
    return p


def ts(ctx, title, desc, unit, targets, w=12, h=8, stack=False, bars=False, legend_table=False,
       overrides=None, minv=None, maxv=None, thr=None, threshold_style=None, fill=10):
    # minv=None: soft minimum 0 (counts, sizes); minv=False: no minimum (out = negative-Y).
    soft_min = minv is None
    if minv is False:
        minv = None
    custom = {
        "drawStyle": "bars" if bars else "line",
        "lineWidth": 1,
        "fillOpacity": 80 if bars else fill,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        "thresholdsStyle": {"mode": threshold_style or "off"},
    }
    if soft_min:
        custom["axisSoftMin"] = 0
    legend = {"showLegend": True, "placement": "bottom",
              "displayMode": "table" if legend_table else "list",
              "calcs": ["mean", "max", "lastNotNull"] if legend_table else []}
    options = {"legend": legend, "tooltip": {"mode": "multi", "sort": "desc"}}
    return panel(ctx, "timeseries", title, desc, unit, targets, w, h, options, custom,
                 overrides, None, thr, None, minv, maxv, None, {"mode": "palette-classic"})


def stat(ctx, title, desc, unit, targets, w=4, h=4, mappings=None, thr=None, text_mode="auto",
         calc="lastNotNull", color_mode="value", graph=False, decimals=None):
    options = {
        "reduceOptions": {"calcs": [calc], "fields": "", "values": False},
        "colorMode": color_mode,
        "graphMode": "area" if graph else "none",
        "textMode": text_mode,
        "justifyMode": "auto",
        "orientation": "auto",
        "wideLayout": True,
        "showPercentChange": False,
    }
    return panel(ctx, "stat", title, desc, unit, targets, w, h, options, None, None, mappings,
                 thr, None, None, None, decimals, {"mode": "thresholds"})


def bargauge(ctx, title, desc, unit, targets, w=12, h=8, thr=None, minv=0, maxv=1):
    options = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "orientation": "horizontal",
        "displayMode": "gradient",
        "showUnfilled": True,
        "valueMode": "color",
        "namePlacement": "auto",
        "sizing": "auto",
        "minVizHeight": 16,
        "minVizWidth": 8,
        "maxVizHeight": 300,
    }
    return panel(ctx, "bargauge", title, desc, unit, targets, w, h, options, None, None, None,
                 thr or thresholds((None, "green"), (0.8, "orange"), (0.9, "red")),
                 None, minv, maxv, None, {"mode": "thresholds"})


def gauge(ctx, title, desc, unit, targets, w=6, h=8, thr=None, minv=0, maxv=1):
    options = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "orientation": "auto",
        "showThresholdLabels": False,
        "showThresholdMarkers": True,
        "sizing": "auto",
        "minVizHeight": 75,
        "minVizWidth": 75,
    }
    return panel(ctx, "gauge", title, desc, unit, targets, w, h, options, None, None, None,
                 thr or thresholds((None, "green"), (0.8, "orange"), (0.9, "red")),
                 None, minv, maxv, None, {"mode": "thresholds"})


def timeline(ctx, title, desc, targets, mappings, w=12, h=8, unit="none"):
    options = {
        "showValue": "auto",
        "mergeValues": True,
        "alignValue": "left",
        "rowHeight": 0.9,
        "legend": {"showLegend": True, "placement": "bottom", "displayMode": "list"},
        "tooltip": {"mode": "single", "sort": "none"},
    }
    custom = {"fillOpacity": 70, "lineWidth": 0}
    return panel(ctx, "state-timeline", title, desc, unit, targets, w, h, options, custom, None,
                 mappings, thresholds((None, "red"), (1, "green")), None, None, None, None,
                 {"mode": "thresholds"})


def table(ctx, title, desc, unit, targets, w=12, h=8, transformations=None, overrides=None,
          sort_by=None):
    options = {"showHeader": True, "cellHeight": "sm",
               "footer": {"show": False, "reducer": ["sum"], "countRows": False, "fields": ""}}
    if sort_by:
        options["sortBy"] = [{"displayName": sort_by, "desc": False}]
    custom = {"align": "auto", "cellOptions": {"type": "auto"}, "inspect": False, "filterable": True}
    return panel(ctx, "table", title, desc, unit, targets, w, h, options, custom, overrides, None,
                 None, transformations)


def logs_panel(ctx, title, desc, targets, w=24, h=14):
    options = {
        "showTime": True,
        "showLabels": False,
        "showCommonLabels": False,
        "wrapLogMessage": True,
        "prettifyLogMessage": False,
        "enableLogDetails": True,
        "enableInfiniteScrolling": True,
        "dedupStrategy": "none",
        "sortOrder": "Descending",
    }
    return panel(ctx, "logs", title, desc, "none", targets, w, h, options)


def unit_override(name, unit, regex=False):
    return {"matcher": {"id": "byRegexp" if regex else "byName", "options": name},
            "properties": [{"id": "unit", "value": unit}]}


def negative_y(regex):
    """Plot series whose display name matches regex below the axis (out = down)."""
    return {"matcher": {"id": "byRegexp", "options": regex},
            "properties": [{"id": "custom.transform", "value": "negative-Y"}]}


def dashed(regex, color=None):
    props = [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
             {"id": "custom.fillOpacity", "value": 0}]
    if color:
        props.append({"id": "color", "value": {"mode": "fixed", "fixedColor": color}})
    return {"matcher": {"id": "byRegexp", "options": regex}, "properties": props}


def organize(exclude=(), rename=None, order=None):
    o = {"excludeByName": {k: True for k in exclude}, "renameByName": rename or {},
         "indexByName": {k: i for i, k in enumerate(order or [])}}
    return {"id": "organize", "options": o}


def row(title):
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


# ---------------------------------------------------------------- layout

def layout(ctx, items):
    """Place panels left to right, wrapping at 24 columns; rows span the width."""
    out = []
    x = y = 0
    line_h = 0
    for it in items:
        if it["type"] == "row":
            if x:
                y += line_h
            x, line_h = 0, 0
            it = dict(it)
            it["id"] = ctx.pid()
            it["gridPos"] = {"h": 1, "w": 24, "x": 0, "y": y}
            y += 1
            out.append(it)
            continue
        w, h = it.pop("_w"), it.pop("_h")
        if x + w > 24:
            x, y, line_h = 0, y + line_h, 0
        it["id"] = ctx.pid()
        it["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
        # keep a stable, readable key order
        ordered = {k: it[k] for k in ("id", "type", "title", "description", "datasource",
                                      "gridPos") if k in it}
        ordered.update({k: v for k, v in it.items() if k not in ordered})
        out.append(ordered)
        x += w
        line_h = max(line_h, h)
    return out


# ---------------------------------------------------------------- variables

def ds_var(kind):
    name = "Prometheus" if kind == "prometheus" else "Loki"
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": kind,
        "regex": "",
        "hide": 0,
        "refresh": 1,
        "includeAll": False,
        "multi": False,
        "current": {"selected": False, "text": name, "value": kind},
        "options": [],
    }


def prom_var(name, label, query, multi=True, all_value=".+"):
    v = {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "definition": query,
        "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery",
                  "qryType": 1},
        "refresh": 2,
        "regex": "",
        "sort": 1,
        "hide": 0,
        "multi": multi,
        "includeAll": multi,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
    }
    if multi:
        v["allValue"] = all_value
    return v


def loki_var(name, label, lbl, stream='{job="nats"}'):
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": {"type": "loki", "uid": "${datasource}"},
        "definition": "label_values(%s, %s)" % (stream, lbl),
        "query": {"type": 1, "label": lbl, "stream": stream,
                  "refId": "LokiVariableQueryEditor-VariableQuery"},
        "refresh": 2,
        "regex": "",
        "sort": 1,
        "hide": 0,
        "multi": True,
        "includeAll": True,
        "allValue": ".+",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
    }


CLUSTER_VAR = prom_var("cluster", "Cluster", "label_values(nats_server_info, cluster)",
                       all_value=".*")
NODE_VAR = prom_var("node", "Node", 'label_values(nats_up{cluster=~"$cluster"}, node)')


def dashboard(uid, title, description, ctx, items, variables, links_to=()):
    links = [{"title": "NATS dashboards", "type": "dashboards", "tags": TAGS, "asDropdown": True,
              "includeVars": False, "keepTime": True, "icon": "external link",
              "targetBlank": False, "tooltip": "", "url": ""}]
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": TAGS,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": False,
        "graphTooltip": 1,
        "liveNow": False,
        "fiscalYearStartMonth": 0,
        "timezone": "browser",
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {"refresh_intervals": ["10s", "30s", "1m", "5m", "15m", "30m", "1h"]},
        "refresh": "30s",
        "weekStart": "",
        "links": links,
        "annotations": {"list": [{
            "builtIn": 1,
            "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True,
            "hide": True,
            "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts",
            "type": "dashboard",
        }]},
        "templating": {"list": variables},
        "panels": layout(ctx, items),
    }


# ================================================================ 1. overview

def overview():
    c = Ctx("prometheus")
    up_thr = thresholds((None, "red"), (1, "green"))
    items = [
        row("Cluster health"),
        stat(c, "Nodes up", "Nodes whose /varz answered natsmon's last poll (nats_up), out of the "
             "configured nodes. A down node's other series disappear, so panels below simply lose "
             "its line.", "short",
             [prom('sum(nats_up{%s})' % N, "up"), prom('count(nats_up{%s})' % N, "configured")],
             w=4, text_mode="value_and_name"),
        stat(c, "Nodes down", "Configured nodes whose /varz did not answer the last poll.",
             "short", [prom('count(nats_up{%s} == 0) or vector(0)' % N, "down")], w=3,
             thr=thresholds((None, "green"), (1, "red")), color_mode="background"),
        stat(c, "Nodes failing /healthz", "Nodes whose /healthz does not report ok "
             "(nats_healthz_ok == 0), e.g. JetStream not current.", "short",
             [prom('count(nats_healthz_ok{%s} == 0) or vector(0)' % N, "failing")], w=3,
             thr=thresholds((None, "green"), (1, "red")), color_mode="background"),
        stat(c, "JetStream meta leader", "The JetStream meta leader as the polled nodes see it "
             "(nats_jetstream_meta_leader_info). More than one name means the nodes disagree; "
             "none means no node sees a leader.", "none",
             [prom('count by (leader) (nats_jetstream_meta_leader_info{%s})' % N, "{{leader}}")],
             w=4, text_mode="name", color_mode="none"),
        stat(c, "Client connections", "Client connections open across the selected nodes "
             "(nats_varz_connections).", "short",
             [prom('sum(nats_varz_connections{%s})' % N, "connections")], w=3, graph=True),
        stat(c, "Messages in", "Messages per second received by the selected nodes.", "ops",
             [prom('sum(rate(nats_varz_in_msgs_total{%s}[%s]))' % (N, RI), "in")], w=3, graph=True),
        stat(c, "Bytes in", "Payload bytes per second received by the selected nodes.", "Bps",
             [prom('sum(rate(nats_varz_in_bytes_total{%s}[%s]))' % (N, RI), "in")], w=4, graph=True),
        timeline(c, "Node up", "nats_up per node over time: DOWN while natsmon cannot read the "
                 "node's /varz.", [prom('nats_up{%s}' % N, "{{node}}")], UP_DOWN, w=12, h=7),
        timeline(c, "/healthz", "nats_healthz_ok per node: FAILING while the server's /healthz "
                 "reports an error (JetStream not current, not ready).",
                 [prom('nats_healthz_ok{%s}' % N, "{{node}}")],
                 value_map([(1, "OK", "green"), (0, "FAILING", "red")]), w=12, h=7),
        table(c, "Servers", "Identity of the server behind each node (nats_server_info) and "
              "its uptime. server_id changes on every restart; node does not.", "none",
              [prom('nats_server_info{%s}' % N, instant=True, fmt="table"),
               prom('time() - nats_varz_start_time_seconds{%s}' % N, instant=True, fmt="table")],
              w=14, h=8,
              transformations=[
                  {"id": "joinByField", "options": {"byField": "node", "mode": "outer"}},
                  organize(exclude=["Time", "Time 1", "Time 2", "__name__", "Value #A"],
                           rename={"Value #B": "Uptime", "server_name": "Server name",
                                   "version": "Version", "go": "Go", "cluster": "Cluster",
                                   "domain": "Domain", "server_id": "Server ID", "node": "Node"},
                           order=["node", "server_name", "version", "go", "cluster", "domain",
                                  "Value #B", "server_id"]),
              ],
              overrides=[unit_override("Uptime", "dtdurations")], sort_by="Node"),
        table(c, "Meta leader as seen by each node", "Which server each node believes is the "
              "JetStream meta leader (nats_jetstream_meta_leader_info) and whether it is the "
              "leader itself (nats_jetstream_meta_is_leader).", "none",
              [prom('max by (node, leader) (nats_jetstream_meta_leader_info{%s})' % N,
                    instant=True, fmt="table"),
               prom('max by (node) (nats_jetstream_meta_is_leader{%s})' % N, instant=True,
                    fmt="table")],
              w=10, h=8,
              transformations=[
                  {"id": "joinByField", "options": {"byField": "node", "mode": "outer"}},
                  organize(exclude=["Time", "Time 1", "Time 2", "Value #A"],
                           rename={"node": "Node", "leader": "Sees leader",
                                   "Value #B": "Is leader"},
                           order=["node", "leader", "Value #B"]),
              ],
              overrides=[{"matcher": {"id": "byName", "options": "Is leader"},
                          "properties": [{"id": "mappings", "value": YES_NO},
                                         {"id": "custom.cellOptions",
                                          "value": {"type": "color-text"}}]}],
              sort_by="Node"),
        timeline(c, "Meta leadership per node", "nats_jetstream_meta_is_leader over time: "
                 "shows meta leader elections and moves.",
                 [prom('nats_jetstream_meta_is_leader{%s}' % N, "{{node}}")],
                 value_map([(1, "leader", "blue"), (0, "follower", "transparent")]), w=12, h=7),
        ts(c, "Health check failures by type", "nats_healthz_errors: failing /healthz checks "
           "per node and type, with the account, stream and consumer they name (up to 50 "
           "errors per node; the rest count under their type only; nats-server 2.10 and "
           "later).", "short",
           [prom('nats_healthz_errors{%s}' % N,
                 "{{node}} {{type}} {{account}} {{stream}} {{consumer}}")],
           w=12, h=7, bars=True),

        row("Connections"),
        ts(c, "Client connections vs limit", "Open client connections per node "
           "(nats_varz_connections) against the configured max_connections (dashed).", "short",
           [prom('nats_varz_connections{%s}' % N, "{{node}}"),
            prom('nats_varz_max_connections{%s}' % N, "{{node}} max")],
           w=12, overrides=[dashed(".* max$")]),
        bargauge(c, "Connection limit used", "nats_varz_connections / nats_varz_max_connections "
                 "per node.", "percentunit",
                 [prom('nats_varz_connections{%s} / nats_varz_max_connections{%s}' % (N, N),
                       "{{node}}")], w=6),
        ts(c, "New connections", "Client connections accepted per second "
           "(nats_varz_accepted_connections_total). Spikes with flat totals mean reconnect "
           "storms.", "cps",
           [prom('rate(nats_varz_accepted_connections_total{%s}[%s])' % (N, RI), "{{node}}")],
           w=6),
        ts(c, "Subscriptions", "Subscriptions registered per node (nats_varz_subscriptions).",
           "short", [prom('nats_varz_subscriptions{%s}' % N, "{{node}}")], w=8),
        ts(c, "Pending bytes to clients", "Bytes queued to all client connections "
           "(nats_connz_pending_bytes) and to the most backed-up one "
           "(nats_connz_largest_pending_bytes, dashed).", "bytes",
           [prom('nats_connz_pending_bytes{%s}' % N, "{{node}} all"),
            prom('nats_connz_largest_pending_bytes{%s}' % N, "{{node}} largest")],
           w=8, overrides=[dashed(".* largest$")]),
        ts(c, "Slow consumers", "Slow consumer events per interval per node "
           "(increase of nats_varz_slow_consumers_total).", "short",
           [prom('increase(nats_varz_slow_consumers_total{%s}[%s])' % (N, RI), "{{node}}")],
           w=8, bars=True),
        ts(c, "Stale connections and stalled clients", "Connections closed as stale (no answer "
           "to pings; nats_varz_stale_connections_total) and client write stalls "
           "(nats_varz_stalled_clients_total) per interval (nats-server 2.12 and later).",
           "short",
           [prom('increase(nats_varz_stale_connections_total{%s}[%s])' % (N, RI),
                 "{{node}} stale"),
            prom('increase(nats_varz_stalled_clients_total{%s}[%s])' % (N, RI),
                 "{{node}} stalled")], w=12, bars=True),
        ts(c, "Stale connections by kind", "Stale connections per interval by connection kind "
           "(nats_varz_stale_connections_by_kind_total; nats-server 2.12 and later).", "short",
           [prom('sum by (kind) (increase(nats_varz_stale_connections_by_kind_total{%s}[%s]))'
                 % (N, RI), "{{kind}}")], w=12, bars=True, stack=True),

        row("Traffic"),
        ts(c, "Messages in / out", "Messages per second received (up) and sent (down) by each "
           "node (nats_varz_in_msgs_total, nats_varz_out_msgs_total).", "ops",
           [prom('rate(nats_varz_in_msgs_total{%s}[%s])' % (N, RI), "{{node}} in"),
            prom('rate(nats_varz_out_msgs_total{%s}[%s])' % (N, RI), "{{node}} out")],
           w=12, overrides=[negative_y(".* out$")], minv=False),
        ts(c, "Bytes in / out", "Payload bytes per second received (up) and sent (down) by each "
           "node (nats_varz_in_bytes_total, nats_varz_out_bytes_total).", "Bps",
           [prom('rate(nats_varz_in_bytes_total{%s}[%s])' % (N, RI), "{{node}} in"),
            prom('rate(nats_varz_out_bytes_total{%s}[%s])' % (N, RI), "{{node}} out")],
           w=12, overrides=[negative_y(".* out$")], minv=False),
        ts(c, "Slow consumers by connection kind", "Slow consumer events per interval by kind "
           "(client, route, gateway, leaf; nats-server 2.10 and later).", "short",
           [prom('sum by (kind) (increase(nats_varz_slow_consumers_by_kind_total{%s}[%s]))'
                 % (N, RI), "{{kind}}")], w=12, bars=True, stack=True),
        ts(c, "Subject match lookups", "Subject match lookups per second in the routing table "
           "(nats_subsz_matches_total) and the match cache hit ratio (right axis).", "ops",
           [prom('rate(nats_subsz_matches_total{%s}[%s])' % (N, RI), "{{node}} lookups"),
            prom('nats_subsz_cache_hit_ratio{%s}' % N, "{{node}} cache hit ratio")],
           w=12, overrides=[
               {"matcher": {"id": "byRegexp", "options": ".* cache hit ratio$"},
                "properties": [{"id": "unit", "value": "percentunit"},
                               {"id": "custom.axisPlacement", "value": "right"},
                               {"id": "max", "value": 1}]}]),

        row("Routes"),
        ts(c, "Routes per node", "Route connections per node (nats_varz_routes). In a full mesh "
           "each node has at least one route to every other node.", "short",
           [prom('nats_varz_routes{%s}' % N, "{{node}}")], w=8),
        ts(c, "Route RTT", "Round-trip time from each node to each remote server (largest over "
           "the route pool; nats_route_rtt_seconds).", "s",
           [prom('nats_route_rtt_seconds{%s}' % N, "{{node}} -> {{remote}}")], w=8),
        ts(c, "Route pending bytes", "Bytes queued from each node to each remote server "
           "(nats_route_pending_bytes). Growth means a slow or stuck route.", "bytes",
           [prom('nats_route_pending_bytes{%s}' % N, "{{node}} -> {{remote}}")], w=8),
        ts(c, "Route traffic", "Bytes per second each node sends to (down) and receives from "
           "(up) each remote server over routes.", "Bps",
           [prom('rate(nats_route_in_bytes_total{%s}[%s])' % (N, RI), "{{node}} <- {{remote}}"),
            prom('rate(nats_route_out_bytes_total{%s}[%s])' % (N, RI),
                 "{{node}} -> {{remote}} out")],
           w=12, overrides=[negative_y(".* out$")], minv=False),
        table(c, "Routes", "One row per node and remote server: route connections, RTT and "
              "pending bytes.", "short",
              [prom('nats_route_connections{%s}' % N, instant=True, fmt="table"),
               prom('nats_route_rtt_seconds{%s}' % N, instant=True, fmt="table"),
               prom('nats_route_pending_bytes{%s}' % N, instant=True, fmt="table")],
              w=12, transformations=[
                  {"id": "merge", "options": {}},
                  organize(exclude=["Time"],
                           rename={"node": "Node", "remote": "Remote", "Value #A": "Connections",
                                   "Value #B": "RTT", "Value #C": "Pending"},
                           order=["node", "remote", "Value #A", "Value #B", "Value #C"])],
              overrides=[unit_override("RTT", "s"), unit_override("Pending", "bytes")],
              sort_by="Node"),

        row("Resources"),
        ts(c, "CPU", "CPU use of each server process as a fraction of one core "
           "(nats_varz_cpu_ratio; 200% = two cores busy).", "percentunit",
           [prom('nats_varz_cpu_ratio{%s}' % N, "{{node}}")], w=8),
        ts(c, "CPU of all cores", "CPU use as a fraction of all the cores the server sees "
           "(nats_varz_cpu_ratio / nats_varz_cores).", "percentunit",
           [prom('nats_varz_cpu_ratio{%s} / nats_varz_cores{%s}' % (N, N), "{{node}}")],
           w=8, maxv=1),
        ts(c, "Memory", "Resident memory of each server process (nats_varz_memory_bytes) "
           "and its GOMEMLIMIT where set (nats_varz_gomemlimit_bytes, dashed; 2.11.11 and "
           "later).", "bytes",
           [prom('nats_varz_memory_bytes{%s}' % N, "{{node}}"),
            prom('nats_varz_gomemlimit_bytes{%s}' % N, "{{node}} GOMEMLIMIT")],
           w=8, overrides=[dashed(".* GOMEMLIMIT$")]),
        bargauge(c, "TLS certificate expiry", "Time left until each TLS listener's "
                 "certificate expires (nats_varz_tls_cert_not_after_seconds - time(); "
                 "nats-server 2.11.12 and later, TLS listeners only).", "s",
                 [prom('nats_varz_tls_cert_not_after_seconds{%s} - time()' % N,
                       "{{node}} {{listener}}", instant=True)],
                 w=12, thr=thresholds((None, "red"), (7 * 86400, "orange"),
                                      (14 * 86400, "green")), maxv=90 * 86400),
        ts(c, "Disk I/O semaphore waits", "Share of time spent waiting for the disk I/O "
           "semaphore (rate of nats_varz_disk_io_wait_seconds_total) and goroutines waiting "
           "now (nats_varz_disk_io_waiters, right axis; nats-server 2.12.14 and later).",
           "percentunit",
           [prom('rate(nats_varz_disk_io_wait_seconds_total{%s}[%s])' % (N, RI),
                 "{{node}} waiting"),
            prom('nats_varz_disk_io_waiters{%s}' % N, "{{node}} waiters")],
           w=12, overrides=[
               {"matcher": {"id": "byRegexp", "options": ".* waiters$"},
                "properties": [{"id": "unit", "value": "short"},
                               {"id": "custom.axisPlacement", "value": "right"}]}]),

        row("Accounts"),
        ts(c, "Connections per account", "Client connections per account, summed over the "
           "selected nodes (nats_account_connections).", "short",
           [prom('sum by (account) (nats_account_connections{%s, account=~"$account"})' % N,
                 "{{account}}")], w=8, stack=True),
        ts(c, "Account messages in / out", "Messages per second the servers received from "
           "(up) and sent to (down) each account's connections.", "ops",
           [prom('sum by (account) (rate(nats_account_received_msgs_total{%s, account=~"$account"}[%s]))'
                 % (N, RI), "{{account}} in"),
            prom('sum by (account) (rate(nats_account_sent_msgs_total{%s, account=~"$account"}[%s]))'
                 % (N, RI), "{{account}} out")],
           w=8, overrides=[negative_y(".* out$")], minv=False),
        ts(c, "Account bytes in / out", "Bytes per second the servers received from (up) and "
           "sent to (down) each account's connections.", "Bps",
           [prom('sum by (account) (rate(nats_account_received_bytes_total{%s, account=~"$account"}[%s]))'
                 % (N, RI), "{{account}} in"),
            prom('sum by (account) (rate(nats_account_sent_bytes_total{%s, account=~"$account"}[%s]))'
                 % (N, RI), "{{account}} out")],
           w=8, overrides=[negative_y(".* out$")], minv=False),
        ts(c, "Subscriptions per account", "Subscriptions per account, summed over the selected "
           "nodes (nats_account_subscriptions; nats-server 2.10 and later).", "short",
           [prom('sum by (account) (nats_account_subscriptions{%s, account=~"$account"})' % N,
                 "{{account}}")], w=8),
        ts(c, "Slow consumers per account", "Slow consumer events per interval per account "
           "(increase of nats_account_slow_consumers_total).", "short",
           [prom('sum by (account) (increase(nats_account_slow_consumers_total{%s, account=~"$account"}[%s]))'
                 % (N, RI), "{{account}}")], w=8, bars=True),
        ts(c, "Leaf node and gateway connections", "Leaf node connections per node (nats_varz_leafnodes) "
           "and gateway connections to remote clusters (nats_gateway_connections).", "short",
           [prom('nats_varz_leafnodes{%s}' % N, "{{node}} leafnodes"),
            prom('sum by (node, gateway) (nats_gateway_connections{%s})' % N,
                 "{{node}} gateway {{gateway}}")], w=8),
    ]
    variables = [ds_var("prometheus"), CLUSTER_VAR, NODE_VAR,
                 prom_var("account", "Account", "label_values(nats_account_connections, account)")]
    return dashboard("natsmon-nats-overview", "NATS / Cluster overview",
                     "Every node of the NATS cluster as natsmon polls it: up, health, versions, "
                     "meta leader, connections, traffic, routes, resources and accounts.",
                     c, items, variables)


# ================================================================ 2. jetstream

def jetstream():
    c = Ctx("prometheus")
    CL = 'cluster=~"$cluster"'
    CA = 'cluster=~"$cluster", account=~"$account"'
    bad = thresholds((None, "green"), (1, "red"))
    items = [
        row("Overview"),
        stat(c, "Streams", "Streams in the cluster: one nats_stream_messages series per stream, "
             "from its leader.", "short",
             [prom('count(nats_stream_messages{%s}) or vector(0)' % CA, "streams")], w=3),
        stat(c, "Consumers", "Consumers with their own series (nats_consumer_num_pending). "
             "Ephemeral consumers and those over --consumer-metrics-limit are counted in "
             "natsmon_objects_not_exported instead.", "short",
             [prom('count(nats_consumer_num_pending{%s}) or vector(0)' % CA, "consumers")], w=3),
        stat(c, "Consumers without series", "Consumers natsmon saw but gave no per-consumer "
             "series (ephemeral, or over the limit), from natsmon_objects_not_exported.", "short",
             [prom('sum(natsmon_objects_not_exported{kind="consumer"}) or vector(0)',
                   "not exported")], w=3),
        stat(c, "Streams without leader", "Streams no polled node reports itself leader of "
             "(nats_stream_has_leader == 0).", "short",
             [prom('count(nats_stream_has_leader{%s} == 0) or vector(0)' % CA, "leaderless")],
             w=3, thr=bad, color_mode="background"),
        stat(c, "Consumers without leader", "Consumers no polled node reports itself leader of "
             "(nats_consumer_has_leader == 0).", "short",
             [prom('count(nats_consumer_has_leader{%s} == 0) or vector(0)' % CA, "leaderless")],
             w=3, thr=bad, color_mode="background"),
        stat(c, "Offline replicas", "Stream and consumer replicas their leader reports offline.",
             "short",
             [prom('(sum(nats_stream_replica_offline{%s}) or vector(0)) + '
                   '(sum(nats_consumer_replica_offline{%s}) or vector(0))' % (CA, CA), "offline")],
             w=3, thr=bad, color_mode="background"),
        stat(c, "Replicas not current", "Stream and consumer replicas their leader reports "
             "not current.", "short",
             [prom('(count(nats_stream_replica_current{%s} == 0) or vector(0)) + '
                   '(count(nats_consumer_replica_current{%s} == 0) or vector(0))' % (CA, CA),
                   "not current")],
             w=3, thr=thresholds((None, "green"), (1, "orange")), color_mode="background"),
        stat(c, "Meta group peers not current", "JetStream meta group peers the meta leader "
             "reports not current or offline.", "short",
             [prom('count(nats_jetstream_meta_replica_current{%s} == 0 or '
                   'on (cluster, peer) nats_jetstream_meta_replica_offline{%s} == 1) or vector(0)' % (CL, CL),
                   "peers")],
             w=3, thr=bad, color_mode="background"),
        timeline(c, "JetStream enabled", "nats_jetstream_enabled per node.",
                 [prom('nats_jetstream_enabled{%s}' % N, "{{node}}")],
                 value_map([(1, "enabled", "green"), (0, "disabled", "red")]), w=8, h=7),
        timeline(c, "Meta leader seen", "nats_jetstream_meta_has_leader per node: whether the "
                 "node sees an elected JetStream meta leader.",
                 [prom('nats_jetstream_meta_has_leader{%s}' % N, "{{node}}")], YES_NO, w=8, h=7),
        timeline(c, "Meta group peers current", "nats_jetstream_meta_replica_current per meta "
                 "group peer, as the meta leader reports it.",
                 [prom('nats_jetstream_meta_replica_current{%s}' % CL, "{{peer}}")], YES_NO,
                 w=8, h=7),

        row("Storage and memory per node"),
        ts(c, "Storage used vs reserved and max", "JetStream file storage used on each node "
           "(nats_jetstream_storage_bytes), reserved by account limits (dotted) and the "
           "configured maximum (dashed).", "bytes",
           [prom('nats_jetstream_storage_bytes{%s}' % N, "{{node}} used"),
            prom('nats_jetstream_reserved_storage_bytes{%s}' % N, "{{node}} reserved"),
            prom('nats_jetstream_max_storage_bytes{%s}' % N, "{{node}} max")],
           w=9, overrides=[dashed(".* (max|reserved)$")]),
        ts(c, "Memory used vs reserved and max", "JetStream memory storage used on each node "
           "(nats_jetstream_memory_bytes), reserved by account limits and the configured "
           "maximum (dashed).", "bytes",
           [prom('nats_jetstream_memory_bytes{%s}' % N, "{{node}} used"),
            prom('nats_jetstream_reserved_memory_bytes{%s}' % N, "{{node}} reserved"),
            prom('nats_jetstream_max_memory_bytes{%s}' % N, "{{node}} max")],
           w=9, overrides=[dashed(".* (max|reserved)$")]),
        bargauge(c, "Storage and memory used of max", "Used / configured maximum per node, for "
                 "file storage and memory.", "percentunit",
                 [prom('nats_jetstream_storage_bytes{%s} / nats_jetstream_max_storage_bytes{%s}'
                       % (N, N), "{{node}} storage"),
                  prom('nats_jetstream_memory_bytes{%s} / nats_jetstream_max_memory_bytes{%s}'
                       % (N, N), "{{node}} memory")], w=6),
        ts(c, "Streams and consumers hosted", "Stream and consumer replicas hosted per node "
           "(nats_jetstream_streams, nats_jetstream_consumers) and replicated assets "
           "(nats_jetstream_ha_assets). Replicas are counted on every node that hosts them.",
           "short",
           [prom('nats_jetstream_streams{%s}' % N, "{{node}} streams"),
            prom('nats_jetstream_consumers{%s}' % N, "{{node}} consumers"),
            prom('nats_jetstream_ha_assets{%s}' % N, "{{node}} HA assets")], w=8),
        ts(c, "Messages stored per node", "Messages stored on each node, replicas included "
           "(nats_jetstream_stored_messages).", "short",
           [prom('nats_jetstream_stored_messages{%s}' % N, "{{node}}")], w=8),
        ts(c, "JetStream API requests and errors", "JetStream API requests (up) and failed "
           "requests (down) per second per node.", "reqps",
           [prom('rate(nats_jetstream_api_requests_total{%s}[%s])' % (N, RI), "{{node}} requests"),
            prom('rate(nats_jetstream_api_errors_total{%s}[%s])' % (N, RI), "{{node}} errors")],
           w=8, overrides=[negative_y(".* errors$")], minv=False),
        ts(c, "Account storage used vs reserved", "File storage each account's streams use, "
           "summed over the selected nodes (replicas included), and the storage reserved for it "
           "(dashed).", "bytes",
           [prom('sum by (account) (nats_jetstream_account_storage_bytes{%s, account=~"$account"})'
                 % N, "{{account}} used"),
            prom('sum by (account) (nats_jetstream_account_reserved_storage_bytes{%s, account=~"$account"})'
                 % N, "{{account}} reserved")], w=8, overrides=[dashed(".* reserved$")]),
        ts(c, "Account memory used vs reserved", "Memory each account's streams use, summed "
           "over the selected nodes, and the memory reserved for it (dashed).", "bytes",
           [prom('sum by (account) (nats_jetstream_account_memory_bytes{%s, account=~"$account"})'
                 % N, "{{account}} used"),
            prom('sum by (account) (nats_jetstream_account_reserved_memory_bytes{%s, account=~"$account"})'
                 % N, "{{account}} reserved")], w=8, overrides=[dashed(".* reserved$")]),
        ts(c, "API in flight", "JetStream API requests in flight per node "
           "(nats_jetstream_api_inflight_requests).", "short",
           [prom('nats_jetstream_api_inflight_requests{%s}' % N, "{{node}}")], w=8),

        row("Streams"),
        table(c, "Streams", "One row per stream, from its leader: messages, bytes, share of "
              "max_bytes, consumers, replicas and leader.", "short",
              [prom('nats_stream_messages{%s}' % JS, instant=True, fmt="table"),
               prom('nats_stream_bytes{%s}' % JS, instant=True, fmt="table"),
               prom('nats_stream_bytes{%s} / nats_stream_max_bytes{%s}' % (JS, JS), instant=True,
                    fmt="table"),
               prom('nats_stream_consumers{%s}' % JS, instant=True, fmt="table"),
               prom('nats_stream_replicas{%s}' % JS, instant=True, fmt="table"),
               prom('nats_stream_has_leader{%s}' % JS, instant=True, fmt="table")],
              w=24, h=8, transformations=[
                  {"id": "merge", "options": {}},
                  organize(exclude=["Time", "__name__"],
                           rename={"cluster": "Cluster", "account": "Account", "stream": "Stream",
                                   "Value #A": "Messages", "Value #B": "Bytes",
                                   "Value #C": "Of max_bytes", "Value #D": "Consumers",
                                   "Value #E": "Replicas", "Value #F": "Has leader"},
                           order=["cluster", "account", "stream", "Value #A", "Value #B",
                                  "Value #C", "Value #D", "Value #E", "Value #F"])],
              overrides=[unit_override("Bytes", "bytes"),
                         {"matcher": {"id": "byName", "options": "Of max_bytes"},
                          "properties": [{"id": "unit", "value": "percentunit"},
                                         {"id": "custom.cellOptions",
                                          "value": {"type": "gauge", "mode": "basic"}},
                                         {"id": "min", "value": 0}, {"id": "max", "value": 1}]},
                         {"matcher": {"id": "byName", "options": "Has leader"},
                          "properties": [{"id": "mappings", "value": YES_NO},
                                         {"id": "custom.cellOptions",
                                          "value": {"type": "color-text"}}]}],
              sort_by="Stream"),
        ts(c, "Messages per stream", "Messages in each stream (nats_stream_messages).", "short",
           [prom('nats_stream_messages{%s}' % JS, "{{account}}/{{stream}}")], w=8),
        ts(c, "Bytes per stream", "Bytes in each stream (nats_stream_bytes) and its max_bytes "
           "limit where set (dashed).", "bytes",
           [prom('nats_stream_bytes{%s}' % JS, "{{account}}/{{stream}}"),
            prom('nats_stream_max_bytes{%s}' % JS, "{{account}}/{{stream}} max")],
           w=8, overrides=[dashed(".* max$")]),
        ts(c, "Stream append rate", "Messages appended per second, from the growth of the "
           "stream's last sequence (nats_stream_last_seq).", "ops",
           [prom('clamp_min(deriv(nats_stream_last_seq{%s}[%s]), 0)' % (JS, RI),
                 "{{account}}/{{stream}}")], w=8),
        bargauge(c, "Stream bytes of max_bytes", "nats_stream_bytes / nats_stream_max_bytes. "
                 "Streams without a max_bytes limit have no bar.", "percentunit",
                 [prom('nats_stream_bytes{%s} / nats_stream_max_bytes{%s}' % (JS, JS),
                       "{{account}}/{{stream}}")], w=8),
        bargauge(c, "Stream messages of max_msgs", "nats_stream_messages / "
                 "nats_stream_max_messages. Streams without a max_msgs limit have no bar.",
                 "percentunit",
                 [prom('nats_stream_messages{%s} / nats_stream_max_messages{%s}' % (JS, JS),
                       "{{account}}/{{stream}}")], w=8),
        bargauge(c, "Stream consumers of max_consumers", "nats_stream_consumers / "
                 "nats_stream_max_consumers. Streams without a limit have no bar.",
                 "percentunit",
                 [prom('nats_stream_consumers{%s} / nats_stream_max_consumers{%s}' % (JS, JS),
                       "{{account}}/{{stream}}")], w=8),
        ts(c, "Source and mirror lag", "Messages each stream's sources or mirror are behind "
           "their origin (nats_stream_source_lag).", "short",
           [prom('nats_stream_source_lag{%s}' % JS, "{{stream}} <- {{source}}")], w=12),
        ts(c, "Interior deleted messages", "Interior deleted messages per stream "
           "(nats_stream_deleted_messages).", "short",
           [prom('nats_stream_deleted_messages{%s}' % JS, "{{account}}/{{stream}}")], w=12),

        row("Consumers"),
        ts(c, "Consumer pending", "Messages matching each consumer not yet delivered "
           "(nats_consumer_num_pending): the exact backlog.", "short",
           [prom('nats_consumer_num_pending{%s}' % JSC, "{{stream}}/{{consumer}}")],
           w=8, legend_table=True),
        ts(c, "Ack pending", "Messages delivered and awaiting acknowledgement "
           "(nats_consumer_num_ack_pending).", "short",
           [prom('nats_consumer_num_ack_pending{%s}' % JSC, "{{stream}}/{{consumer}}")],
           w=8, legend_table=True),
        bargauge(c, "Ack pending of max_ack_pending", "nats_consumer_num_ack_pending / "
                 "nats_consumer_max_ack_pending: at 100% the consumer stops delivering.",
                 "percentunit",
                 [prom('nats_consumer_num_ack_pending{%s} / nats_consumer_max_ack_pending{%s}'
                       % (JSC, JSC), "{{stream}}/{{consumer}}")], w=8),
        ts(c, "Redelivered", "Messages currently redelivered at least once "
           "(nats_consumer_num_redelivered).", "short",
           [prom('nats_consumer_num_redelivered{%s}' % JSC, "{{stream}}/{{consumer}}")], w=8),
        ts(c, "Consumer lag", "Stream last sequence minus the consumer's delivered stream "
           "sequence (nats_consumer_lag). Over-states the backlog of filtered consumers; see "
           "Consumer pending.", "short",
           [prom('nats_consumer_lag{%s}' % JSC, "{{stream}}/{{consumer}}")], w=8),
        ts(c, "Delivery rate", "Messages delivered per second, from the growth of the "
           "consumer's delivered sequence (nats_consumer_delivered_consumer_seq).", "ops",
           [prom('clamp_min(deriv(nats_consumer_delivered_consumer_seq{%s}[%s]), 0)' % (JSC, RI),
                 "{{stream}}/{{consumer}}")], w=8),
        ts(c, "Waiting pull requests", "Pull requests waiting for messages "
           "(nats_consumer_num_waiting).", "short",
           [prom('nats_consumer_num_waiting{%s}' % JSC, "{{stream}}/{{consumer}}")], w=12),
        ts(c, "Unacknowledged window", "Stream sequences between the ack floor and the last "
           "delivered message (nats_consumer_delivered_stream_seq - "
           "nats_consumer_ack_floor_stream_seq).", "short",
           [prom('nats_consumer_delivered_stream_seq{%s} - nats_consumer_ack_floor_stream_seq{%s}'
                 % (JSC, JSC), "{{stream}}/{{consumer}}")], w=12),

        row("Replica health"),
        timeline(c, "Stream has leader", "nats_stream_has_leader: no means no polled node "
                 "reports itself leader and figures come from the most advanced replica.",
                 [prom('nats_stream_has_leader{%s}' % JS, "{{account}}/{{stream}}")], YES_NO,
                 w=12),
        timeline(c, "Consumer has leader", "nats_consumer_has_leader per consumer.",
                 [prom('nats_consumer_has_leader{%s}' % JSC, "{{stream}}/{{consumer}}")], YES_NO,
                 w=12),
        table(c, "Stream replicas", "One row per stream replica (peer), from the stream "
              "leader's peer list: current, offline, Raft lag and last activity.", "short",
              [prom('nats_stream_replica_current{%s}' % JS, instant=True, fmt="table"),
               prom('nats_stream_replica_offline{%s}' % JS, instant=True, fmt="table"),
               prom('nats_stream_replica_lag{%s}' % JS, instant=True, fmt="table"),
               prom('nats_stream_replica_active_seconds{%s}' % JS, instant=True, fmt="table")],
              w=12, transformations=[
                  {"id": "merge", "options": {}},
                  organize(exclude=["Time", "cluster"],
                           rename={"account": "Account", "stream": "Stream", "peer": "Peer",
                                   "Value #A": "Current", "Value #B": "Offline",
                                   "Value #C": "Lag", "Value #D": "Last active"},
                           order=["account", "stream", "peer", "Value #A", "Value #B",
                                  "Value #C", "Value #D"])],
              overrides=[
                  {"matcher": {"id": "byName", "options": "Current"},
                   "properties": [{"id": "mappings", "value": YES_NO},
                                  {"id": "custom.cellOptions", "value": {"type": "color-text"}}]},
                  {"matcher": {"id": "byName", "options": "Offline"},
                   "properties": [{"id": "mappings", "value": value_map(
                       [(1, "offline", "red"), (0, "online", "green")])},
                       {"id": "custom.cellOptions", "value": {"type": "color-text"}}]},
                  unit_override("Last active", "s")],
              sort_by="Stream"),
        ts(c, "Stream replica lag", "Raft entries each stream replica is behind its leader "
           "(nats_stream_replica_lag).", "short",
           [prom('nats_stream_replica_lag{%s}' % JS, "{{stream}} @ {{peer}}")], w=12),
        ts(c, "Stream replicas offline or not current", "Per stream: replicas the leader "
           "reports offline (nats_stream_replica_offline) and replicas not current "
           "(nats_stream_replica_current == 0).", "short",
           [prom('sum by (account, stream) (nats_stream_replica_offline{%s})' % JS,
                 "{{stream}} offline"),
            prom('count by (account, stream) (nats_stream_replica_current{%s} == 0)' % JS,
                 "{{stream}} not current")], w=12, bars=True),
        ts(c, "Consumer replica lag", "Raft entries each consumer replica is behind its leader "
           "(nats_consumer_replica_lag).", "short",
           [prom('nats_consumer_replica_lag{%s}' % JSC, "{{stream}}/{{consumer}} @ {{peer}}")],
           w=12),
        ts(c, "Consumer replicas offline or not current", "Per consumer: replicas the leader "
           "reports offline (nats_consumer_replica_offline) and not current "
           "(nats_consumer_replica_current == 0).", "short",
           [prom('sum by (account, stream, consumer) (nats_consumer_replica_offline{%s})' % JSC,
                 "{{stream}}/{{consumer}} offline"),
            prom('count by (account, stream, consumer) (nats_consumer_replica_current{%s} == 0)'
                 % JSC, "{{stream}}/{{consumer}} not current")], w=12, bars=True),
        ts(c, "Raft groups behind per node", "Raft groups (meta, streams, consumers) on each "
           "node that are catching up or have committed entries not applied "
           "(nats_raft_groups_behind, from /raftz, nats-server 2.10.17 and later), against "
           "the groups the node takes part in (nats_raft_groups, dashed).", "short",
           [prom('nats_raft_groups_behind{%s}' % N, "{{node}} behind"),
            prom('nats_raft_groups{%s}' % N, "{{node}} groups")],
           w=12, overrides=[dashed(".* groups$")]),
        ts(c, "Raft apply lag", "Committed Raft entries each node has not applied yet, for the "
           "ten groups furthest behind (nats_raft_group_apply_lag).", "short",
           [prom('topk(10, nats_raft_group_apply_lag{%s})' % N,
                 "{{node}} {{kind}} {{group}}")], w=12),
        ts(c, "Meta proposals pending and snapshot backlog", "Meta group proposals not applied "
           "yet (nats_jetstream_meta_pending) and Raft entries since the last meta snapshot "
           "(nats_jetstream_meta_snapshot_pending_entries, 2.11.11 and later).", "short",
           [prom('nats_jetstream_meta_pending{%s}' % N, "{{node}} pending"),
            prom('nats_jetstream_meta_snapshot_pending_entries{%s}' % N,
                 "{{node}} since snapshot")], w=12),
        stat(c, "JetStream API level", "JetStream API level each server supports "
             "(nats_jetstream_api_level, 2.11 and later); mixed levels mean a rolling "
             "upgrade is under way.", "none",
             [prom('nats_jetstream_api_level{%s}' % N, "{{node}}")], w=12, h=8),
        ts(c, "Meta group peer lag", "Raft entries each JetStream meta group peer is behind the "
           "meta leader (nats_jetstream_meta_replica_lag).", "short",
           [prom('nats_jetstream_meta_replica_lag{%s}' % CL, "{{peer}}")], w=12),
        ts(c, "Meta group peer last active", "Seconds since the meta leader last heard from each "
           "meta group peer (nats_jetstream_meta_replica_active_seconds).", "s",
           [prom('nats_jetstream_meta_replica_active_seconds{%s}' % CL, "{{peer}}")], w=12),
    ]
    variables = [
        ds_var("prometheus"), CLUSTER_VAR, NODE_VAR,
        prom_var("account", "Account", 'label_values(nats_stream_info{cluster=~"$cluster"}, account)'),
        prom_var("stream", "Stream",
                 'label_values(nats_stream_info{cluster=~"$cluster", account=~"$account"}, stream)'),
        prom_var("consumer", "Consumer",
                 'label_values(nats_consumer_num_pending{cluster=~"$cluster", account=~"$account", '
                 'stream=~"$stream"}, consumer)'),
    ]
    return dashboard("natsmon-nats-jetstream", "NATS / JetStream",
                     "JetStream per node (storage, memory, API) and per stream and consumer "
                     "(from their leaders): usage against limits, backlog, redeliveries and "
                     "replica health.", c, items, variables)


# ================================================================ 3. logs

def logs():
    c = Ctx("loki")
    SEL = ('job="nats", host=~"$host", container_name=~"$container", service=~"$service", '
           'stream=~"$stream"')

    def sel(level='log_level=~"$level"'):
        return "{%s, %s}" % (SEL, level)

    ERR = 'log_level=~"ERROR|FATAL"'
    WARN = 'log_level="WARN"'
    level_colors = [("ERROR", "red"), ("FATAL", "dark-red"), ("WARN", "yellow"),
                    ("INFO", "green"), ("DEBUG", "blue"), ("TRACE", "purple"),
                    ("UNKNOWN", "text")]
    color_overrides = [{"matcher": {"id": "byName", "options": lvl},
                        "properties": [{"id": "color",
                                        "value": {"mode": "fixed", "fixedColor": col}}]}
                       for lvl, col in level_colors]
    items = [
        row("Volume"),
        stat(c, "Errors", "ERROR and FATAL lines in the time range.", "short",
             [loki('sum(count_over_time(%s[$__auto]))' % sel(ERR), "errors")], w=4,
             calc="sum", thr=thresholds((None, "green"), (1, "red")), color_mode="background"),
        stat(c, "Warnings", "WARN lines in the time range.", "short",
             [loki('sum(count_over_time(%s[$__auto]))' % sel(WARN), "warnings")], w=4,
             calc="sum", thr=thresholds((None, "green"), (1, "orange")), color_mode="background"),
        stat(c, "Lines", "All lines of the selected containers and levels in the time range.",
             "short", [loki('sum(count_over_time(%s[$__auto]))' % sel(), "lines")], w=4,
             calc="sum"),
        ts(c, "Error and warning rate", "WARN, ERROR and FATAL lines per second by container.",
           "cps",
           [loki('sum by (container_name, log_level) (rate(%s[$__auto]))'
                 % sel('log_level=~"WARN|ERROR|FATAL"'), "{{container_name}} {{log_level}}")],
           w=12, h=8),
        ts(c, "Log volume by level", "Lines per interval by log_level (NATS [INF]/[WRN]/[ERR] "
           "tags, logfmt or JSON level; UNKNOWN when none).", "short",
           [loki('sum by (log_level) (count_over_time(%s[$__auto]))' % sel(), "{{log_level}}")],
           w=12, h=8, bars=True, stack=True, overrides=color_overrides),
        ts(c, "Log volume by container", "Lines per interval by container.", "short",
           [loki('sum by (container_name) (count_over_time(%s[$__auto]))' % sel(),
                 "{{container_name}}")],
           w=12, h=8, bars=True, stack=True),

        row("Logs"),
        logs_panel(c, "Errors and warnings", "WARN, ERROR and FATAL lines of the selected "
                   "containers matching the search text.",
                   [loki('%s |~ "(?i)$search"' % sel('log_level=~"WARN|ERROR|FATAL"'))], h=10),
        logs_panel(c, "NATS server logs", "Lines of the selected containers, levels and output "
                   "streams matching the search text (a case-insensitive regular expression).",
                   [loki('%s |~ "(?i)$search"' % sel())], h=16),
    ]
    variables = [
        ds_var("loki"),
        loki_var("host", "Host", "host"),
        loki_var("container", "Container", "container_name"),
        loki_var("service", "Service", "service"),
        loki_var("level", "Level", "log_level"),
        loki_var("stream", "Output stream", "stream"),
        {"name": "search", "label": "Search (regex)", "type": "textbox", "query": "",
         "hide": 0, "current": {"selected": False, "text": "", "value": ""}, "options": []},
    ]
    return dashboard("natsmon-nats-logs", "NATS / Logs",
                     "NATS server container logs shipped to Loki by natsmon (job=\"nats\"): "
                     "volume by level, errors and warnings, and the lines themselves.",
                     c, items, variables)


# ================================================================ 4. natsmon self

def natsmon_self():
    N = N_SELF
    c = Ctx("prometheus")
    items = [
        row("Polling"),
        stat(c, "Nodes up", "Nodes whose /varz answered the last poll, out of those "
             "configured.", "short",
             [prom('sum(nats_up{%s})' % N, "up"), prom('count(nats_up{%s})' % N, "configured")],
             w=4, text_mode="value_and_name"),
        stat(c, "Poll errors", "Failed endpoint polls per second over all selected nodes "
             "(natsmon_poll_errors_total).", "cps",
             [prom('sum(rate(natsmon_poll_errors_total{%s}[%s])) or vector(0)' % (N, RI),
                   "errors")],
             w=4, thr=thresholds((None, "green"), (0.001, "red")), color_mode="background",
             graph=True),
        stat(c, "Oldest successful poll", "Age of the stalest endpoint's last successful poll "
             "(natsmon_poll_last_success_timestamp_seconds).", "s",
             [prom('max(time() - natsmon_poll_last_success_timestamp_seconds{%s})' % N, "age")],
             w=4, thr=thresholds((None, "green"), (30, "orange"), (120, "red"))),
        stat(c, "natsmon version", "natsmon's version (natsmon_build_info).", "none",
             [prom('count by (version) (natsmon_build_info)', "{{version}}")], w=4,
             text_mode="name", color_mode="none"),
        table(c, "Nodes", "Per node: up, cluster and server version (nats_server_info, absent "
              "while the node is down), last poll cycle duration and age of the oldest "
              "endpoint success.", "short",
              [prom('max by (node) (nats_up{%s})' % N, instant=True, fmt="table"),
               prom('max by (node, cluster, version) (nats_server_info{%s})'
                    % N, instant=True, fmt="table"),
               prom('max by (node) (natsmon_poll_cycle_duration_seconds{%s})' % N, instant=True,
                    fmt="table"),
               prom('max by (node) (time() - natsmon_poll_last_success_timestamp_seconds{%s})'
                    % N, instant=True, fmt="table")],
              w=8, h=4 * 2, transformations=[
                  {"id": "joinByField", "options": {"byField": "node", "mode": "outer"}},
                  organize(exclude=["Time", "Time 1", "Time 2", "Time 3", "Time 4", "Value #B"],
                           rename={"node": "Node", "Value #A": "Up", "cluster": "Cluster",
                                   "version": "Version", "Value #C": "Cycle",
                                   "Value #D": "Oldest success"},
                           order=["node", "Value #A", "cluster", "version", "Value #C",
                                  "Value #D"])],
              overrides=[
                  {"matcher": {"id": "byName", "options": "Up"},
                   "properties": [{"id": "mappings", "value": UP_DOWN},
                                  {"id": "custom.cellOptions", "value": {"type": "color-text"}}]},
                  unit_override("Cycle", "s"), unit_override("Oldest success", "s")],
              sort_by="Node"),
        ts(c, "Poll errors by node, endpoint and reason", "Failed endpoint polls per interval "
           "(increase of natsmon_poll_errors_total). Each failure is also one WARN line "
           "'Poll failed.' in natsmon's log.", "short",
           [prom('sum by (node, endpoint, reason) (increase(natsmon_poll_errors_total{%s}[%s]))'
                 % (N, RI), "{{node}} {{endpoint}} {{reason}}")],
           w=12, bars=True, stack=True, legend_table=True),
        ts(c, "Poll error ratio", "Failed / all requests per node and endpoint (0 until "
           "an endpoint first fails).", "percentunit",
           [prom('(sum by (node, endpoint) (rate(natsmon_poll_errors_total{%s}[%s])) '
                 'or 0 * sum by (node, endpoint) (rate(natsmon_polls_total{%s}[%s]))) / '
                 'sum by (node, endpoint) (rate(natsmon_polls_total{%s}[%s]))'
                 % (N, RI, N, RI, N, RI), "{{node}} {{endpoint}}")], w=12, maxv=1),
        ts(c, "Poll duration p99", "99th percentile time to fetch and decode each endpoint, per "
           "node (natsmon_poll_duration_seconds).", "s",
           [prom('histogram_quantile(0.99, sum by (node, endpoint, le) '
                 '(rate(natsmon_poll_duration_seconds_bucket{%s}[%s])))' % (N, RI),
                 "{{node}} {{endpoint}}")], w=12, legend_table=True),
        ts(c, "Poll duration p50 by endpoint", "Median time to fetch and decode each endpoint, "
           "over the selected nodes, and the mean (dashed).", "s",
           [prom('histogram_quantile(0.5, sum by (endpoint, le) '
                 '(rate(natsmon_poll_duration_seconds_bucket{%s}[%s])))' % (N, RI),
                 "{{endpoint}} p50"),
            prom('sum by (endpoint) (rate(natsmon_poll_duration_seconds_sum{%s}[%s])) / '
                 'sum by (endpoint) (rate(natsmon_poll_duration_seconds_count{%s}[%s]))'
                 % (N, RI, N, RI), "{{endpoint}} mean")],
           w=12, overrides=[dashed(".* mean$")]),
        ts(c, "Time since last successful poll", "Age of each node's and endpoint's last "
           "successful poll. It grows past the poll interval while an endpoint fails.", "s",
           [prom('time() - natsmon_poll_last_success_timestamp_seconds{%s}' % N,
                 "{{node}} {{endpoint}}")],
           w=12, thr=thresholds((None, "green"), (30, "orange"), (120, "red")),
           threshold_style="dashed"),
        ts(c, "Poll cycle duration", "Wall time of each node's last complete poll cycle, all "
           "endpoints (natsmon_poll_cycle_duration_seconds).", "s",
           [prom('natsmon_poll_cycle_duration_seconds{%s}' % N, "{{node}}")], w=12),
        ts(c, "Poll requests", "Requests per second to each monitoring endpoint "
           "(natsmon_polls_total) and completed poll cycles (natsmon_poll_cycles_total, dashed).",
           "reqps",
           [prom('sum by (endpoint) (rate(natsmon_polls_total{%s}[%s]))' % (N, RI), "{{endpoint}}"),
            prom('sum(rate(natsmon_poll_cycles_total{%s}[%s]))' % (N, RI), "cycles")],
           w=8, overrides=[dashed("^cycles$")]),
        ts(c, "Response bytes", "Response body bytes per second read from each endpoint "
           "(natsmon_poll_response_bytes_total).", "Bps",
           [prom('sum by (endpoint) (rate(natsmon_poll_response_bytes_total{%s}[%s]))' % (N, RI),
                 "{{endpoint}}")], w=8),
        ts(c, "/connz paging", "Connections natsmon read across /connz pages "
           "(nats_connz_polled_connections) and whether paging stopped at "
           "--connz-max-connections (nats_connz_truncated, right axis).", "short",
           [prom('nats_connz_polled_connections{%s}' % N, "{{node}} read"),
            prom('nats_connz_truncated{%s}' % N, "{{node}} truncated")],
           w=8, overrides=[{"matcher": {"id": "byRegexp", "options": ".* truncated$"},
                            "properties": [{"id": "custom.axisPlacement", "value": "right"},
                                           {"id": "max", "value": 1}]}]),

        row("Rendering and scrapes"),
        ts(c, "Render duration", "Time the last rendering of the NATS snapshot into exposition "
           "text took (natsmon_render_duration_seconds).", "s",
           [prom('natsmon_render_duration_seconds', "render")], w=6),
        ts(c, "Exposition size", "Size of the last rendered NATS exposition text "
           "(natsmon_render_bytes).", "bytes", [prom('natsmon_render_bytes', "bytes")], w=6),
        ts(c, "Series rendered", "Series in the last rendered NATS exposition "
           "(natsmon_render_series) and objects given no per-object series "
           "(natsmon_objects_not_exported, dashed).", "short",
           [prom('natsmon_render_series', "series"),
            prom('natsmon_objects_not_exported', "not exported {{kind}} {{reason}}")],
           w=6, overrides=[dashed("^not exported .*")]),
        ts(c, "Scrapes", "Requests per second served on /metrics (natsmon_scrapes_total).",
           "reqps", [prom('rate(natsmon_scrapes_total[%s])' % RI, "scrapes")], w=6),

        row("Log shipping"),
        timeline(c, "Loki reachable", "natsmon_logs_loki_up: down while pushes get retryable "
                 "errors (connection failures, 429, 5xx).",
                 [prom('natsmon_logs_loki_up', "loki")], UP_DOWN, w=12, h=5),
        stat(c, "Containers tailed", "Containers natsmon is following (natsmon_logs_containers).",
             "short", [prom('natsmon_logs_containers', "containers")], w=4, h=5, graph=True),
        stat(c, "Buffered bytes", "Bytes of lines read but not yet acknowledged by Loki. When "
             "this reaches --buffer-max-bytes natsmon stops reading from Docker.", "bytes",
             [prom('natsmon_logs_buffered_bytes', "buffered")], w=4, h=5, graph=True),
        stat(c, "Max shipping lag", "Age of the oldest line not yet acknowledged by Loki, over "
             "all containers (natsmon_logs_lag_seconds).", "s",
             [prom('max(natsmon_logs_lag_seconds)', "lag")], w=4, h=5,
             thr=thresholds((None, "green"), (30, "orange"), (300, "red"))),
        ts(c, "Lines read vs sent", "Lines per second read from Docker and acknowledged by "
           "Loki, all containers. A lasting gap means a growing backlog.", "cps",
           [prom('sum(rate(natsmon_logs_lines_read_total[%s]))' % RI, "read"),
            prom('sum(rate(natsmon_logs_lines_sent_total[%s]))' % RI, "sent")], w=12),
        ts(c, "Lines sent per container", "Lines per second Loki acknowledged, per container "
           "(natsmon_logs_lines_sent_total).", "cps",
           [prom('sum by (container) (rate(natsmon_logs_lines_sent_total[%s]))' % RI,
                 "{{container}}")], w=12),
        ts(c, "Bytes read per container", "Log bytes per second read from each container, "
           "timestamps excluded (natsmon_logs_bytes_read_total).", "Bps",
           [prom('sum by (container) (rate(natsmon_logs_bytes_read_total[%s]))' % RI,
                 "{{container}}")], w=12),
        ts(c, "Lines read by level", "Lines per second read from Docker, by log_level "
           "(natsmon_logs_lines_by_level_total), all containers.", "cps",
           [prom('sum by (log_level) (rate(natsmon_logs_lines_by_level_total[%s]))' % RI,
                 "{{log_level}}")], w=12, stack=True),
        ts(c, "ERROR and FATAL lines per container", "ERROR and FATAL lines per interval by "
           "container, as the NatsmonContainerErrorBurst alert counts them "
           "(natsmon_logs_lines_by_level_total).", "short",
           [prom('sum by (container) (increase(natsmon_logs_lines_by_level_total'
                 '{log_level=~"ERROR|FATAL"}[%s]))' % RI, "{{container}}")],
           w=12, bars=True, stack=True),
        ts(c, "Push retries", "Push attempts per interval that failed and are retried, by "
           "reason (increase of natsmon_logs_push_retries_total).", "short",
           [prom('sum by (reason) (increase(natsmon_logs_push_retries_total[%s]))' % RI,
                 "{{reason}}")], w=12, bars=True, stack=True),
        ts(c, "Rejected, dropped and truncated lines", "Lines per interval Loki refused and "
           "that are not retried (rejected), that natsmon could not ship (dropped), and lines "
           "cut at --max-line-bytes (truncated).", "short",
           [prom('sum by (reason) (increase(natsmon_logs_lines_rejected_total[%s]))' % RI,
                 "rejected {{reason}}"),
            prom('sum by (reason) (increase(natsmon_logs_lines_dropped_total[%s]))' % RI,
                 "dropped {{reason}}"),
            prom('sum by (container) (increase(natsmon_logs_lines_truncated_total[%s]))' % RI,
                 "truncated {{container}}")], w=12, bars=True, stack=True),
        ts(c, "Buffered lines and bytes", "Lines (left) and bytes (right) read but not yet "
           "acknowledged by Loki: the shipper's queue depth.", "short",
           [prom('natsmon_logs_buffered_lines', "lines"),
            prom('natsmon_logs_buffered_bytes', "bytes")],
           w=12, overrides=[{"matcher": {"id": "byName", "options": "bytes"},
                             "properties": [{"id": "unit", "value": "bytes"},
                                            {"id": "custom.axisPlacement", "value": "right"}]}]),
        ts(c, "Shipping lag per container", "Age of each container's oldest line not yet "
           "acknowledged by Loki; 0 when caught up (natsmon_logs_lag_seconds).", "s",
           [prom('natsmon_logs_lag_seconds', "{{container}}")], w=12),
        ts(c, "Push duration", "Duration of push requests to Loki: p50, p99 and mean "
           "(natsmon_logs_push_duration_seconds).", "s",
           [prom('histogram_quantile(0.5, sum by (le) (rate(natsmon_logs_push_duration_seconds_bucket[%s])))'
                 % RI, "p50"),
            prom('histogram_quantile(0.99, sum by (le) (rate(natsmon_logs_push_duration_seconds_bucket[%s])))'
                 % RI, "p99"),
            prom('sum(rate(natsmon_logs_push_duration_seconds_sum[%s])) / '
                 'sum(rate(natsmon_logs_push_duration_seconds_count[%s]))' % (RI, RI), "mean")],
           w=12),
        ts(c, "Push requests", "Push requests per second to Loki "
           "(natsmon_logs_push_duration_seconds_count).", "reqps",
           [prom('sum(rate(natsmon_logs_push_duration_seconds_count[%s]))' % RI, "pushes")],
           w=12),
        ts(c, "Docker and checkpoint errors", "Docker API failures (events, list, logs), "
           "failed checkpoint reads/writes per interval, by reason, and logs found rotated "
           "away on resume (natsmon_logs_rotation_gaps_total).", "short",
           [prom('sum by (reason) (increase(natsmon_logs_docker_errors_total[%s]))' % RI,
                 "docker {{reason}}"),
            prom('sum by (reason) (increase(natsmon_logs_checkpoint_errors_total[%s]))' % RI,
                 "checkpoint {{reason}}"),
            prom('sum(increase(natsmon_logs_rotation_gaps_total[%s]))' % RI,
                 "rotation gaps")], w=12, bars=True, stack=True),
    ]
    variables = [ds_var("prometheus"), CLUSTER_VAR, NODE_VAR]
    return dashboard("natsmon-self", "natsmon / Exporter and log shipper",
                     "natsmon's own health: polls per node and endpoint, rendering and scrapes, "
                     "and the Docker to Loki log shipper.", c, items, variables)


DASHBOARDS = {
    "nats-cluster-overview.json": overview,
    "nats-jetstream.json": jetstream,
    "nats-logs.json": logs,
    "natsmon-self.json": natsmon_self,
}


def render(fn):
    return json.dumps(fn(), indent=2, ensure_ascii=False) + "\n"


def main(argv):
    check = "--check" in argv[1:]
    stale = []
    for name, fn in DASHBOARDS.items():
        path = os.path.join(OUT, name)
        text = render(fn)
        if check:
            try:
                with open(path, encoding="utf-8") as f:
                    current = f.read()
            except FileNotFoundError:
                current = None
            if current != text:
                stale.append(name)
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    if stale:
        print("out of date (run python3 scripts/gen-dashboards.py): " + ", ".join(stale),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
