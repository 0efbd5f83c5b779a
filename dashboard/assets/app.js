// btest dashboard: loads api/state once, then follows api/events.
// Every URL is relative, so the page works under any path prefix.
'use strict';
(() => {
  const $ = (sel, el = document) => el.querySelector(sel);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };

  // ---- formatting ----
  const fmtRate = bps => {
    if (!(bps > 0)) return '0 bit/s';
    const u = [[1e12, 'Tbit/s'], [1e9, 'Gbit/s'], [1e6, 'Mbit/s'], [1e3, 'kbit/s']];
    for (const [d, n] of u) {
      if (bps >= d) {
        const v = bps / d;
        return v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0) + ' ' + n;
      }
    }
    return Math.round(bps) + ' bit/s';
  };
  const fmtAxis = v => {
    if (v === 0) return '0';
    const u = [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']];
    for (const [d, n] of u) if (Math.abs(v) >= d) return +(v / d).toFixed(1) + n;
    return String(+v.toFixed(1));
  };
  const fmtBytes = b => {
    const u = [[2 ** 40, 'TiB'], [2 ** 30, 'GiB'], [2 ** 20, 'MiB'], [2 ** 10, 'KiB']];
    for (const [d, n] of u) if (b >= d) return (b / d).toFixed(1) + ' ' + n;
    return b + ' B';
  };
  const fmtDur = s => {
    s = Math.max(0, Math.round(s));
    const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, sec = s % 60;
    const p = n => String(n).padStart(2, '0');
    return h ? `${h}:${p(m)}:${p(sec)}` : `${m}:${p(sec)}`;
  };
  const fmtWhen = iso => {
    const d = new Date(iso), now = new Date();
    const t = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
    return d.toDateString() === now.toDateString() ? t : d.toLocaleDateString() + ' ' + t;
  };
  // Loss is known only of what the server receives (null otherwise).
  const fmtLoss = pct => pct == null ? '–' : pct < 0.01 && pct > 0 ? '<0.01 %' : pct.toFixed(pct < 10 ? 2 : 1) + ' %';
  const lossTitle = x => x.loss_pct == null
    ? (x.proto !== 'udp' ? '' : x.direction === 'receive' ? 'the server only sends: the client counts the loss' : 'no report yet')
    : x.direction === 'both' ? 'one direction: datagrams lost on the way to the server' : 'datagrams lost on the way to the server';
  const mode = x => `${x.proto} ${x.direction}` + (x.connections > 1 ? ` ×${x.connections}` : '');

  // ---- charts ----
  const cssVar = n => getComputedStyle(document.documentElement).getPropertyValue(n).trim();
  // Canvas takes no color-mix(): turn "#rrggbb" into rgba().
  const rgba = (hex, a) => {
    const n = parseInt(hex.replace('#', ''), 16);
    return `rgba(${n >> 16 & 255}, ${n >> 8 & 255}, ${n & 255}, ${a})`;
  };
  // niceMax rounds a chart's top up to 1, 2 or 5 times a power of ten.
  const niceMax = v => {
    if (!(v > 0)) return 1;
    const p = 10 ** Math.floor(Math.log10(v));
    for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  };
  const charts = new Set();

  // makeChart draws sent and received rates. A wide chart (the server's)
  // always spans `span` seconds up to its newest point and has a time axis;
  // a test's small chart has neither.
  function makeChart(target, height, span) {
    const muted = cssVar('--muted'), grid = cssVar('--grid'), tx = cssVar('--tx'), rx = cssVar('--rx');
    const axis = { stroke: muted, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const x = { time: true };
    // Up to `span` seconds, at least a minute: a fresh server's chart
    // fills in instead of starting as a sliver at the right edge.
    if (span) x.range = (u, min, max) => [Math.max(max - span, Math.min(min, max - 60)), max];
    const opts = {
      width: Math.max(target.clientWidth, 200), height,
      legend: { show: false },
      cursor: { show: false },
      scales: { x, y: { range: (u, min, max) => [0, niceMax(max * 1.05)] } },
      series: [
        {},
        { label: 'sent', stroke: tx, width: 2, fill: rgba(tx, 0.07), points: { show: false } },
        { label: 'received', stroke: rx, width: 2, fill: rgba(rx, 0.07), points: { show: false } },
      ],
      axes: [
        { ...axis, show: !!span },
        { ...axis, size: 56, values: (u, vals) => vals.map(fmtAxis) },
      ],
    };
    const c = { target, height, span, data: [[], [], []] };
    c.plot = new uPlot(opts, c.data, target);
    charts.add(c);
    return c;
  }
  function setSeries(c, s, keep) {
    c.data = [s.t.slice(-keep), s.tx.slice(-keep), s.rx.slice(-keep)];
    c.plot.setData(c.data);
  }
  function pushPoint(c, t, tx, rx, keep) {
    const d = c.data;
    if (d[0].length && d[0][d[0].length - 1] >= t) return;
    d[0].push(t); d[1].push(tx); d[2].push(rx);
    if (d[0].length > keep) { d[0].shift(); d[1].shift(); d[2].shift(); }
    c.plot.setData(d);
  }
  function dropChart(c) { charts.delete(c); c.plot.destroy(); }
  const resize = new ResizeObserver(() => {
    for (const c of charts) {
      const w = Math.max(c.target.clientWidth, 200);
      if (w !== c.plot.width) c.plot.setSize({ width: w, height: c.height });
    }
  });
  // Colours come from CSS: rebuild the charts when the system theme flips.
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
    for (const c of [...charts]) {
      const data = c.data;
      dropChart(c);
      const n = makeChart(c.target, c.height, c.span);
      n.data = data; n.plot.setData(data);
      if (c === serverChart) serverChart = n;
      for (const card of cards.values()) if (card.chart === c) card.chart = n;
    }
  });

  const SERVER_KEEP = 600, SESSION_KEEP = 300;
  let serverChart = null;
  const cards = new Map(); // id -> {root, chart, lastElapsed}
  let seq = 0;

  // ---- facts and counters ----
  function renderFacts(f) {
    const dl = $('#facts');
    dl.replaceChildren();
    const add = (k, v) => { const d = el('div'); d.append(el('dt', '', k), el('dd', '', v)); dl.append(d); };
    const L = f.limits;
    add('listening', f.listeners.length ? f.listeners.join(' ') : '–');
    add('auth', f.auth + (f.auth !== 'none' ? ` (${f.users} user${f.users === 1 ? '' : 's'})` : ''));
    add('limits', `${L.max_sessions} tests, ${L.max_sessions_per_ip}/IP, ${L.max_connections} conn` +
      (L.max_duration_s ? `, ${fmtDur(L.max_duration_s)}` : '') + (L.max_tx_rate_bps ? `, ${fmtRate(L.max_tx_rate_bps)}` : ''));
    add('udp ports', `${f.udp_ports.first}–${f.udp_ports.last}`);
    $('#kpi-ports').textContent = `${f.udp_ports.in_use}`;
    $('#version').textContent = 'btest-go ' + f.version;
  }
  function renderTotals(t) {
    $('#kpi-done').textContent = t.sessions;
    $('#kpi-refused').textContent = t.refused;
  }
  function renderRefusals(m) {
    const ul = $('#refusals');
    const rows = Object.entries(m).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
    const max = rows.length ? rows[0][1] : 1;
    ul.replaceChildren(...rows.map(([reason, n]) => {
      const li = el('li');
      li.dataset.reason = reason;
      const bar = el('span', 'bar');
      bar.style.width = Math.max(2, 100 * n / max) + '%';
      li.append(el('span', 'reason', reason.replaceAll('_', ' ')), el('span', 'n', n), bar);
      return li;
    }));
    $('#no-refusals').hidden = rows.length > 0;
  }

  // ---- active tests ----
  function card(a) {
    let c = cards.get(a.id);
    if (c) return c;
    const root = el('article', 'card');
    root.dataset.id = a.id;
    const head = el('header');
    head.append(el('span', 'remote', a.remote), el('span', 'user', a.user || 'no auth'), el('span', 'elapsed'));
    const chips = el('div', 'chips');
    chips.append(el('span', 'chip', a.proto), el('span', 'chip', a.direction),
      el('span', 'chip', `${a.connections} ${a.proto === 'udp' ? 'stream' : 'conn'}${a.connections === 1 ? '' : 's'}`));
    if (a.tx_limit_bps) chips.append(el('span', 'chip', 'cap ' + fmtRate(a.tx_limit_bps)));
    if (a.udp_port) chips.append(el('span', 'chip', 'port ' + a.udp_port));
    const rates = el('div', 'rates');
    rates.append(el('span', 'rate tx'), el('span', 'rate rx'));
    const chart = el('div', 'chart');
    root.append(head, chips, rates);
    if (a.proto === 'udp') root.append(el('div', 'loss'));
    root.append(chart);
    $('#active').append(root);
    c = { root, lastElapsed: -1, chart: makeChart(chart, 110, 0) };
    resize.observe(chart);
    cards.set(a.id, c);
    if (a.history) setSeries(c.chart, a.history, SESSION_KEEP);
    updateCard(c, a);
    return c;
  }
  function rate(span, label, cls, bps) {
    span.dataset.bps = bps;
    const v = el('span', cls, fmtRate(bps));
    span.replaceChildren(el('small', '', label), v);
  }
  function updateCard(c, a) {
    const r = c.root;
    $('.elapsed', r).textContent = fmtDur(a.elapsed_s);
    rate($('.rate.tx', r), 'sent', 'tx-v', a.tx_bps);
    rate($('.rate.rx', r), 'received', 'rx-v', a.rx_bps);
    const loss = $('.loss', r);
    if (loss) {
      loss.textContent = a.loss_pct == null ? 'loss –'
        : `loss to server${a.direction === 'both' ? ' (one way)' : ''} ${fmtLoss(a.loss_pct)} · ${a.lost_packets} lost`;
      loss.title = lossTitle(a);
      loss.classList.toggle('high', a.loss_pct >= 1);
    }
  }
  function removeCard(id) {
    const c = cards.get(id);
    if (!c) return;
    resize.unobserve(c.chart.target);
    dropChart(c.chart);
    c.root.remove();
    cards.delete(id);
  }
  function activeCount() {
    const n = cards.size;
    $('#kpi-active').textContent = n;
    $('#active-count').textContent = n ? `${n} running` : '';
    $('#no-active').hidden = n > 0;
  }
  function renderActive(list) {
    const ids = new Set(list.map(a => a.id));
    for (const id of [...cards.keys()]) if (!ids.has(id)) removeCard(id);
    for (const a of list) {
      const c = card(a);
      updateCard(c, a);
      if (a.history) { setSeries(c.chart, a.history, SESSION_KEEP); c.lastElapsed = a.elapsed_s; }
    }
    activeCount();
  }

  // ---- recent tests ----
  function recentRow(r) {
    const tr = el('tr');
    tr.dataset.seq = r.seq;
    if (r.id) tr.dataset.id = r.id;
    const td = (text, cls) => tr.append(el('td', cls, text));
    td(fmtWhen(r.ended));
    td(r.remote, 'mono');
    td(r.user || '–');
    td(r.result === 'refused' ? '–' : mode(r));
    td(r.result === 'refused' ? '–' : fmtDur(r.duration_s), 'num');
    td(r.result === 'refused' ? '–' : fmtRate(r.tx_bps), 'num');
    td(r.result === 'refused' ? '–' : fmtRate(r.rx_bps), 'num');
    td(r.result === 'refused' ? '–' : fmtLoss(r.loss_pct), 'num');
    if (r.result !== 'refused') tr.lastChild.title = lossTitle(r);
    const res = el('td', 'result');
    const kind = r.result === 'ok' ? 'ok' : r.result === 'refused' ? 'refused' : 'error';
    let text = r.result;
    if (kind === 'refused') text = 'refused: ' + r.reason.replaceAll('_', ' ') + (r.count > 1 ? ` ×${r.count}` : '');
    const b = el('span', 'badge ' + kind, text);
    if (r.error) b.title = r.error;
    if (r.result !== 'refused') b.title = (r.error ? r.error + ' · ' : '') + `${fmtBytes(r.tx_bytes)} sent, ${fmtBytes(r.rx_bytes)} received`;
    res.append(b);
    tr.append(res);
    return tr;
  }
  function renderRecent(list) {
    $('#recent tbody').replaceChildren(...list.map(recentRow));
    $('#no-recent').hidden = list.length > 0;
  }
  function addRecent(r) {
    const tb = $('#recent tbody');
    const tr = recentRow(r);
    tr.classList.add('fresh');
    tb.prepend(tr);
    while (tb.rows.length > 100) tb.lastElementChild.remove();
    $('#no-recent').hidden = true;
  }

  // ---- state and events ----
  const conn = (state, text) => { const c = $('#conn'); c.dataset.state = state; c.textContent = text; };
  let loading = null;
  function load() {
    if (loading) return loading;
    loading = fetch('api/state', { cache: 'no-store' })
      .then(r => { if (!r.ok) throw new Error('api/state: ' + r.status); return r.json(); })
      .then(s => {
        renderFacts(s.server);
        renderTotals(s.totals);
        renderRefusals(s.refusals);
        renderActive(s.active);
        renderRecent(s.recent);
        seq = s.recent_seq;
        setSeries(serverChart, s.throughput, SERVER_KEEP);
        const last = s.throughput.t.length - 1;
        kpiRates(last >= 0 ? s.throughput.tx[last] : 0, last >= 0 ? s.throughput.rx[last] : 0);
      })
      .catch(e => conn('lost', e.message))
      .finally(() => { loading = null; });
    return loading;
  }
  // kpiRate shows a rate as a big number and a small unit.
  function kpiRate(sel, bps) {
    const [num, unit] = fmtRate(bps).split(' ');
    const e = $(sel);
    e.dataset.bps = bps;
    e.replaceChildren(num, el('small', 'unit', ' ' + unit));
  }
  function kpiRates(tx, rx) {
    kpiRate('#kpi-tx', tx);
    kpiRate('#kpi-rx', rx);
  }
  function onTick(t) {
    const now = Math.floor(Date.parse(t.now) / 1000);
    kpiRates(t.tx_bps, t.rx_bps);
    pushPoint(serverChart, now, t.tx_bps, t.rx_bps, SERVER_KEEP);
    const ids = new Set();
    for (const a of t.active) {
      ids.add(a.id);
      const c = card(a);
      updateCard(c, a);
      if (a.elapsed_s > 0 && a.elapsed_s !== c.lastElapsed) {
        c.lastElapsed = a.elapsed_s;
        pushPoint(c.chart, now, a.tx_bps, a.rx_bps, SESSION_KEEP);
      }
    }
    for (const id of [...cards.keys()]) if (!ids.has(id)) removeCard(id);
    activeCount();
    renderTotals(t.totals);
    renderRefusals(t.refusals);
    if (t.recent_seq > seq) load(); // refusals reach the list only this way
  }

  function connect() {
    const es = new EventSource('api/events');
    es.addEventListener('open', () => { conn('live', 'live'); load(); });
    es.addEventListener('error', () => conn('lost', 'reconnecting…'));
    es.addEventListener('facts', e => renderFacts(JSON.parse(e.data)));
    es.addEventListener('tick', e => onTick(JSON.parse(e.data)));
    es.addEventListener('start', e => { card(JSON.parse(e.data)); activeCount(); });
    es.addEventListener('end', e => {
      const r = JSON.parse(e.data);
      removeCard(r.id);
      activeCount();
      if (r.seq === seq + 1) { addRecent(r); seq = r.seq; } else load();
    });
  }

  serverChart = makeChart($('#server-chart'), 240, SERVER_KEEP);
  resize.observe($('#server-chart'));
  activeCount();
  load().then(connect);
})();
