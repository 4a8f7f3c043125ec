import { CHANNELS, PURPOSES } from '../consent/records.ts';
import type { AttributeSchema } from '../contacts/attributes.ts';
import type { Channel, Purpose } from '../contacts/types.ts';

export type MappingTarget =
  | { kind: 'phone' | 'external_id' | 'language' | 'timezone' | 'last_seen_at' | 'tags' | 'lists' | 'ignore' }
  | { kind: 'attribute'; name: string }
  | { kind: 'consent'; channel: Channel; purpose: Purpose };

const SIMPLE = [
  'phone',
  'external_id',
  'language',
  'timezone',
  'last_seen_at',
  'tags',
  'lists',
  'ignore',
] as const;

/**
 * Reads a mapping: `column=target` pairs separated by commas (`mobile=phone,Plan=attributes.plan`),
 * or a JSON object `{"mobile": "phone"}`. Targets: phone, external_id, language, timezone,
 * last_seen_at, tags, lists, ignore, attributes.NAME (or a bare attribute name), consent.CHANNEL.PURPOSE.
 */
export function parseMapping(text: string | undefined): Record<string, string> {
  if (!text || text.trim() === '') return {};
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch {
      throw new MappingError(['the mapping is not valid JSON']);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new MappingError(['a JSON mapping must be an object of column: target']);
    const out: Record<string, string> = {};
    for (const [column, target] of Object.entries(parsed)) {
      if (typeof target !== 'string')
        throw new MappingError([`the target of column ${column} must be a string`]);
      out[column] = target;
    }
    return out;
  }
  const out: Record<string, string> = {};
  for (const pair of trimmed.split(',')) {
    if (pair.trim() === '') continue;
    const at = pair.lastIndexOf('=');
    if (at <= 0) throw new MappingError([`"${pair.trim()}" is not column=target`]);
    out[pair.slice(0, at).trim()] = pair.slice(at + 1).trim();
  }
  return out;
}

export class MappingError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join('; '));
    this.problems = problems;
  }
}

export function parseTarget(target: string, schema: AttributeSchema): MappingTarget | string {
  if ((SIMPLE as readonly string[]).includes(target)) return { kind: target as (typeof SIMPLE)[number] };
  if (target.startsWith('consent.')) {
    const [, channel, purpose] = target.split('.');
    if (
      !CHANNELS.includes(channel as Channel) ||
      !PURPOSES.includes(purpose as Purpose) ||
      target.split('.').length !== 3
    )
      return `${target} is not consent.CHANNEL.PURPOSE (channels ${CHANNELS.join(', ')}; purposes ${PURPOSES.join(', ')})`;
    return { kind: 'consent', channel: channel as Channel, purpose: purpose as Purpose };
  }
  const name = target.startsWith('attributes.') ? target.slice('attributes.'.length) : target;
  if (schema.has(name)) return { kind: 'attribute', name };
  return target.startsWith('attributes.')
    ? `unknown attribute ${name}; declare it first (chorus attributes define ${name} TYPE)`
    : `unknown target ${target}`;
}

/**
 * Decides what each CSV column feeds. Columns not in the explicit mapping map themselves when their
 * header names a target (phone, tags, an attribute, consent.whatsapp.marketing); any other column is
 * an error, so a typo never silently drops data (map it to `ignore` to skip it).
 */
export function resolveMapping(
  header: string[],
  explicit: Record<string, string>,
  schema: AttributeSchema,
): MappingTarget[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const [i, column] of header.entries()) {
    if (seen.has(column))
      problems.push(`column ${JSON.stringify(column)} appears twice in the header (column ${i + 1})`);
    seen.add(column);
  }
  for (const column of Object.keys(explicit))
    if (!seen.has(column))
      problems.push(`the mapping names column ${JSON.stringify(column)}, which is not in the header`);
  const targets = header.map((column): MappingTarget => {
    const target = explicit[column] ?? column.trim();
    const parsed = parseTarget(target, schema);
    if (typeof parsed === 'string') {
      problems.push(
        explicit[column] !== undefined
          ? `column ${JSON.stringify(column)}: ${parsed}`
          : `column ${JSON.stringify(column)} maps to nothing: map it (${column}=attributes.NAME, ${column}=phone, ...) or skip it (${column}=ignore)`,
      );
      return { kind: 'ignore' };
    }
    return parsed;
  });
  const single = ['phone', 'external_id', 'language', 'timezone', 'last_seen_at'];
  for (const kind of single)
    if (targets.filter((t) => t.kind === kind).length > 1)
      problems.push(`more than one column maps to ${kind}`);
  const attrs = targets.flatMap((t) => (t.kind === 'attribute' ? [t.name] : []));
  for (const name of new Set(attrs))
    if (attrs.filter((a) => a === name).length > 1)
      problems.push(`more than one column maps to attribute ${name}`);
  if (!targets.some((t) => t.kind === 'phone' || t.kind === 'external_id'))
    problems.push('no column maps to phone or external_id; one of them identifies each contact');
  if (problems.length) throw new MappingError(problems);
  return targets;
}
