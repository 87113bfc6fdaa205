// natsmon console: refreshes the page in place from /api/v1/status every poll interval,
// and sorts and filters the stream and consumer tables without a round trip.
//
// It mirrors src/console/pages.rs (markup) and src/console/format.rs (formats): a change
// to a table there needs the same change here. Every value from the cluster or Docker
// enters the page as a text node or an attribute value, never as markup (no innerHTML),
// so a name such as <img src=x onerror=...> stays text.
'use strict';
(function () {
  const DASH = '\u2014';

  // ---- format.rs ----
  function int(n) {
    return String(Math.floor(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  }
  function oneDecimal(x) {
    return (Math.round(x * 10) / 10).toFixed(1);
  }
  function bytes(n) {
    const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
    if (n < 1024) return n + ' B';
    let v = n / 1024;
    let u = 0;
    while (v >= 1024 && u < units.length - 1) {
      v /= 1024;
      u++;
    }
    return oneDecimal(v) + ' ' + units[u];
  }
  function percent(r) {
    return oneDecimal(r * 100) + '%';
  }
  function duration(secs) {
    const s = Math.floor(Math.max(0, secs));
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm ' + (s % 60) + 's';
    if (s < 86400) return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
    return Math.floor(s / 86400) + 'd ' + Math.floor((s % 86400) / 3600) + 'h';
  }
  function span(secs) {
    const ms = Math.round(secs * 1000);
    return ms % 1000 === 0 ? duration(secs) : ms + ' ms';
  }
  function millis(secs) {
    return Math.round(secs * 1000) + ' ms';
  }
  function time(unix) {
    return new Date(Math.floor(unix) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  }
  function ago(now, t) {
    return duration(now - t) + ' ago';
  }
  function optInt(v) {
    return v === null || v === undefined ? DASH : int(v);
  }

  // ---- DOM building: text nodes only ----
  function h(tag, attrs) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) {
      const v = attrs[k];
      if (v !== null && v !== undefined && v !== false) e.setAttribute(k, String(v));
    }
    for (let i = 2; i < arguments.length; i++) add(e, arguments[i]);
    return e;
  }
  function add(e, kid) {
    if (kid === null || kid === undefined || kid === false) return;
    if (Array.isArray(kid)) {
      kid.forEach(function (k) { add(e, k); });
    } else if (typeof kid === 'string' || typeof kid === 'number') {
      e.appendChild(document.createTextNode(String(kid)));
    } else {
      e.appendChild(kid);
    }
  }
  // Links come from natsmon (dashboards, pages); anything else is not a link.
  function link(href, text) {
    const safe = typeof href === 'string' && /^(https?:\/\/|\/)/.test(href);
    return safe ? h('a', { href: href }, text) : document.createTextNode(text);
  }
  function td(k, text, cls) {
    return h('td', { 'data-k': k, class: cls }, text);
  }
  function tdNum(k, text) {
    return td(k, text, 'num');
  }
  function badge(cls, text) {
    return h('span', { class: 'badge ' + cls }, text);
  }
  function meter(r) {
    return h('meter', { min: 0, max: 1, value: Math.min(r, 1).toFixed(4) });
  }
  function usage(used, limit) {
    if (limit) {
      const r = used / limit;
      return [bytes(used) + ' / ' + bytes(limit) + ' ', meter(r), ' ' + percent(r)];
    }
    return [bytes(used)];
  }
  function jsCell(k, js, memory) {
    if (!js) return td(k, DASH);
    return h('td', { 'data-k': k }, memory
      ? usage(js.memory_bytes, js.memory_limit_bytes)
      : usage(js.storage_bytes, js.storage_limit_bytes));
  }

  // ---- the overview (pages.rs overview_main) ----
  function selfSection(o) {
    const n = o.natsmon;
    const t = o.totals;
    const cycle = n.last_cycle_seconds !== null && n.last_cycle_at !== null
      ? millis(n.last_cycle_seconds) + ' (at ' + time(n.last_cycle_at) + ')'
      : 'no poll finished yet';
    function fact(k, label, value) {
      return [h('dt', null, label), h('dd', { 'data-k': k }, value)];
    }
    return h('section', { id: 'self' }, h('h2', null, 'natsmon'), h('dl', { class: 'facts' },
      fact('version', 'version', n.version),
      fact('uptime', 'uptime', duration(n.uptime_seconds) + ' (since ' + time(n.started_at) + ')'),
      fact('poll_interval', 'poll interval',
        span(n.poll_interval_seconds) + ' (timeout ' + span(n.poll_timeout_seconds) + ')'),
      fact('last_cycle', 'last cycle', cycle),
      fact('streams', 'streams', [link('/streams', int(t.streams)),
        t.streams_unavailable > 0 ? ', ' + int(t.streams_unavailable) + ' unavailable' : '']),
      fact('consumers', 'consumers', [link('/consumers', int(t.consumers)),
        t.consumers_stalled > 0 ? ', ' + int(t.consumers_stalled) + ' stalled' : ''])));
  }

  const NODE_HEADERS = [['node'], ['state'], ['server'], ['version'], ['since'],
    ['connections', 1], ['subscriptions', 1], ['slow consumers', 1], ['memory', 1], ['CPU', 1],
    ['JetStream memory'], ['JetStream storage'], ['last poll'], ['error']];

  function thead(headers) {
    return h('thead', null, h('tr', null, headers.map(function (x) {
      return h('th', { class: x[1] ? 'num' : null }, x[0]);
    })));
  }

  function nodeRow(now, n) {
    let since = DASH;
    if (n.state === 'down' && n.down_since !== null) {
      since = 'down since ' + time(n.down_since) + ' (' + duration(now - n.down_since) + ')';
    } else if (n.state === 'up' && n.uptime_seconds !== null) {
      since = 'up ' + duration(n.uptime_seconds);
    }
    const polled = n.last_poll_at !== null
      ? ago(now, n.last_poll_at) + ', took ' + millis(n.poll_duration_seconds)
      : 'not yet';
    return h('tr', { 'data-node': n.node, class: n.state },
      h('td', { 'data-k': 'node' }, link(n.dashboard, n.node), h('div', { class: 'sub' }, n.url)),
      h('td', { 'data-k': 'state' }, badge(n.state, n.state),
        n.meta_leader ? [' ', badge('leader', 'meta leader')] : null),
      td('server', n.server_name === null ? DASH : n.server_name),
      td('version', n.version === null ? DASH : n.version),
      td('since', since),
      tdNum('connections', optInt(n.connections)),
      tdNum('subscriptions', optInt(n.subscriptions)),
      tdNum('slow_consumers', optInt(n.slow_consumers)),
      tdNum('memory', n.memory_bytes === null ? DASH : bytes(n.memory_bytes)),
      tdNum('cpu', n.cpu_percent === null ? DASH : percent(n.cpu_percent / 100)),
      jsCell('js_memory', n.jetstream, true),
      jsCell('js_storage', n.jetstream, false),
      td('last_poll', polled),
      n.error
        ? h('td', { 'data-k': 'error', class: 'error' }, h('b', null, n.error.endpoint), ': ' + n.error.message)
        : td('error', ''));
  }

  function peerState(p) {
    return p.offline ? 'offline' : p.current ? 'current' : 'behind';
  }
  function peerLine(p) {
    return p.name + ' ' + peerState(p) + (p.lag > 0 ? ', lag ' + int(p.lag) : '');
  }

  function metaBlock(c) {
    const out = [h('h3', null, 'JetStream meta group')];
    const m = c.meta;
    if (!m) {
      out.push(h('p', { class: 'meta', 'data-k': 'meta' }, 'No node reports a meta group.'));
      return out;
    }
    out.push(h('p', { class: 'meta', 'data-k': 'meta' }, 'Leader: ',
      h('b', { 'data-k': 'meta_leader' }, m.leader === '' ? 'none' : m.leader),
      m.leader !== '' && !m.leader_polled ? ' (on a node natsmon does not poll)' : '',
      ' \u00b7 cluster size ' + int(m.cluster_size)));
    if (m.peers.length === 0) return out;
    out.push(h('table', { class: 'peers' },
      thead([['peer'], ['state'], ['lag', 1], ['last seen']]),
      h('tbody', null, m.peers.map(function (p) {
        return h('tr', { class: p.state },
          td('peer', p.name),
          h('td', { 'data-k': 'state' }, badge(p.state, p.state)),
          tdNum('lag', int(p.lag)),
          td('active', duration(p.active_seconds) + ' ago'));
      }))));
    return out;
  }

  function meshBlock(c) {
    const m = c.routes;
    const out = [h('h3', null, 'Routes')];
    if (m.rows.length === 0) {
      out.push(h('p', { 'data-k': 'routes' }, 'No route information.'));
      return out;
    }
    out.push(h('p', { 'data-k': 'routes', class: m.missing === 0 ? 'ok' : 'bad' },
      m.missing === 0 ? 'Every known route is up.' : int(m.missing) + ' routes missing.'));
    out.push(h('table', { class: 'mesh' },
      h('thead', null, h('tr', null, h('th', null, 'from \\ to'),
        m.members.map(function (to) { return h('th', null, to); }))),
      h('tbody', null, m.rows.map(function (r) {
        return h('tr', { 'data-server': r.server_name }, h('th', null, r.server_name),
          m.members.map(function (to) {
            let cls = 'bad';
            let text = 'missing';
            if (to === r.server_name) {
              cls = 'self'; text = '\u00b7';
            } else if (!r.known) {
              cls = 'unknown'; text = '?';
            } else if (r.routes.indexOf(to) >= 0) {
              cls = 'ok'; text = '\u2713';
            }
            return h('td', { class: cls }, text);
          }));
      }))));
    return out;
  }

  function clusterSection(o, c) {
    return h('section', { class: 'cluster', 'data-cluster': c.name },
      h('h2', null, c.name === '' ? 'Nodes not seen up yet' : 'Cluster ' + c.name),
      h('table', { class: 'nodes' }, thead(NODE_HEADERS),
        h('tbody', null, c.nodes.map(function (n) { return nodeRow(o.generated_at, n); }))),
      metaBlock(c),
      meshBlock(c));
  }

  function accountsSection(accounts) {
    const rows = accounts.map(function (a) {
      return h('tr', { 'data-account': a.name },
        td('cluster', a.cluster),
        h('td', { 'data-k': 'account' }, link(a.dashboard, a.name)),
        tdNum('connections', int(a.connections)),
        tdNum('subscriptions', optInt(a.subscriptions)),
        tdNum('slow_consumers', int(a.slow_consumers)),
        jsCell('js_memory', a.jetstream, true),
        jsCell('js_storage', a.jetstream, false));
    });
    if (rows.length === 0) rows.push(h('tr', null, h('td', { colspan: 7 }, 'No account reported.')));
    return h('section', { id: 'accounts' }, h('h2', null, 'Accounts'),
      h('table', { class: 'accounts' },
        thead([['cluster'], ['account'], ['connections', 1], ['subscriptions', 1],
          ['slow consumers', 1], ['JetStream memory'], ['JetStream storage']]),
        h('tbody', null, rows)));
  }

  function shippingSection(now, s) {
    const sec = h('section', { id: 'shipping' }, h('h2', null, 'Log shipping'));
    if (!s.enabled) {
      add(sec, h('p', { 'data-k': 'shipping', class: 'off' },
        'Log shipping is ', h('b', null, 'off'), ' (no --loki-url).'));
      return sec;
    }
    const reachable = s.loki_up === true ? badge('up', 'reachable')
      : s.loki_up === false ? badge('down', 'unreachable') : badge('pending', 'not asked yet');
    let push = 'none yet';
    const p = s.last_push;
    if (p) {
      push = p.result + ' ' + int(p.lines) + ' lines, ' + time(p.at) + ' (' + ago(now, p.at) +
        '), took ' + millis(p.duration_seconds);
      if (p.status !== null) push += ', HTTP ' + p.status;
      if (p.reason !== null) push += ', ' + p.reason;
    }
    const e = s.last_error;
    function fact(k, label, value) {
      return [h('dt', null, label), h('dd', { 'data-k': k }, value)];
    }
    add(sec, h('p', { 'data-k': 'shipping', class: 'on' }, 'Log shipping is ', h('b', null, 'on'), '.'));
    add(sec, h('dl', { class: 'facts' },
      fact('loki', 'Loki', [s.loki_url + ' ', reachable]),
      fact('last_push', 'last push', push),
      fact('containers_tailed', 'containers tailed', int(s.containers_tailed)),
      fact('buffer', 'buffer', [usage(s.buffered_bytes, s.buffer_max_bytes),
        ' (' + int(s.buffered_lines) + ' lines)']),
      fact('lag', 'lag', duration(s.max_lag_seconds)),
      fact('last_error', 'last error', e
        ? h('span', { class: 'error' }, e.source + ' at ' + time(e.at) + ': ' + e.message)
        : 'none')));
    add(sec, h('table', { class: 'containers' },
      thead([['container'], ['job'], ['service'], ['logs']]),
      h('tbody', null, s.containers.map(function (c) {
        return h('tr', { 'data-container': c.name },
          td('name', c.name), td('job', c.job), td('service', c.service),
          h('td', { 'data-k': 'logs' }, c.logs ? link(c.logs, 'Grafana') : null));
      }))));
    return sec;
  }

  function renderOverview(o) {
    const main = document.getElementById('main');
    main.replaceChildren(selfSection(o),
      ...o.clusters.map(function (c) { return clusterSection(o, c); }),
      accountsSection(o.accounts),
      shippingSection(o.generated_at, o.log_shipping));
  }

  // ---- the tables (pages.rs table_main, query.rs) ----
  const STATE_TEXT = {
    ok: 'ok', degraded: 'degraded', no_leader: 'no leader',
    leader_not_polled: 'leader on a node natsmon does not poll',
    unavailable: 'unavailable', stalled: 'stalled',
  };
  // The big tables' cells carry no attributes (see pages.rs `cell`).
  function cell() {
    return h.apply(null, ['td', null].concat(Array.from(arguments)));
  }
  function stateCell(state) {
    return cell(badge(state, STATE_TEXT[state] || 'unknown'));
  }
  function peersCell(leader, peers) {
    const kids = [];
    if (leader !== '') kids.push(h('span', { class: 'peer leader' }, leader + ' leader'));
    peers.forEach(function (p) {
      kids.push(' ', h('span', { class: 'peer ' + peerState(p) }, peerLine(p)));
    });
    return cell(kids);
  }
  function shareCell(share, limit, asBytes) {
    if (share === null || limit === null) return cell('no limit');
    return cell(meter(share), ' ' + percent(share) + ' of ' + (asBytes ? bytes(limit) : int(limit)));
  }
  function streamRow(s) {
    return h('tr', { class: s.state, 'data-stream': s.name },
      cell(s.cluster), cell(s.account),
      cell(link(s.dashboard, s.name)),
      stateCell(s.state),
      cell(s.replicas === 0 ? DASH : int(s.replicas)),
      cell(s.leader === '' ? DASH : s.leader),
      peersCell(s.leader, s.peers),
      cell(int(s.messages)),
      shareCell(s.messages_share, s.max_msgs, false),
      cell(bytes(s.bytes)),
      shareCell(s.bytes_share, s.max_bytes, true),
      cell(int(s.consumers)));
  }
  function consumerRow(now, c) {
    return h('tr', { class: c.state, 'data-consumer': c.name },
      cell(c.cluster), cell(c.account), cell(c.stream),
      cell(link(c.dashboard, c.name)),
      stateCell(c.state),
      cell(int(c.num_pending)),
      cell(int(c.num_ack_pending)),
      cell(int(c.num_redelivered)),
      cell(int(c.num_waiting)),
      cell(optInt(c.lag)),
      cell(c.last_active === null ? DASH : ago(now, c.last_active)),
      cell(c.leader === '' ? DASH : c.leader),
      peersCell(c.leader, c.peers));
  }

  function cmp(a, b) {
    return a < b ? -1 : a > b ? 1 : 0;
  }
  function num(v) {
    return v === null || v === undefined ? -Infinity : v;
  }
  function byField(f) {
    return function (a, b) { return cmp(a[f], b[f]); };
  }
  function byNum(f) {
    return function (a, b) { return cmp(num(a[f]), num(b[f])); };
  }
  const TABLES = {
    streams: {
      rows: function (o) { return o.streams; },
      names: function (s) { return [s.name]; },
      order: function (a, b) {
        return cmp(a.account, b.account) || cmp(a.name, b.name) || cmp(a.cluster, b.cluster);
      },
      sorts: {
        cluster: byField('cluster'), account: byField('account'), name: byField('name'),
        state: byField('state'), replicas: byNum('replicas'), leader: byField('leader'),
        messages: byNum('messages'), messages_share: byNum('messages_share'),
        bytes: byNum('bytes'), bytes_share: byNum('bytes_share'), consumers: byNum('consumers'),
      },
      row: function (o, s) { return streamRow(s); },
    },
    consumers: {
      rows: function (o) { return o.consumers; },
      names: function (c) { return [c.name, c.stream]; },
      order: function (a, b) {
        return cmp(a.account, b.account) || cmp(a.stream, b.stream) || cmp(a.name, b.name) ||
          cmp(a.cluster, b.cluster);
      },
      sorts: {
        cluster: byField('cluster'), account: byField('account'), stream: byField('stream'),
        name: byField('name'), state: byField('state'), num_pending: byNum('num_pending'),
        num_ack_pending: byNum('num_ack_pending'), num_redelivered: byNum('num_redelivered'),
        num_waiting: byNum('num_waiting'), lag: byNum('lag'), last_active: byNum('last_active'),
        leader: byField('leader'),
      },
      row: function (o, c) { return consumerRow(o.generated_at, c); },
    },
  };

  function readQuery() {
    const p = new URLSearchParams(location.search);
    return { account: p.get('account') || '', q: p.get('q') || '', sort: p.get('sort') || '', dir: p.get('dir') || '' };
  }
  function queryString(q, sort, dir) {
    const p = new URLSearchParams();
    if (sort) { p.set('sort', sort); p.set('dir', dir); }
    if (q.account) p.set('account', q.account);
    if (q.q) p.set('q', q.q);
    return p.toString();
  }
  function pick(t, q, all) {
    const needle = q.q.toLowerCase();
    const rows = all.filter(function (r) {
      return (q.account === '' || r.account === q.account) &&
        (needle === '' || t.names(r).some(function (n) { return n.toLowerCase().indexOf(needle) >= 0; }));
    });
    const key = t.sorts[q.sort];
    const sign = q.dir === 'desc' ? -1 : 1;
    rows.sort(function (a, b) { return (key ? sign * key(a, b) : 0) || t.order(a, b); });
    return rows;
  }
  function countText(shown, total) {
    return shown === total ? int(total) : int(shown) + ' of ' + int(total);
  }

  function renderTable(page, o, q) {
    const t = TABLES[page];
    const all = t.rows(o);
    const rows = pick(t, q, all);
    document.getElementById('rows').replaceChildren(...rows.map(function (r) { return t.row(o, r); }));
    document.getElementById('count').textContent = countText(rows.length, all.length);
    const empty = document.getElementById('empty');
    if (all.length === 0 && !empty) {
      document.getElementById('table').after(h('p', { id: 'empty' }, 'No ' + page + ' reported yet.'));
    } else if (all.length > 0 && empty) {
      empty.remove();
    }
    // The account filter offers the accounts that have streams or consumers.
    const select = document.querySelector('form.filter select[name=account]');
    const accounts = Array.from(new Set(o.streams.map(function (s) { return s.account; })
      .concat(o.consumers.map(function (c) { return c.account; })))).sort(cmp);
    select.replaceChildren(h('option', { value: '' }, 'all'), ...accounts.map(function (a) {
      return h('option', { value: a, selected: a === q.account ? 'selected' : null }, a);
    }));
    select.value = q.account;
    updateHeaders(page, q);
  }

  function updateHeaders(page, q) {
    document.querySelectorAll('th[data-sort]').forEach(function (th) {
      const key = th.getAttribute('data-sort');
      const a = th.querySelector('a');
      const on = q.sort === key;
      const dir = on && q.dir !== 'desc' ? 'desc' : 'asc';
      a.setAttribute('href', '/' + page + '?' + queryString(q, key, dir));
      const label = a.textContent.replace(/ [\u25b2\u25bc]$/, '');
      a.textContent = label + (on ? (q.dir === 'desc' ? ' \u25bc' : ' \u25b2') : '');
    });
    const form = document.querySelector('form.filter');
    form.elements.sort.value = q.sort;
    form.elements.dir.value = q.dir;
  }

  // ---- refresh ----
  const body = document.body;
  const page = body.getAttribute('data-page');
  const interval = Math.max(1, parseFloat(body.getAttribute('data-interval')) || 5) * 1000;
  let last = null;
  let query = readQuery();
  let refreshes = 0;

  function render() {
    if (!last) return;
    if (page === 'overview') renderOverview(last);
    else renderTable(page, last, query);
  }

  function setLive(text, stale) {
    const live = document.getElementById('live');
    live.textContent = text;
    live.className = stale ? 'live stale' : 'live';
  }

  function refresh() {
    fetch('/api/v1/status', { cache: 'no-store', credentials: 'same-origin' })
      .then(function (r) {
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.json();
      })
      .then(function (o) {
        last = o;
        render();
        refreshes++;
        body.setAttribute('data-refreshes', String(refreshes));
        setLive('live \u00b7 updated ' + time(o.generated_at), false);
      })
      .catch(function (e) {
        setLive('stale \u00b7 ' + (last ? 'last update ' + time(last.generated_at) + ' \u00b7 ' : '') + e.message, true);
      })
      .finally(function () {
        setTimeout(refresh, interval);
      });
  }

  function applyQuery(q) {
    query = q;
    history.replaceState(null, '', location.pathname + (queryString(q, q.sort, q.dir) ? '?' + queryString(q, q.sort, q.dir) : ''));
    render();
  }

  const form = document.querySelector('form.filter');
  if (form) {
    const fromForm = function () {
      return { account: form.elements.account.value, q: form.elements.q.value, sort: query.sort, dir: query.dir };
    };
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      applyQuery(fromForm());
    });
    form.elements.account.addEventListener('change', function () { applyQuery(fromForm()); });
    form.elements.q.addEventListener('input', function () { applyQuery(fromForm()); });
    document.querySelectorAll('th[data-sort] a').forEach(function (a) {
      a.addEventListener('click', function (ev) {
        if (!last) return; // Nothing fetched yet: let the server sort.
        ev.preventDefault();
        const p = new URLSearchParams(a.getAttribute('href').split('?')[1] || '');
        applyQuery({ account: query.account, q: query.q, sort: p.get('sort') || '', dir: p.get('dir') || '' });
      });
    });
  }

  refresh();
})();
