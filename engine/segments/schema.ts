import type { SegmentAst } from './ast.ts';

export type AttributeType = 'string' | 'number' | 'boolean' | 'date' | 'datetime' | 'string_list';
export type PropertyType = 'string' | 'number' | 'boolean';

/** What the checker and the compiler know about a workspace. */
export interface SegmentSchema {
  /** IANA zone: dates in segments are midnight here. */
  timezone: string;
  /** Custom attributes by name (Postgres attribute_schemas). */
  attributes: Record<string, AttributeType>;
  /** Event names seen, with the property types seen for each (Postgres event_properties). */
  events?: Record<string, Record<string, PropertyType[]>>;
  /** Named segments of the workspace by name, for `in segment "x"`. */
  segments?: Record<string, SegmentAst>;
}

/** Attributes every contact has, stored in their own columns. */
export const BUILTIN_ATTRIBUTES: Record<string, AttributeType> = {
  phone: 'string',
  country: 'string',
  language: 'string',
  timezone: 'string',
  created_at: 'datetime',
  last_seen_at: 'datetime',
};

export function attributeType(schema: SegmentSchema, name: string): AttributeType | undefined {
  return Object.hasOwn(BUILTIN_ATTRIBUTES, name)
    ? BUILTIN_ATTRIBUTES[name]
    : Object.hasOwn(schema.attributes, name)
      ? schema.attributes[name]
      : undefined;
}
