import type { Diagnostic, Span } from './diagnostics.ts';

export type TokenType =
  | 'word'
  | 'quoted-name'
  | 'string'
  | 'number'
  | 'date'
  | 'datetime'
  | 'duration'
  | 'percent'
  | 'punct'
  | 'eof';

export type DurationUnit = 'minutes' | 'hours' | 'days' | 'weeks';

export interface Token {
  type: TokenType;
  /** Source text of the token. */
  text: string;
  /** Decoded value: the string's content, the number, the unit of a short duration. */
  value: string;
  number?: number;
  unit?: DurationUnit;
  span: Span;
}

/** Longest accepted input; longer text gets one `too-long` diagnostic instead of a slow parse. */
export const MAX_SOURCE_LENGTH = 1_000_000;

const SHORT_UNITS: Record<string, DurationUnit> = { m: 'minutes', h: 'hours', d: 'days', w: 'weeks' };
const PUNCT = ['!=', '<>', '<=', '>=', '=', '<', '>', '(', ')', ','];
const DATE = /^(\d{4})-(\d{2})-(\d{2})/;
const DATETIME_TAIL = /^T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})?/;

/** Splits source text into tokens; never throws, problems become diagnostics. */
export function tokenize(source: string): { tokens: Token[]; diagnostics: Diagnostic[] } {
  const tokens: Token[] = [];
  const diagnostics: Diagnostic[] = [];
  let offset = 0;
  let line = 1;
  let lineStart = 0;
  const span = (start: number, startLine: number, startColumn: number): Span => ({
    offset: start,
    length: offset - start,
    line: startLine,
    column: startColumn,
  });
  const report = (code: Diagnostic['code'], message: string, s: Span, expected?: string[]) =>
    diagnostics.push({
      code,
      severity: 'error',
      message,
      line: s.line,
      column: s.column,
      offset: s.offset,
      length: s.length,
      ...(expected ? { expected } : {}),
    });

  while (offset < source.length) {
    const ch = source[offset]!;
    const start = offset;
    const startLine = line;
    const startColumn = offset - lineStart + 1;
    if (ch === '\n') {
      offset++;
      line++;
      lineStart = offset;
      continue;
    }
    if (ch === ' ' || ch === '\t' || ch === '\r') {
      offset++;
      continue;
    }
    if (ch === '-' && source[offset + 1] === '-') {
      while (offset < source.length && source[offset] !== '\n') offset++;
      continue;
    }
    if (ch === '"' || ch === '`') {
      offset++;
      let value = '';
      let closed = false;
      while (offset < source.length) {
        const c = source[offset]!;
        if (c === ch) {
          offset++;
          closed = true;
          break;
        }
        if (c === '\n' && ch === '`') break;
        if (c === '\\') {
          const next = source[offset + 1];
          if (next === ch || next === '\\') {
            value += next;
            offset += 2;
            continue;
          }
          const escapeStart = offset;
          offset += next === undefined ? 1 : 2;
          report(
            'invalid-escape',
            `unknown escape \\${next ?? ''}: only \\${ch} and \\\\ are escapes`,
            { offset: escapeStart, length: offset - escapeStart, line, column: escapeStart - lineStart + 1 },
            [`\\${ch}`, '\\\\'],
          );
          continue;
        }
        if (c === '\n') {
          line++;
          lineStart = offset + 1;
        }
        value += c;
        offset++;
      }
      const s = span(start, startLine, startColumn);
      if (!closed) {
        report(
          ch === '"' ? 'unterminated-string' : 'unterminated-identifier',
          ch === '"' ? 'string is not closed' : 'quoted name is not closed',
          s,
          [ch],
        );
      }
      tokens.push({
        type: ch === '"' ? 'string' : 'quoted-name',
        text: source.slice(start, offset),
        value,
        span: s,
      });
      continue;
    }
    const isDigit = ch >= '0' && ch <= '9';
    if (isDigit || (ch === '-' && /[0-9]/.test(source[offset + 1] ?? ''))) {
      const rest = source.slice(offset, offset + 40);
      const date = isDigit ? DATE.exec(rest) : null;
      if (date) {
        offset += date[0].length;
        const tail = DATETIME_TAIL.exec(source.slice(offset, offset + 40));
        if (tail) offset += tail[0].length;
        const text = source.slice(start, offset);
        const s = span(start, startLine, startColumn);
        if (!validDate(Number(date[1]), Number(date[2]), Number(date[3])) || (tail && !validTime(tail[0]))) {
          report('invalid-date', `${text} is not a valid ${tail ? 'date-time' : 'date'}`, s, [
            tail ? 'YYYY-MM-DDThh:mm:ssZ' : 'YYYY-MM-DD',
          ]);
        }
        tokens.push({ type: tail ? 'datetime' : 'date', text, value: text, span: s });
        continue;
      }
      const num = /^-?\d+(\.\d+)?/.exec(rest)!;
      offset += num[0].length;
      const n = Number(num[0]);
      if (source[offset] === '%') {
        offset++;
        tokens.push({
          type: 'percent',
          text: source.slice(start, offset),
          value: num[0],
          number: n,
          span: span(start, startLine, startColumn),
        });
        continue;
      }
      const unit = /^[A-Za-z_][A-Za-z0-9_]*/.exec(source.slice(offset, offset + 64));
      if (unit) {
        offset += unit[0].length;
        const s = span(start, startLine, startColumn);
        const known = SHORT_UNITS[unit[0].toLowerCase()] ?? LONG_UNITS[unit[0].toLowerCase()];
        if (!known) {
          report('invalid-duration', `${source.slice(start, offset)} is not a duration`, s, [
            `${num[0]}m`,
            `${num[0]}h`,
            `${num[0]}d`,
            `${num[0]}w`,
          ]);
        }
        tokens.push({
          type: 'duration',
          text: source.slice(start, offset),
          value: num[0],
          number: n,
          unit: known ?? 'days',
          span: s,
        });
        continue;
      }
      if (!Number.isFinite(n))
        report('invalid-number', `${num[0]} is too large`, span(start, startLine, startColumn));
      tokens.push({
        type: 'number',
        text: num[0],
        value: num[0],
        number: n,
        span: span(start, startLine, startColumn),
      });
      continue;
    }
    if (/[A-Za-z_]/.test(ch)) {
      const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(source.slice(offset, offset + 256))!;
      offset += word[0].length;
      // Names longer than 256 characters continue as one word.
      while (offset < source.length && /[A-Za-z0-9_]/.test(source[offset]!)) offset++;
      const text = source.slice(start, offset);
      tokens.push({ type: 'word', text, value: text, span: span(start, startLine, startColumn) });
      continue;
    }
    const punct = PUNCT.find((p) => source.startsWith(p, offset));
    if (punct) {
      offset += punct.length;
      const value = punct === '<>' ? '!=' : punct;
      tokens.push({ type: 'punct', text: punct, value, span: span(start, startLine, startColumn) });
      continue;
    }
    // One diagnostic for a run of characters the language does not use.
    const codePoint = source.codePointAt(offset)!;
    offset += codePoint > 0xffff ? 2 : 1;
    while (offset < source.length && isStray(source, offset)) {
      offset += (source.codePointAt(offset) ?? 0) > 0xffff ? 2 : 1;
    }
    report(
      'unexpected-character',
      `unexpected ${describe(source.slice(start, offset))}`,
      span(start, startLine, startColumn),
    );
  }
  tokens.push({
    type: 'eof',
    text: '',
    value: '',
    span: { offset, length: 0, line, column: offset - lineStart + 1 },
  });
  return { tokens, diagnostics };
}

const LONG_UNITS: Record<string, DurationUnit> = {
  minutes: 'minutes',
  hours: 'hours',
  days: 'days',
  weeks: 'weeks',
  minute: 'minutes',
  min: 'minutes',
  mins: 'minutes',
  hour: 'hours',
  day: 'days',
  week: 'weeks',
};

/** Unit words after a number (`7 days`, `1 hour`). */
export function unitOf(word: string): DurationUnit | undefined {
  return LONG_UNITS[word.toLowerCase()];
}

export const UNIT_WORDS = Object.keys(LONG_UNITS);

function isStray(source: string, offset: number): boolean {
  const c = source[offset]!;
  return !/[\sA-Za-z0-9_"`(),=<>!-]/.test(c);
}

function describe(text: string): string {
  const shown = text.length > 20 ? `${text.slice(0, 20)}…` : text;
  return `character${text.length > 1 ? 's' : ''} ${JSON.stringify(shown)}`;
}

function validDate(y: number, m: number, d: number): boolean {
  if (m < 1 || m > 12 || d < 1) return false;
  const days = new Date(Date.UTC(y, m, 0)).getUTCDate();
  return d <= days && y >= 1900 && y <= 2299;
}

function validTime(tail: string): boolean {
  const m = /^T(\d{2}):(\d{2})(?::(\d{2}))?/.exec(tail)!;
  return Number(m[1]) < 24 && Number(m[2]) < 60 && Number(m[3] ?? 0) < 60;
}
