import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * The dashboard pages: a static HTML shell (no data, no secrets) plus the scripts it loads, all served
 * by this API. vega, vega-lite and vega-embed come from node_modules, never a CDN; the page's
 * Content-Security-Policy forbids loading anything from another origin.
 */
const require = createRequire(import.meta.url);
const CLIENT_DIR = new URL('./client/', import.meta.url).pathname;

// Some packages do not export package.json, so walk up from their entry point to their root.
function packageFile(pkg: string, file: string): string {
  let dir = dirname(require.resolve(pkg));
  while (
    !existsSync(join(dir, 'package.json')) ||
    JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name !== pkg
  ) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find the ${pkg} package`);
    dir = parent;
  }
  return join(dir, file);
}

export const ASSETS = {
  'vega.min.js': {
    path: () => packageFile('vega', 'build/vega.min.js'),
    type: 'text/javascript; charset=utf-8',
  },
  'vega-lite.min.js': {
    path: () => packageFile('vega-lite', 'build/vega-lite.min.js'),
    type: 'text/javascript; charset=utf-8',
  },
  'vega-embed.min.js': {
    path: () => packageFile('vega-embed', 'build/vega-embed.min.js'),
    type: 'text/javascript; charset=utf-8',
  },
  'dashboard.js': { path: () => join(CLIENT_DIR, 'dashboard.js'), type: 'text/javascript; charset=utf-8' },
  'dashboard.css': { path: () => join(CLIENT_DIR, 'dashboard.css'), type: 'text/css; charset=utf-8' },
} as const;
export type AssetName = keyof typeof ASSETS;

const cache = new Map<AssetName, string>();

export function readAsset(name: AssetName): { body: string; type: string } {
  let body = cache.get(name);
  if (!body) {
    body = readFileSync(ASSETS[name].path(), 'utf8');
    cache.set(name, body);
  }
  return { body, type: ASSETS[name].type };
}

/**
 * Vega compiles expressions with `new Function` (hence 'unsafe-eval'); vega-embed injects its own style
 * element (hence 'unsafe-inline' styles). Everything else: this origin only.
 */
export const PAGE_CSP =
  "default-src 'none'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; " +
  "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export const PAGE_HEADERS = {
  'content-security-policy': PAGE_CSP,
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
};

const escapeHtml = (text: string) =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );

/**
 * `assetBase` and `apiBase` are relative to the page, so the dashboards work behind a path prefix.
 */
export function dashboardHtml(options: {
  title: string;
  dataUrl: string;
  exportBase: string;
  assetBase: string;
  overviewHref: string;
}): string {
  const a = escapeHtml(options.assetBase);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>${escapeHtml(options.title)} · Chorus</title>
<link rel="stylesheet" href="${a}/dashboard.css">
</head>
<body data-state="loading">
<header>
  <h1 id="title">${escapeHtml(options.title)}</h1>
  <span id="subtitle"></span>
  <nav><a href="${escapeHtml(options.overviewHref)}">All campaigns</a></nav>
  <span id="status">loading…</span>
</header>
<main id="dashboard" data-data-url="${escapeHtml(options.dataUrl)}" data-export-base="${escapeHtml(options.exportBase)}">
  <div id="tiles"></div>
  <div id="charts"></div>
</main>
<script src="${a}/vega.min.js"></script>
<script src="${a}/vega-lite.min.js"></script>
<script src="${a}/vega-embed.min.js"></script>
<script src="${a}/dashboard.js" type="module"></script>
</body>
</html>
`;
}
