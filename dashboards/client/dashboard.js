// Browser side of the Chorus dashboards: reads the token from the URL fragment (never sent to the
// server, so it stays out of access logs), fetches the page's charts as JSON with it, draws each spec
// with vega-embed (served from this server), and polls while the campaign runs.
/* global vegaEmbed */

const root = document.getElementById('dashboard');
const dataUrl = root.dataset.dataUrl;
const exportBase = root.dataset.exportBase;
const views = new Map();
let refreshTimer = null;

function token() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ''));
  const fromHash = params.get('token');
  if (fromHash) {
    // Keep it for reloads of this tab only, then drop it from the address bar and history.
    sessionStorage.setItem('chorus-dashboard-token', fromHash);
    history.replaceState(null, '', location.pathname + location.search);
    return fromHash;
  }
  return sessionStorage.getItem('chorus-dashboard-token');
}

const bearer = token();

const counts = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const money = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });

/** The text a tile shows for a figure; the browser test formats the metrics API's figures the same way. */
function formatFigure(kind, value, currency) {
  if (value === null || value === undefined) return '–';
  if (kind === 'rate') return `${(value * 100).toFixed(1)}%`;
  if (kind === 'signed-rate') return `${value >= 0 ? '+' : ''}${(value * 100).toFixed(1)} pp`;
  if (kind === 'money') return `${money.format(value)} ${currency}`;
  if (kind === 'ratio') return `${(value * 100).toFixed(0)}%`;
  if (kind === 'duration') {
    if (value < 60) return `${Math.round(value)} s`;
    if (value < 3600) return `${Math.round(value / 60)} min`;
    return `${(value / 3600).toFixed(1)} h`;
  }
  return counts.format(value);
}

function setStatus(text, kind) {
  const status = document.getElementById('status');
  status.textContent = text;
  status.dataset.kind = kind ?? '';
}

function renderTiles(tiles, currency) {
  const box = document.getElementById('tiles');
  box.replaceChildren(
    ...tiles.map((tile) => {
      const el = document.createElement('div');
      el.className = 'tile';
      el.dataset.metric = tile.id;
      el.dataset.value = tile.value === null ? '' : String(tile.value);
      const label = document.createElement('div');
      label.className = 'tile-label';
      label.textContent = tile.label;
      const value = document.createElement('div');
      value.className = 'tile-value';
      value.textContent = formatFigure(tile.kind, tile.value, currency);
      el.append(value, label);
      return el;
    }),
  );
}

function renderCampaigns(campaigns, currency) {
  const table = document.getElementById('campaigns') ?? document.createElement('table');
  table.id = 'campaigns';
  table.className = 'campaigns';
  const head = [
    'Campaign',
    'Status',
    'Sent',
    'Delivered',
    'Read',
    'Replied',
    'Failed',
    'Conversions',
    'Revenue',
  ];
  const header = document.createElement('tr');
  for (const name of head) header.append(Object.assign(document.createElement('th'), { textContent: name }));
  const rows = campaigns.map((c) => {
    const row = document.createElement('tr');
    row.dataset.campaign = c.id;
    const link = Object.assign(document.createElement('a'), {
      href: `campaigns/${encodeURIComponent(c.id)}`,
      textContent: c.name,
    });
    const first = document.createElement('td');
    first.append(link);
    row.append(first, Object.assign(document.createElement('td'), { textContent: c.status || '–' }));
    for (const value of [c.sent, c.delivered, c.read, c.replied, c.failed, c.conversions]) {
      row.append(Object.assign(document.createElement('td'), { textContent: formatFigure('count', value) }));
    }
    row.append(
      Object.assign(document.createElement('td'), {
        textContent: formatFigure('money', c.revenue, currency),
      }),
    );
    return row;
  });
  table.replaceChildren(header, ...rows);
  document.getElementById('tiles').after(table);
}

async function download(chartId, format) {
  const response = await fetch(`${exportBase}/${chartId}?format=${format}&width=1200&height=600`, {
    headers: { authorization: `Bearer ${bearer}` },
  });
  if (!response.ok) return setStatus(`export failed (${response.status})`, 'error');
  const url = URL.createObjectURL(await response.blob());
  const link = Object.assign(document.createElement('a'), { href: url, download: `${chartId}.${format}` });
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function chartBox(chart) {
  let box = document.querySelector(`.chart[data-chart="${chart.id}"]`);
  if (box) return box;
  box = document.createElement('section');
  box.className = `chart chart-${chart.id}`;
  box.dataset.chart = chart.id;
  const bar = document.createElement('div');
  bar.className = 'chart-bar';
  for (const format of ['svg', 'png']) {
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = format.toUpperCase();
    button.title = `Download ${format.toUpperCase()} (drawn by the server)`;
    button.addEventListener('click', () => download(chart.id, format));
    bar.append(button);
  }
  const target = document.createElement('div');
  target.className = 'chart-target';
  box.append(bar, target);
  document.getElementById('charts').append(box);
  return box;
}

async function drawChart(chart) {
  const box = chartBox(chart);
  const spec = chart.vega ?? chart.spec;
  const key = JSON.stringify(spec);
  const previous = views.get(chart.id);
  if (previous && previous.key === key) return;
  box.dataset.rendered = 'false';
  previous?.result.finalize();
  const target = box.querySelector('.chart-target');
  const result = await vegaEmbed(target, spec, {
    mode: chart.vega ? 'vega' : 'vega-lite',
    // Canvas draws thousands of marks far faster than SVG; exports come from the server as SVG or PNG.
    renderer: 'canvas',
    actions: false,
    tooltip: true,
  });
  await result.view.runAsync();
  views.set(chart.id, { key, result });
  box.dataset.rendered = 'true';
  box.dataset.rows = String(chart.rows);
}

async function load() {
  if (!bearer) {
    setStatus(
      'No access token: open this page through a dashboard link (chorus dashboard link, or POST /v1/dashboards/tokens).',
      'error',
    );
    document.body.dataset.state = 'unauthorized';
    return;
  }
  const started = performance.now();
  let response;
  try {
    response = await fetch(dataUrl, { headers: { authorization: `Bearer ${bearer}` }, cache: 'no-store' });
  } catch (error) {
    setStatus(`cannot reach the server: ${error.message}`, 'error');
    return schedule(10);
  }
  if (response.status === 401) {
    setStatus('The dashboard link has expired or is not valid; ask for a new one.', 'error');
    document.body.dataset.state = 'unauthorized';
    return;
  }
  if (!response.ok) {
    setStatus(`the server answered ${response.status}`, 'error');
    return schedule(10);
  }
  const page = await response.json();
  const arrived = performance.now();
  document.getElementById('title').textContent = page.title;
  document.getElementById('subtitle').textContent = page.subtitle;
  document.title = `${page.title} · Chorus`;
  renderTiles(page.tiles, page.currency);
  if (page.campaigns) renderCampaigns(page.campaigns, page.currency);
  await Promise.all(page.charts.map(drawChart));
  const drawn = performance.now();
  window.chorusDashboard = {
    fetchMs: arrived - started,
    drawMs: drawn - arrived,
    charts: page.charts.length,
    generatedAt: page.generated_at,
    live: page.live,
    refreshes: (window.chorusDashboard?.refreshes ?? -1) + 1,
  };
  document.body.dataset.state = 'rendered';
  const when = new Date(page.generated_at).toLocaleTimeString();
  setStatus(page.live ? `live · updated ${when}` : `updated ${when}`, page.live ? 'live' : '');
  if (page.live) schedule(page.refresh_seconds);
}

function schedule(seconds) {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(load, seconds * 1000);
}

load().catch((error) => {
  setStatus(`could not draw the dashboard: ${error.message}`, 'error');
  document.body.dataset.state = 'error';
});
