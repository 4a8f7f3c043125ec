/** A problem found in a segment, with where it is and what would have been right. */
export interface Diagnostic {
  /** Stable kebab-case code, e.g. `unknown-attribute`; clients may switch on it. */
  code: DiagnosticCode;
  severity: 'error' | 'warning';
  message: string;
  /** 1-based line and column of the first character concerned. */
  line: number;
  column: number;
  /** Offset and length in the source text, for editors. */
  offset: number;
  length: number;
  /** What the language accepts here, e.g. `["number"]` or `["and", "or", ")"]`. */
  expected?: string[];
  /** The closest known name when a word looks misspelt. */
  didYouMean?: string;
}

export type DiagnosticCode =
  | 'unexpected-character'
  | 'unterminated-string'
  | 'invalid-escape'
  | 'unterminated-identifier'
  | 'invalid-number'
  | 'invalid-date'
  | 'invalid-duration'
  | 'invalid-percentage'
  | 'unexpected-token'
  | 'unexpected-end'
  | 'too-deep'
  | 'too-long'
  | 'unknown-attribute'
  | 'unknown-event'
  | 'unknown-property'
  | 'unknown-segment'
  | 'unknown-channel'
  | 'unknown-purpose'
  | 'segment-cycle'
  | 'type-mismatch'
  | 'operator-not-allowed'
  | 'invalid-regex'
  | 'invalid-range'
  | 'invalid-count'
  | 'empty-list'
  | 'invalid-time-zone';

export interface Span {
  offset: number;
  length: number;
  line: number;
  column: number;
}

/** Levenshtein distance, capped: only near misses matter for suggestions. */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  const m = a.length;
  const n = b.length;
  if (Math.abs(m - n) > 3) return 99;
  let prev = Array.from({ length: n + 1 }, (_, j) => j);
  for (let i = 1; i <= m; i++) {
    const cur = [i];
    for (let j = 1; j <= n; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
    }
    prev = cur;
  }
  return prev[n]!;
}

/** The closest candidate within a distance that grows with the word's length, if any. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  const lower = word.toLowerCase();
  const limit = lower.length <= 3 ? 1 : lower.length <= 6 ? 2 : 3;
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance && distance > 0) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}
