import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

// Vega-Lite's compile warnings (e.g. merged sort orders) are expected here; errors still throw.
export const quietLogger = vega.logger(vega.Error);

/**
 * Server-side drawing: Vega-Lite → Vega → SVG through vega's headless View (no browser), and SVG →
 * PNG through resvg. A spec passed here must carry numeric width and height (not 'container').
 */
export async function renderSvg(
  spec: TopLevelSpec,
  size?: { width: number; height: number },
): Promise<string> {
  const compiled = compile(spec, { logger: quietLogger }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    const svg = stableIds(await view.toSVG());
    return size ? fitSvg(svg, size.width, size.height) : svg;
  } finally {
    view.finalize();
  }
}

/**
 * Concatenated views (heatmap, holdout) lay out a little larger or smaller than asked; setting the
 * root's size and keeping its viewBox scales the drawing into exactly the requested box.
 */
export function fitSvg(svg: string, width: number, height: number): string {
  return svg.replace(/^<svg([^>]*)>/, (_m, attributes: string) => {
    const rest = attributes.replace(/\s(width|height|preserveAspectRatio)="[^"]*"/g, '');
    return `<svg${rest} width="${width}" height="${height}" preserveAspectRatio="xMidYMid meet">`;
  });
}

/**
 * Vega numbers clip paths and gradients with process-wide counters; renumber them from 1 so the same chart always
 * exports the same bytes.
 */
export function stableIds(svg: string): string {
  const ids = new Map<string, string>();
  return svg.replace(/\b(clip|gradient_)(\d+)\b/g, (_m, kind: string, n: string) => {
    const key = kind + n;
    if (!ids.has(key)) ids.set(key, String(ids.size + 1));
    return `${kind}${ids.get(key)}`;
  });
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
  const resvg = new Resvg(fitSvg(svg, width, height), {
    fitTo: { mode: 'original' },
    background: 'white',
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
  });
  return resvg.render().asPng();
}
