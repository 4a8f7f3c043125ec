import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

// Vega-Lite's compile warnings (e.g. merged sort orders) are expected here; errors still throw.
const quietLogger = vega.logger(vega.Error);

/**
 * Server-side drawing: Vega-Lite → Vega → SVG through vega's headless View (no browser), and SVG →
 * PNG through resvg. A spec passed here must carry numeric width and height (not 'container').
 */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const compiled = compile(spec, { logger: quietLogger }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/**
 * PNG of exactly `width` × `height` pixels. The chart is laid out at the requested size; Vega's
 * padding can make the drawn size differ by a few pixels, so the SVG is placed on an exact canvas
 * (scaled to fit, centred).
 */
export async function renderPng(spec: TopLevelSpec, width: number, height: number): Promise<Buffer> {
  return svgToPng(await renderSvg(spec), width, height);
}

export function svgToPng(svg: string, width: number, height: number): Buffer {
  const inner = svg.replace(/^<svg[^>]*>/, '').replace(/<\/svg>\s*$/, '');
  const viewBox = /^<svg[^>]*viewBox="([^"]+)"/.exec(svg)?.[1] ?? `0 0 ${width} ${height}`;
  const wrapped =
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${width}" ` +
    `height="${height}" viewBox="${viewBox}" preserveAspectRatio="xMidYMid meet">${inner}</svg>`;
  const resvg = new Resvg(wrapped, {
    fitTo: { mode: 'original' },
    background: 'white',
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
  });
  return resvg.render().asPng();
}
