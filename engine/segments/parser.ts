import {
  type AggregateFn,
  CHANNELS,
  type Channel,
  type CompareOp,
  type Condition,
  type CountClause,
  type Duration,
  freeze,
  type Literal,
  type Loc,
  type MessageAction,
  type MessageTarget,
  type Predicate,
  type PropertyExpr,
  PURPOSES,
  type Purpose,
  type SegmentAst,
  type SegmentExpr,
  type Window,
} from './ast.ts';
import { closest, type Diagnostic } from './diagnostics.ts';
import { MAX_SOURCE_LENGTH, type Token, tokenize, UNIT_WORDS, unitOf } from './lexer.ts';

/** Nesting deeper than this is refused with `too-deep` (no sensible segment comes close). */
export const MAX_DEPTH = 64;

export interface ParseResult {
  /** Present when the text parsed without errors. */
  ast?: SegmentAst;
  diagnostics: Diagnostic[];
}

class ParseError extends Error {}
class TooDeep extends Error {}

const COMPARE_OPS: CompareOp[] = ['=', '!=', '<', '<=', '>', '>='];
const PREDICATE_WORDS = [
  'in',
  'not',
  'between',
  'is',
  'contains',
  'starts',
  'ends',
  'matches',
  'has',
  'before',
  'since',
  'more',
  'anniversary',
];
const CONDITION_WORDS = [
  'tagged',
  'in',
  'subscribed',
  'unsubscribed',
  'did',
  'first',
  'last',
  'sum',
  'avg',
  'min',
  'max',
  'count',
  'received',
  'read',
  'replied',
  'failed',
  'sample',
  'not',
];
const WINDOW_WORDS = ['in', 'more', 'since', 'before', 'between'];

/** Parses segment text into a frozen AST, collecting every diagnostic it can find in one pass. */
export function parseSegment(source: string): ParseResult {
  if (source.length > MAX_SOURCE_LENGTH) {
    return {
      diagnostics: [
        {
          code: 'too-long',
          severity: 'error',
          message: `a segment may be at most ${MAX_SOURCE_LENGTH} characters; this one has ${source.length}`,
          line: 1,
          column: 1,
          offset: 0,
          length: source.length,
        },
      ],
    };
  }
  const { tokens, diagnostics } = tokenize(source);
  const parser = new Parser(tokens, diagnostics);
  const root = parser.parseSegment();
  // Recovery can meet the same missing token at several levels; report it once.
  const seen = new Set<string>();
  const unique = diagnostics.filter((d) => {
    const key = `${d.code}@${d.offset}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  diagnostics.splice(0, diagnostics.length, ...unique);
  const hasError = diagnostics.some((d) => d.severity === 'error');
  return { ...(root && !hasError ? { ast: freeze({ version: 1 as const, root }) } : {}), diagnostics };
}

class Parser {
  private pos = 0;
  private depth = 0;
  private readonly tokens: Token[];
  private readonly diagnostics: Diagnostic[];

  constructor(tokens: Token[], diagnostics: Diagnostic[]) {
    this.tokens = tokens;
    this.diagnostics = diagnostics;
  }

  parseSegment(): SegmentExpr | undefined {
    if (this.peek().type === 'eof') {
      this.error(this.peek(), 'unexpected-end', 'the segment is empty', ['a condition']);
      return undefined;
    }
    try {
      const root = this.parseOr();
      while (this.peek().type !== 'eof') {
        const token = this.peek();
        this.error(
          token,
          'unexpected-token',
          `expected and, or or the end, found ${show(token)}`,
          ['and', 'or', 'end of input'],
          closest(token.value, ['and', 'or']),
        );
        this.pos++;
        this.synchronize();
        if (this.isWord('and') || this.isWord('or')) {
          this.pos++;
          this.parseOr();
        }
      }
      return root;
    } catch (error) {
      if (error instanceof TooDeep || error instanceof ParseError) return undefined;
      throw error;
    }
  }

  // ---- boolean structure ----

  private parseOr(): SegmentExpr {
    const start = this.peek();
    const items = [this.parseAnd()];
    while (this.acceptWord('or')) items.push(this.parseAnd());
    return items.length === 1 ? items[0]! : { kind: 'or', items, loc: this.locFrom(start) };
  }

  private parseAnd(): SegmentExpr {
    const start = this.peek();
    const items = [this.parseUnary()];
    while (this.acceptWord('and')) items.push(this.parseUnary());
    return items.length === 1 ? items[0]! : { kind: 'and', items, loc: this.locFrom(start) };
  }

  private parseUnary(): SegmentExpr {
    this.enter();
    const start = this.peek();
    try {
      if (this.isWord('not')) {
        this.pos++;
        return { kind: 'not', item: this.parseUnary(), loc: this.locFrom(start) };
      }
      if (this.isPunct('(')) {
        this.pos++;
        const inner = this.parseOr();
        this.expectPunct(')');
        return inner;
      }
      return this.parseCondition();
    } catch (error) {
      if (!(error instanceof ParseError)) throw error;
      this.synchronize();
      // A stray `)` at this level would stop every enclosing group; step over it once.
      return { kind: 'constant', value: false, loc: this.locFrom(start) };
    } finally {
      this.depth--;
    }
  }

  /** After an error, skips to the next `and`/`or`/`)` at this nesting level so later problems are found too. */
  private synchronize(): void {
    let depth = 0;
    while (this.peek().type !== 'eof') {
      const token = this.peek();
      if (depth === 0 && (this.isWord('and') || this.isWord('or') || this.isPunct(')'))) return;
      if (token.type === 'punct' && token.value === '(') depth++;
      if (token.type === 'punct' && token.value === ')') depth--;
      this.pos++;
    }
  }

  private enter(): void {
    if (++this.depth > MAX_DEPTH) {
      this.error(this.peek(), 'too-deep', `nesting deeper than ${MAX_DEPTH} levels is not supported`);
      throw new TooDeep();
    }
  }

  // ---- conditions ----

  private parseCondition(): Condition {
    const start = this.peek();
    const word = start.type === 'word' ? start.value.toLowerCase() : '';
    const next = this.peekAt(1);
    const nextWord = next.type === 'word' ? next.value.toLowerCase() : '';
    const done = <T extends Condition>(node: T): T => ({ ...node, loc: this.locFrom(start) });

    if (start.type === 'word') {
      if (word === 'true' || word === 'false') {
        this.pos++;
        return done({ kind: 'constant', value: word === 'true' });
      }
      if (word === 'tagged' && next.type === 'string') {
        this.pos += 2;
        return done({ kind: 'tagged', tag: next.value });
      }
      if (word === 'in' && (nextWord === 'list' || nextWord === 'segment')) {
        this.pos += 2;
        const name = this.expectString(nextWord === 'list' ? 'a list name' : 'a segment name');
        return done(
          nextWord === 'list' ? { kind: 'in-list', list: name } : { kind: 'in-segment', segment: name },
        );
      }
      if ((word === 'subscribed' && nextWord === 'to') || (word === 'unsubscribed' && nextWord === 'from')) {
        this.pos += 2;
        const channel = this.expectWordOf<Channel>(CHANNELS, 'unknown-channel', 'channel');
        const purpose = this.expectWordOf<Purpose>(PURPOSES, 'unknown-purpose', 'purpose');
        return done({
          kind: 'consent',
          state: word === 'subscribed' ? 'subscribed' : 'unsubscribed',
          channel,
          purpose,
        });
      }
      if (word === 'did') {
        this.pos++;
        return done(this.parseDid());
      }
      if ((word === 'first' || word === 'last') && nextWord === 'did') {
        this.pos += 2;
        const event = this.expectString('an event name');
        const where = this.parseWhereOpt();
        const window = this.parseWindowOpt();
        return done({
          kind: 'event-time',
          which: word,
          event,
          ...(where ? { where } : {}),
          ...(window ? { window } : {}),
        });
      }
      if (word === 'last' && nextWord === 'seen') {
        this.pos += 2;
        const window = this.parseWindowOpt();
        if (!window) this.fail(['in last', 'more than', 'since', 'before', 'between'], 'a time window');
        return done({ kind: 'last-seen', window: window! });
      }
      if (['sum', 'avg', 'min', 'max'].includes(word) && nextWord === 'of')
        return done(this.parseAggregate());
      if (word === 'count' && nextWord === 'distinct') return done(this.parseAggregate());
      if (
        (['received', 'read', 'failed'].includes(word) &&
          ['campaign', 'template', 'any'].includes(nextWord)) ||
        (word === 'replied' && nextWord === 'to')
      ) {
        this.pos += word === 'replied' ? 2 : 1;
        return done(this.parseMessage(word as MessageAction));
      }
      if (word === 'sample' && (next.type === 'percent' || next.type === 'number')) {
        this.pos += 2;
        if (next.type !== 'percent')
          this.error(next, 'invalid-percentage', 'a sample is a percentage, e.g. 10%', [`${next.value}%`]);
        const percent = next.number ?? 0;
        if (!(percent > 0 && percent <= 100))
          this.error(next, 'invalid-percentage', 'a sample is more than 0% and at most 100%', ['1% to 100%']);
        this.expectWord('seed');
        const seed = this.expectString('a seed string');
        return done({ kind: 'sample', percent, seed });
      }
    }
    if (start.type === 'word' || start.type === 'quoted-name') {
      // An attribute condition: name, then a predicate.
      const name = start.value;
      if (start.type === 'word' && !/^[a-z_][a-z0-9_]*$/.test(name) && !CONDITION_WORDS.includes(word)) {
        // Names are lower case; `Age` is almost certainly `age` (the checker suggests the known one).
      }
      if (!this.startsPredicate(this.peekAt(1))) {
        const suggestion = closest(word, [
          ...CONDITION_WORDS,
          'tagged',
          'subscribed',
          'unsubscribed',
          'received',
          'replied',
        ]);
        if (suggestion && start.type === 'word' && !this.startsPredicate(next)) {
          this.error(
            start,
            'unexpected-token',
            `unknown condition ${show(start)}`,
            ['a condition'],
            suggestion,
          );
          throw new ParseError();
        }
        this.pos++;
        this.fail([...COMPARE_OPS, ...PREDICATE_WORDS], `an operator after ${name}`);
      }
      this.pos++;
      const predicate = this.parsePredicate(true);
      return done({ kind: 'attribute', attribute: name, ...predicate });
    }
    this.fail(['a condition'], 'a condition');
  }

  private startsPredicate(token: Token): boolean {
    if (token.type === 'punct') return COMPARE_OPS.includes(token.value as CompareOp);
    return token.type === 'word' && PREDICATE_WORDS.includes(token.value.toLowerCase());
  }

  private parseDid(): Condition {
    const negated = this.acceptWord('not');
    const event = this.expectString('an event name');
    const where = this.parseWhereOpt();
    if (this.acceptWord('then')) {
      const thenNegated = this.acceptWord('not');
      if (negated)
        this.error(
          this.previous(),
          'unexpected-token',
          '`did not` cannot start a sequence; use not (did "a" then "b" ...)',
        );
      const second = this.expectString('an event name');
      const secondWhere = this.parseWhereOpt();
      this.expectWord('within');
      const within = this.parseDuration();
      const window = this.parseWindowOpt();
      return {
        kind: 'event-sequence',
        first: { event, ...(where ? { where } : {}) },
        next: { event: second, ...(secondWhere ? { where: secondWhere } : {}) },
        negated: thenNegated,
        within,
        ...(window ? { window } : {}),
      };
    }
    let count: CountClause | undefined;
    let window: Window | undefined;
    for (let i = 0; i < 2; i++) {
      if (!count && !negated) count = this.parseCountOpt();
      if (!window) window = this.parseWindowOpt();
    }
    return {
      kind: 'event',
      event,
      ...(where ? { where } : {}),
      count: negated ? { op: 'exactly', value: 0 } : (count ?? { op: 'at-least', value: 1 }),
      ...(window ? { window } : {}),
    };
  }

  private parseAggregate(): Condition {
    const word = this.next().value.toLowerCase();
    let fn: AggregateFn;
    if (word === 'count') {
      this.expectWord('distinct');
      this.acceptWord('of');
      fn = 'count-distinct';
    } else {
      this.expectWord('of');
      fn = word as AggregateFn;
    }
    const property = this.expectName('a property name');
    this.expectWord('over');
    const event = this.expectString('an event name');
    const where = this.parseWhereOpt();
    const window = this.parseWindowOpt();
    const opToken = this.peek();
    if (opToken.type !== 'punct' || !COMPARE_OPS.includes(opToken.value as CompareOp))
      this.fail(COMPARE_OPS, 'a comparison');
    this.pos++;
    const value = this.expectNumber();
    return {
      kind: 'event-aggregate',
      fn,
      property,
      event,
      ...(where ? { where } : {}),
      ...(window ? { window } : {}),
      op: opToken.value as CompareOp,
      value,
    };
  }

  private parseMessage(action: MessageAction): Condition {
    const kindToken = this.peek();
    const kind = this.expectWordOf(
      ['campaign', 'template', 'any'] as const,
      'unexpected-token',
      'campaign, template or any',
    );
    let target: MessageTarget;
    if (kind === 'any') {
      if (!this.acceptWord('message')) this.acceptWord('messages');
      target = { type: 'any' };
    } else {
      target = { type: kind, name: this.expectString(`a ${kind} name`) };
    }
    void kindToken;
    let count: CountClause | undefined;
    let window: Window | undefined;
    for (let i = 0; i < 2; i++) {
      if (!count) count = this.parseCountOpt();
      if (!window) window = this.parseWindowOpt();
    }
    return {
      kind: 'message',
      action,
      target,
      count: count ?? { op: 'at-least', value: 1 },
      ...(window ? { window } : {}),
    };
  }

  private parseCountOpt(): CountClause | undefined {
    let op: CountClause['op'];
    if (this.isWord('at') && ['least', 'most'].includes(this.peekAt(1).value.toLowerCase())) {
      op = this.peekAt(1).value.toLowerCase() === 'least' ? 'at-least' : 'at-most';
      this.pos += 2;
    } else if (this.isWord('at')) {
      this.pos++;
      this.fail(['least', 'most'], 'least or most');
    } else if (this.acceptWord('exactly')) {
      op = 'exactly';
    } else {
      return undefined;
    }
    const token = this.peek();
    const value = this.expectNumber();
    if (!Number.isInteger(value) || value < 0 || value > 1_000_000_000)
      this.error(token, 'invalid-count', 'a count is a whole number from 0 to 1000000000', ['0, 1, 2, ...']);
    if (!this.acceptWord('times')) this.acceptWord('time');
    return { op: op!, value };
  }

  private parseWhereOpt(): PropertyExpr | undefined {
    if (!this.acceptWord('where')) return undefined;
    return this.parsePropOr();
  }

  // A where clause takes every following `and`/`or` condition that reads as a property condition;
  // parenthesize the whole `did ...` to end it earlier.
  private parsePropOr(): PropertyExpr {
    const start = this.peek();
    const items = [this.parsePropAnd()];
    while (this.isWord('or') && this.speculate(() => this.parsePropAnd(), 1)) {
      this.pos++;
      items.push(this.parsePropAnd());
    }
    return items.length === 1 ? items[0]! : { kind: 'or', items, loc: this.locFrom(start) };
  }

  private parsePropAnd(): PropertyExpr {
    const start = this.peek();
    const items = [this.parsePropUnary()];
    while (this.isWord('and') && this.speculate(() => this.parsePropUnary(), 1)) {
      this.pos++;
      items.push(this.parsePropUnary());
    }
    return items.length === 1 ? items[0]! : { kind: 'and', items, loc: this.locFrom(start) };
  }

  private parsePropUnary(): PropertyExpr {
    this.enter();
    try {
      const start = this.peek();
      if (this.acceptWord('not'))
        return { kind: 'not', item: this.parsePropUnary(), loc: this.locFrom(start) };
      if (this.acceptPunct('(')) {
        const inner = this.parsePropOr();
        this.expectPunct(')');
        return inner;
      }
      const property = this.expectName('a property name');
      const predicate = this.parsePredicate(false);
      return { kind: 'property', property, ...predicate, loc: this.locFrom(start) };
    } finally {
      this.depth--;
    }
  }

  /** True when `parse` succeeds starting `skip` tokens ahead; nothing is consumed or reported. */
  private speculate(parse: () => unknown, skip: number): boolean {
    const saved = this.pos;
    const savedDiagnostics = this.diagnostics.length;
    const savedDepth = this.depth;
    this.pos += skip;
    try {
      parse();
      return this.diagnostics.length === savedDiagnostics;
    } catch (error) {
      if (error instanceof TooDeep) throw error;
      return false;
    } finally {
      this.pos = saved;
      this.depth = savedDepth;
      this.diagnostics.length = savedDiagnostics;
    }
  }

  private parsePredicate(attribute: boolean): Predicate {
    const token = this.next();
    if (token.type === 'punct' && COMPARE_OPS.includes(token.value as CompareOp)) {
      return { op: token.value as CompareOp, value: this.parseLiteral() };
    }
    const word = token.type === 'word' ? token.value.toLowerCase() : '';
    switch (word) {
      case 'in':
        if (this.isPunct('(')) return { op: 'in', values: this.parseLiteralList() };
        if (attribute && this.isWord('last')) {
          this.pos++;
          return { op: 'window', window: { kind: 'in-last', duration: this.parseDuration() } };
        }
        this.fail(attribute ? ['(', 'last'] : ['('], 'a list of values');
        break;
      case 'not':
        this.expectWord('in');
        return { op: 'not-in', values: this.parseLiteralList() };
      case 'between': {
        const from = this.parseLiteral();
        this.expectWord('and');
        const to = this.parseLiteral();
        if (attribute && (from.type === 'date' || from.type === 'datetime')) {
          return { op: 'window', window: { kind: 'between', from, to } };
        }
        return { op: 'between', from, to };
      }
      case 'is': {
        if (attribute && this.acceptWord('anniversary')) {
          this.expectWord('today');
          return { op: 'anniversary-today' };
        }
        const negated = this.acceptWord('not');
        this.expectWord('set');
        return { op: negated ? 'is-not-set' : 'is-set' };
      }
      case 'contains':
      case 'matches':
      case 'has':
        return { op: word, value: this.parseLiteral() };
      case 'starts':
      case 'ends':
        this.expectWord('with');
        return { op: word === 'starts' ? 'starts-with' : 'ends-with', value: this.parseLiteral() };
    }
    if (attribute) {
      if (word === 'more') {
        this.pos--;
        return { op: 'window', window: this.parseWindowOpt()! };
      }
      if (word === 'before' || word === 'since')
        return { op: 'window', window: { kind: word, at: this.parseLiteral() } };
      if (word === 'anniversary') {
        this.expectWord('in');
        this.expectWord('next');
        const durationToken = this.peek();
        const duration = this.parseDuration();
        if (duration.unit !== 'days' && duration.unit !== 'weeks') {
          this.error(durationToken, 'invalid-duration', 'an anniversary window is in days or weeks', [
            '7 days',
          ]);
        }
        const days = duration.unit === 'weeks' ? duration.amount * 7 : duration.amount;
        if (!Number.isInteger(days) || days < 1 || days > 366) {
          this.error(durationToken, 'invalid-duration', 'an anniversary window is 1 to 366 whole days', [
            '7 days',
          ]);
        }
        return { op: 'anniversary-next', days };
      }
    }
    this.pos--;
    this.fail(
      [
        ...COMPARE_OPS,
        ...PREDICATE_WORDS.filter(
          (w) => attribute || !['before', 'since', 'more', 'anniversary'].includes(w),
        ),
      ],
      'an operator',
    );
  }

  private parseWindowOpt(): Window | undefined {
    const token = this.peek();
    if (token.type !== 'word') return undefined;
    const word = token.value.toLowerCase();
    if (word === 'in' && this.peekAt(1).type === 'word' && this.peekAt(1).value.toLowerCase() === 'last') {
      this.pos += 2;
      return { kind: 'in-last', duration: this.parseDuration() };
    }
    if (word === 'more' && this.peekAt(1).value.toLowerCase() === 'than') {
      this.pos += 2;
      const duration = this.parseDuration();
      this.expectWord('ago');
      return { kind: 'more-than-ago', duration };
    }
    if (word === 'since' || word === 'before') {
      this.pos++;
      return { kind: word, at: this.parseTimeLiteral() };
    }
    if (word === 'between') {
      this.pos++;
      const from = this.parseTimeLiteral();
      this.expectWord('and');
      const to = this.parseTimeLiteral();
      return { kind: 'between', from, to };
    }
    if (word === 'in' && !WINDOW_WORDS.includes(this.peekAt(1).value.toLowerCase())) {
      const suggestion = closest(this.peekAt(1).value, ['last']);
      if (suggestion) {
        this.pos++;
        this.fail(['last'], 'last');
      }
    }
    return undefined;
  }

  private parseTimeLiteral(): Literal {
    const token = this.peek();
    if (token.type === 'date' || token.type === 'datetime') {
      this.pos++;
      return { type: token.type, value: token.value };
    }
    this.fail(['a date (YYYY-MM-DD)', 'a date-time (YYYY-MM-DDThh:mm:ssZ)'], 'a date');
  }

  private parseDuration(): Duration {
    const token = this.next();
    if (token.type === 'duration') {
      this.checkAmount(token);
      return { amount: token.number!, unit: token.unit! };
    }
    if (token.type === 'number') {
      const unitToken = this.peek();
      const unit = unitToken.type === 'word' ? unitOf(unitToken.value) : undefined;
      if (!unit) {
        this.error(
          unitToken,
          'invalid-duration',
          `expected a unit after ${token.value}, found ${show(unitToken)}`,
          ['minutes', 'hours', 'days', 'weeks'],
          unitToken.type === 'word' ? closest(unitToken.value, UNIT_WORDS) : undefined,
        );
        throw new ParseError();
      }
      this.pos++;
      this.checkAmount(token);
      return { amount: token.number!, unit };
    }
    this.pos--;
    this.fail(['a duration such as 7 days or 12h'], 'a duration');
  }

  private checkAmount(token: Token): void {
    const amount = token.number ?? 0;
    if (!Number.isInteger(amount) || amount <= 0 || amount > 100_000) {
      this.error(token, 'invalid-duration', 'a duration is a whole number from 1 to 100000', ['7 days']);
    }
  }

  private parseLiteralList(): Literal[] {
    this.expectPunct('(');
    const values: Literal[] = [];
    if (this.isPunct(')')) {
      this.error(this.peek(), 'empty-list', 'a list needs at least one value', ['a value']);
    } else {
      values.push(this.parseLiteral());
      while (this.acceptPunct(',')) values.push(this.parseLiteral());
    }
    this.expectPunct(')');
    return values;
  }

  private parseLiteral(): Literal {
    const token = this.next();
    switch (token.type) {
      case 'string':
        return { type: 'string', value: token.value };
      case 'number':
        return { type: 'number', value: token.number! };
      case 'date':
        return { type: 'date', value: token.value };
      case 'datetime':
        return { type: 'datetime', value: token.value };
      case 'word': {
        const word = token.value.toLowerCase();
        if (word === 'true' || word === 'false') return { type: 'boolean', value: word === 'true' };
      }
    }
    this.pos--;
    this.fail(['a string', 'a number', 'true', 'false', 'a date'], 'a value');
  }

  // ---- token helpers ----

  private peek(): Token {
    return this.tokens[Math.min(this.pos, this.tokens.length - 1)]!;
  }
  private peekAt(n: number): Token {
    return this.tokens[Math.min(this.pos + n, this.tokens.length - 1)]!;
  }
  private previous(): Token {
    return this.tokens[Math.min(Math.max(0, this.pos - 1), this.tokens.length - 1)]!;
  }
  private next(): Token {
    const token = this.peek();
    this.pos++;
    return token;
  }
  private isWord(word: string): boolean {
    const token = this.peek();
    return token.type === 'word' && token.value.toLowerCase() === word;
  }
  private isPunct(p: string): boolean {
    const token = this.peek();
    return token.type === 'punct' && token.value === p;
  }
  private acceptWord(word: string): boolean {
    if (!this.isWord(word)) return false;
    this.pos++;
    return true;
  }
  private acceptPunct(p: string): boolean {
    if (!this.isPunct(p)) return false;
    this.pos++;
    return true;
  }
  private expectWord(word: string): void {
    if (!this.acceptWord(word)) this.fail([word], word);
  }
  private expectPunct(p: string): void {
    if (!this.acceptPunct(p)) this.fail([p], `"${p}"`);
  }
  private expectString(what: string): string {
    const token = this.peek();
    if (token.type === 'string') {
      this.pos++;
      return token.value;
    }
    this.fail([`${what} in double quotes`], what);
  }
  private expectName(what: string): string {
    const token = this.peek();
    if (token.type === 'word' || token.type === 'quoted-name') {
      this.pos++;
      return token.value;
    }
    this.fail([what], what);
  }
  private expectNumber(): number {
    const token = this.peek();
    if (token.type === 'number') {
      this.pos++;
      return token.number!;
    }
    this.fail(['a number'], 'a number');
  }
  private expectWordOf<T extends string>(options: readonly T[], code: Diagnostic['code'], what: string): T {
    const token = this.peek();
    const word = token.type === 'word' ? token.value.toLowerCase() : '';
    if (options.includes(word as T)) {
      this.pos++;
      return word as T;
    }
    this.error(
      token,
      code,
      `expected a ${what} (${options.join(', ')}), found ${show(token)}`,
      [...options],
      closest(token.value, options),
    );
    throw new ParseError();
  }

  private fail(expected: readonly string[], what: string): never {
    const token = this.peek();
    const words = expected.filter((e) => /^[a-z]+$/.test(e));
    this.error(
      token,
      token.type === 'eof' ? 'unexpected-end' : 'unexpected-token',
      `expected ${what}, found ${show(token)}`,
      [...expected],
      token.type === 'word' ? closest(token.value, words) : undefined,
    );
    throw new ParseError();
  }

  private error(
    token: Token,
    code: Diagnostic['code'],
    message: string,
    expected?: string[],
    didYouMean?: string,
  ): void {
    this.diagnostics.push({
      code,
      severity: 'error',
      message: didYouMean ? `${message}; did you mean ${didYouMean}?` : message,
      line: token.span.line,
      column: token.span.column,
      offset: token.span.offset,
      length: token.span.length,
      ...(expected ? { expected } : {}),
      ...(didYouMean ? { didYouMean } : {}),
    });
  }

  private locFrom(start: Token): Loc {
    const end = this.previous();
    const endOffset = Math.max(end.span.offset + end.span.length, start.span.offset);
    return {
      line: start.span.line,
      column: start.span.column,
      offset: start.span.offset,
      length: endOffset - start.span.offset,
    };
  }
}

function show(token: Token): string {
  if (token.type === 'eof') return 'the end';
  const text = token.text.length > 30 ? `${token.text.slice(0, 30)}…` : token.text;
  return JSON.stringify(text);
}
