/**
 * Segments: text → tokens (lexer.ts) → AST (parser.ts, ast.ts) → diagnostics (checker.ts) →
 * parameterized ClickHouse SQL (compiler.ts). audiences.ts runs the SQL; store.ts keeps named segments.
 */
import type { SegmentAst } from './ast.ts';
import { checkSegment } from './checker.ts';
import { type CompiledSql, type CompileOptions, compileAst } from './compiler.ts';
import type { Diagnostic } from './diagnostics.ts';
import { parseSegment } from './parser.ts';
import type { SegmentSchema } from './schema.ts';

export interface CompileResult {
  /** The tree, when the text parsed. */
  ast?: SegmentAst;
  /** Every problem found, errors and warnings, in source order. */
  diagnostics: Diagnostic[];
  /** The query, when there were no errors. */
  compiled?: CompiledSql;
}

/** Parses (or takes) a segment, checks it against the schema and compiles it when it is sound. */
export function compileSegment(
  input: string | SegmentAst,
  schema: SegmentSchema,
  options: CompileOptions,
): CompileResult {
  const parsed = typeof input === 'string' ? parseSegment(input) : { ast: input, diagnostics: [] };
  if (!parsed.ast) return { diagnostics: parsed.diagnostics };
  const diagnostics = [...parsed.diagnostics, ...checkSegment(parsed.ast, schema)];
  if (diagnostics.some((d) => d.severity === 'error')) return { ast: parsed.ast, diagnostics };
  return { ast: parsed.ast, diagnostics, compiled: compileAst(parsed.ast, schema, options) };
}

export type { SegmentAst, SegmentExpr } from './ast.ts';
export { checkSegment } from './checker.ts';
export type { CompiledSql, CompileOptions, EventPath } from './compiler.ts';
export type { Diagnostic } from './diagnostics.ts';
export { parseSegment } from './parser.ts';
export type { AttributeType, SegmentSchema } from './schema.ts';
