import { DateTime } from 'luxon';
import type { Sql } from '../stores/postgres.ts';
import { type FieldIssue, pointer, ValidationError } from '../validation.ts';

export const ATTRIBUTE_TYPES = ['string', 'number', 'boolean', 'date', 'datetime', 'string_list'] as const;
export type AttributeType = (typeof ATTRIBUTE_TYPES)[number];
export type AttributeValue = string | number | boolean | string[];

export interface AttributeDefinition {
  name: string;
  type: AttributeType;
  description: string | null;
}

/** Names that the segment language and the contact model already use. */
export const BUILT_IN_FIELDS = new Set([
  'id',
  'contact_id',
  'workspace_id',
  'external_id',
  'phone',
  'country',
  'language',
  'timezone',
  'created_at',
  'updated_at',
  'last_seen_at',
  'tags',
  'lists',
  'consent',
  'attributes',
]);

export const ATTRIBUTE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
const MAX_STRING = 4096;
const MAX_LIST = 1000;

export type AttributeSchema = Map<string, AttributeType>;

export async function getAttributeSchema(sql: Sql, workspaceId: string): Promise<AttributeSchema> {
  const defs = await listAttributes(sql, workspaceId);
  return new Map(defs.map((d) => [d.name, d.type]));
}

export async function listAttributes(sql: Sql, workspaceId: string): Promise<AttributeDefinition[]> {
  const { rows } = await sql.query<AttributeDefinition>(
    'SELECT name, type, description FROM attribute_schemas WHERE workspace_id = $1 ORDER BY name',
    [workspaceId],
  );
  return rows;
}

/**
 * Declares attributes (new ones, or a new description). The type of an existing attribute cannot
 * change: its values live in a typed column, and a silent reinterpretation would corrupt them.
 */
export async function defineAttributes(
  sql: Sql,
  workspaceId: string,
  definitions: { name: string; type: string; description?: string | null }[],
  /** Where each definition's name and type were given, for error paths. */
  paths: { name(i: number): string; type(i: number): string } = {
    name: (i) => `/body${pointer(i)}/name`,
    type: (i) => `/body${pointer(i)}/type`,
  },
): Promise<AttributeDefinition[]> {
  const existing = await getAttributeSchema(sql, workspaceId);
  const errors: FieldIssue[] = [];
  definitions.forEach((d, i) => {
    if (!ATTRIBUTE_NAME.test(d.name))
      errors.push({ path: paths.name(i), message: 'must match [a-z_][a-z0-9_]* (at most 63 characters)' });
    else if (BUILT_IN_FIELDS.has(d.name))
      errors.push({ path: paths.name(i), message: `${d.name} is a built-in contact field` });
    if (!(ATTRIBUTE_TYPES as readonly string[]).includes(d.type))
      errors.push({ path: paths.type(i), message: `must be one of ${ATTRIBUTE_TYPES.join(', ')}` });
    const current = existing.get(d.name);
    if (current && current !== d.type)
      errors.push({
        path: paths.type(i),
        message: `${d.name} is already a ${current}; a type cannot change (declare a new attribute)`,
        code: 'type_change',
      });
  });
  if (errors.length) throw new ValidationError('invalid attribute definitions', errors);
  for (const d of definitions) {
    await sql.query(
      `INSERT INTO attribute_schemas (workspace_id, name, type, description) VALUES ($1, $2, $3, $4)
       ON CONFLICT (workspace_id, name) DO UPDATE SET description = COALESCE(EXCLUDED.description, attribute_schemas.description)`,
      [workspaceId, d.name, d.type, d.description ?? null],
    );
  }
  return listAttributes(sql, workspaceId);
}

type Checked = { ok: true; value: AttributeValue | null } | { ok: false; message: string };

const DATE = /^\d{4}-\d{2}-\d{2}$/;

export function parseDate(value: string): string | undefined {
  if (!DATE.test(value)) return undefined;
  const date = DateTime.fromISO(value, { zone: 'utc' });
  return date.isValid && date.year >= 1900 && date.year <= 2299 ? value : undefined;
}

/** An ISO 8601 instant with a zone (or a bare date-time, read as UTC), as `YYYY-MM-DDTHH:mm:ss.sssZ`. */
export function parseDateTime(value: string): string | undefined {
  if (value.length > 40) return undefined;
  const date = DateTime.fromISO(value, { zone: 'utc', setZone: false });
  if (!date.isValid || !value.includes('T') || date.year < 1900 || date.year > 2299) return undefined;
  return date.toUTC().toISO({ suppressMilliseconds: false }) ?? undefined;
}

/** Checks one JSON value against its declared type; null means "remove the attribute". */
export function checkAttribute(type: AttributeType, value: unknown): Checked {
  if (value === null) return { ok: true, value: null };
  switch (type) {
    case 'string':
      if (typeof value !== 'string') return { ok: false, message: 'must be a string' };
      if (value.length > MAX_STRING) return { ok: false, message: `is longer than ${MAX_STRING} characters` };
      return { ok: true, value };
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value))
        return { ok: false, message: 'must be a finite number' };
      return { ok: true, value };
    case 'boolean':
      if (typeof value !== 'boolean') return { ok: false, message: 'must be true or false' };
      return { ok: true, value };
    case 'date': {
      const date = typeof value === 'string' ? parseDate(value) : undefined;
      return date ? { ok: true, value: date } : { ok: false, message: 'must be a date YYYY-MM-DD' };
    }
    case 'datetime': {
      const instant = typeof value === 'string' ? parseDateTime(value) : undefined;
      return instant
        ? { ok: true, value: instant }
        : { ok: false, message: 'must be an ISO 8601 date-time, e.g. 2026-03-01T10:00:00Z' };
    }
    case 'string_list': {
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'string'))
        return { ok: false, message: 'must be a list of strings' };
      if (value.length > MAX_LIST) return { ok: false, message: `has more than ${MAX_LIST} items` };
      if (value.some((v) => v.length > MAX_STRING))
        return { ok: false, message: `has an item longer than ${MAX_STRING} characters` };
      return { ok: true, value: [...new Set(value as string[])] };
    }
  }
}

/** Reads a CSV cell as a value of the declared type (an empty cell leaves the attribute as it is). */
export function coerceCell(type: AttributeType, cell: string): Checked | undefined {
  const text = cell.trim();
  if (text === '') return undefined;
  switch (type) {
    case 'number': {
      const n = Number(text);
      return Number.isFinite(n)
        ? { ok: true, value: n }
        : { ok: false, message: `"${clip(text)}" is not a number` };
    }
    case 'boolean': {
      const lower = text.toLowerCase();
      if (['true', 'yes', '1', 'y'].includes(lower)) return { ok: true, value: true };
      if (['false', 'no', '0', 'n'].includes(lower)) return { ok: true, value: false };
      return { ok: false, message: `"${clip(text)}" is not a boolean (true/false, yes/no, 1/0)` };
    }
    case 'string_list':
      return checkAttribute(
        type,
        text
          .split('|')
          .map((s) => s.trim())
          .filter(Boolean),
      );
    default:
      return checkAttribute(type, text);
  }
}

export function clip(text: string, length = 40): string {
  return text.length > length ? `${text.slice(0, length)}…` : text;
}

/** Validates a contact's `attributes` object against the schema; issues name the field path. */
export function validateAttributes(
  schema: AttributeSchema,
  attributes: Record<string, unknown>,
  path: string,
  issues: FieldIssue[],
): Record<string, AttributeValue | null> {
  const out: Record<string, AttributeValue | null> = {};
  for (const [name, value] of Object.entries(attributes)) {
    const type = schema.get(name);
    const at = `${path}${pointer(name)}`;
    if (!type) {
      issues.push({
        path: at,
        message: `unknown attribute ${name}; declare it first (PUT /v1/attributes/${name})`,
        code: 'unknown_attribute',
      });
      continue;
    }
    const checked = checkAttribute(type, value);
    if (checked.ok) out[name] = checked.value;
    else issues.push({ path: at, message: `${name} ${checked.message}`, code: 'wrong_type' });
  }
  return out;
}
