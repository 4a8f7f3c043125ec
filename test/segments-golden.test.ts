// Every example of the DSL contract (shared/segment-dsl.md) on a hand-built fixture, with the contact
// set each must select worked out by hand from the contract's semantics, on both event paths.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  audienceIds,
  countAudience,
  createSnapshot,
  previewAudience,
  snapshotContacts,
} from '../engine/segments/audiences.ts';
import { parseSegment } from '../engine/segments/parser.ts';
import { insertSegment } from '../engine/segments/store.ts';
import { createWorkspace } from '../engine/workspaces.ts';
import { openTestRuntime, type TestRuntime } from './helpers/runtime.ts';
import {
  type ContactRow,
  type EventRow,
  insertContacts,
  insertEvents,
  insertSends,
  type SendRow,
} from './helpers/segment-data.ts';
import { CONTRACT_EXAMPLES } from './helpers/segment-examples.ts';

const NOW = new Date('2026-03-15T12:00:00Z');

const contacts: ContactRow[] = [
  {
    id: 'c01',
    country: 'IN',
    timezone: 'Asia/Kolkata',
    phone: '+919800000001',
    numbers: { age: 30 },
    strings: { plan: 'pro', email: 'a@gmail.com', name: 'Ravi Kumar', city: 'Mumbai' },
    lists: { interests: ['cricket', 'music'] },
    dates: { birthday: '1990-03-15' },
    created_at: '2026-03-01T00:00:00Z',
    tags: ['vip'],
    memberOf: ['newsletter'],
    consent: { 'whatsapp.marketing': 'opted_in' },
  },
  {
    id: 'c02',
    country: 'US',
    timezone: 'America/New_York',
    numbers: { age: 25 },
    strings: { plan: 'team', email: 'b@yahoo.com', name: 'Anita', city: 'Pune' },
    lists: { interests: ['football'] },
    dates: { birthday: '1985-03-20' },
    created_at: '2025-10-01T00:00:00Z',
    consent: { 'whatsapp.marketing': 'opted_out' },
  },
  {
    id: 'c03',
    country: 'IN',
    timezone: 'America/Los_Angeles',
    numbers: { age: 18 },
    strings: { plan: 'free', name: 'arjun KUMAR', city: 'Delhi' },
    dates: { birthday: '2000-03-16' },
    created_at: '2026-01-15T00:00:00Z',
    memberOf: ['newsletter'],
    consent: { 'whatsapp.marketing': 'opted_in', 'sms.marketing': 'opted_out' },
  },
  {
    id: 'c04',
    country: 'IN',
    timezone: 'Pacific/Kiritimati',
    numbers: { age: 40 },
    strings: { email: '', name: 'Bob', city: 'Mumbai' },
    dates: { birthday: '1970-03-16' },
    created_at: '2025-12-31T18:30:00Z',
    last_seen_at: '2026-03-14T00:00:00Z',
  },
  {
    id: 'c05',
    country: 'IN',
    strings: { plan: 'pro', name: 'Zoya', city: 'Bengaluru' },
    created_at: '2025-12-31T18:29:59.999Z',
    tags: ['vip'],
  },
  // Deleted in its latest version: never in any audience.
  {
    id: 'c06',
    country: 'IN',
    strings: { plan: 'pro' },
    created_at: '2026-03-01T00:00:00Z',
    tags: ['vip'],
    version: 1,
  },
  {
    id: 'c06',
    country: 'IN',
    strings: { plan: 'pro' },
    created_at: '2026-03-01T00:00:00Z',
    tags: ['vip'],
    version: 2,
    deleted: true,
  },
  // Changed plan: only the latest version counts.
  {
    id: 'c07',
    country: 'GB',
    strings: { plan: 'pro' },
    numbers: { age: 35 },
    created_at: '2025-06-01T00:00:00Z',
    version: 1,
  },
  {
    id: 'c07',
    country: 'GB',
    strings: { plan: 'free' },
    numbers: { age: 35 },
    created_at: '2025-06-01T00:00:00Z',
    version: 2,
  },
];

const events: EventRow[] = [
  {
    contact: 'c01',
    name: 'purchase',
    ts: '2026-03-01T00:00:00Z',
    properties: { amount: 150, currency: 'INR' },
  },
  {
    contact: 'c01',
    name: 'purchase',
    ts: '2026-03-10T00:00:00Z',
    properties: { amount: 200, currency: 'INR' },
  },
  {
    contact: 'c01',
    name: 'purchase',
    ts: '2025-12-01T00:00:00Z',
    properties: { amount: 5000, currency: 'INR' },
  },
  { contact: 'c01', name: 'add_to_cart', ts: '2026-03-15T11:30:00Z' },
  { contact: 'c01', name: 'app_open', ts: '2026-03-12T00:00:00Z' },
  { contact: 'c02', name: 'signup', ts: '2026-03-10T00:00:00Z' },
  {
    contact: 'c02',
    name: 'purchase',
    ts: '2026-03-14T00:00:00Z',
    properties: { amount: 6000, currency: 'USD' },
  },
  { contact: 'c03', name: 'signup', ts: '2026-03-01T00:00:00Z' },
  {
    contact: 'c03',
    name: 'purchase',
    ts: '2026-03-08T00:00:00Z',
    properties: { amount: 50, currency: 'INR' },
  },
  {
    contact: 'c04',
    name: 'purchase',
    ts: '2026-01-10T00:00:00Z',
    properties: { amount: '70', currency: 'INR' },
  },
  { contact: 'c05', name: 'add_to_cart', ts: '2026-03-15T10:00:00Z' },
  { contact: 'c05', name: 'app_open', ts: '2026-03-14T00:00:00Z' },
  { contact: 'c05', name: 'signup', ts: '2026-02-01T00:00:00Z' },
  {
    contact: 'c05',
    name: 'purchase',
    ts: '2026-02-09T00:00:00Z',
    properties: { amount: 10, currency: 'INR' },
  },
  {
    contact: 'c06',
    name: 'purchase',
    ts: '2026-03-14T00:00:00Z',
    properties: { amount: 9000, currency: 'INR' },
  },
  { contact: 'c07', name: 'add_to_cart', ts: '2026-03-13T10:00:00Z' },
  {
    contact: 'c07',
    name: 'purchase',
    ts: '2026-03-13T11:00:00Z',
    properties: { amount: 100, currency: 'INR' },
  },
  // After `now`: invisible to every condition.
  { contact: 'c03', name: 'app_open', ts: '2026-03-15T12:00:00.001Z' },
];

const sends: SendRow[] = [
  {
    contact: 'c01',
    campaign: 'diwali_sale',
    template: 'promo',
    outcome: 'accepted',
    sent_at: '2026-03-10T00:00:00Z',
    pmid: 'm1',
    statuses: [
      { status: 'sent', ts: '2026-03-10T00:00:01Z' },
      { status: 'delivered', ts: '2026-03-10T00:00:02Z' },
      { status: 'read', ts: '2026-03-10T01:00:00Z' },
    ],
  },
  {
    contact: 'c02',
    campaign: 'diwali_sale',
    template: 'promo',
    outcome: 'accepted',
    sent_at: '2026-03-10T00:00:00Z',
    pmid: 'm2',
    statuses: [
      { status: 'sent', ts: '2026-03-10T00:00:01Z' },
      { status: 'read', ts: '2026-03-10T02:00:00Z' },
      { status: 'replied', ts: '2026-03-10T03:00:00Z' },
    ],
  },
  {
    contact: 'c03',
    campaign: 'diwali_sale',
    template: 'promo',
    outcome: 'failed',
    sent_at: '2026-03-10T00:00:00Z',
  },
  {
    contact: 'c04',
    campaign: 'diwali_sale',
    template: 'promo',
    outcome: 'accepted',
    sent_at: '2026-03-10T00:00:00Z',
    pmid: 'm4',
    statuses: [{ status: 'failed', ts: '2026-03-10T00:00:05Z' }],
  },
  ...['2026-03-15T06:00:00Z', '2026-03-12T00:00:00Z', '2026-03-09T00:00:00Z', '2026-03-05T00:00:00Z'].map(
    (sent_at, i) => ({
      contact: 'c05',
      template: 'order_update',
      outcome: 'accepted' as const,
      sent_at,
      pmid: `m5_${i}`,
    }),
  ),
  ...['2026-03-14T13:00:00Z', '2026-03-12T00:00:00Z'].map((sent_at, i) => ({
    contact: 'c01',
    template: 'order_update',
    outcome: 'accepted' as const,
    sent_at,
    pmid: `m1_${i}`,
  })),
  // A read status after `now` does not count yet.
  {
    contact: 'c07',
    campaign: 'diwali_sale',
    template: 'promo',
    outcome: 'accepted',
    sent_at: '2026-03-10T00:00:00Z',
    pmid: 'm7',
    statuses: [{ status: 'read', ts: '2026-03-16T00:00:00Z' }],
  },
];

function sampled(seed: string, percent: number, ids: string[]): string[] {
  // The documented hash: first 8 bytes of SHA-256(seed ":" contact id), big-endian, mod 1e6.
  return ids.filter((id) => {
    const x = createHash('sha256').update(`${seed}:${id}`).digest().readBigUInt64BE(0);
    return Number(x % 1_000_000n) < Math.round(percent * 10_000);
  });
}
const LIVE = ['c01', 'c02', 'c03', 'c04', 'c05', 'c07'];

// Every example line of the contract, with the contacts it selects here.
const EXAMPLES: [string, string[]][] = [
  ['country = "IN"', ['c01', 'c03', 'c04', 'c05']],
  ['age >= 25 and age < 40', ['c01', 'c02', 'c07']],
  ['age between 18 and 30', ['c01', 'c02', 'c03']],
  ['plan in ("pro", "team")', ['c01', 'c02', 'c05']],
  ['plan not in ("free")', ['c01', 'c02', 'c05']],
  ['email is set', ['c01', 'c02']],
  ['email is not set', ['c03', 'c04', 'c05', 'c07']],
  ['name contains "kumar"', ['c01', 'c03']],
  ['email ends with "@gmail.com"', ['c01']],
  ['name starts with "A"', ['c02']],
  ['city matches "^(Mum|Pun)"', ['c01', 'c02', 'c04']],
  ['interests has "cricket"', ['c01']],
  ['created_at in last 30 days', ['c01']],
  ['created_at more than 90 days ago', ['c02', 'c07']],
  ['created_at before 2026-01-01', ['c02', 'c05', 'c07']],
  ['created_at between 2026-01-01 and 2026-02-01', ['c03', 'c04']],
  ['birthday is anniversary today', ['c01', 'c04']],
  ['birthday anniversary in next 7 days', ['c01', 'c02', 'c03', 'c04']],
  ['not (plan = "pro")', ['c02', 'c03', 'c04', 'c07']],
  ['tagged "vip"', ['c01', 'c05']],
  ['in list "newsletter"', ['c01', 'c03']],
  ['in segment "high_value"', ['c01', 'c02', 'c05']],
  ['subscribed to whatsapp marketing', ['c01', 'c03']],
  ['unsubscribed from whatsapp marketing', ['c02']],
  ['did "purchase"', ['c01', 'c02', 'c03', 'c04', 'c05', 'c07']],
  ['did "purchase" in last 30 days', ['c01', 'c02', 'c03', 'c07']],
  ['did "purchase" where amount > 100 and currency = "INR" at least 2 times in last 30 days', ['c01']],
  ['did "purchase" exactly 1 time', ['c02', 'c03', 'c04', 'c05', 'c07']],
  ['did "purchase" at most 3 times since 2026-01-01', LIVE],
  ['did "purchase" between 2026-01-01 and 2026-02-01', ['c04']],
  ['did not "app_open" in last 14 days', ['c02', 'c03', 'c04', 'c07']],
  ['first did "purchase" in last 7 days', ['c02', 'c07']],
  ['last did "purchase" more than 60 days ago', ['c04']],
  ['sum of amount over "purchase" in last 90 days > 5000', ['c02']],
  ['did "signup" then "purchase" within 7 days', ['c02', 'c03']],
  ['did "add_to_cart" then not "purchase" within 1 hour', ['c05']],
  ['last seen in last 7 days', ['c01', 'c02', 'c04', 'c05', 'c07']],
  ['received campaign "diwali_sale"', ['c01', 'c02', 'c04', 'c07']],
  ['read campaign "diwali_sale"', ['c01', 'c02']],
  ['replied to campaign "diwali_sale"', ['c02']],
  ['failed campaign "diwali_sale"', ['c03', 'c04']],
  ['received template "order_update" at least 3 times in last 7 days', ['c05']],
  ['received any message in last 24 hours', ['c01', 'c05']],
  ['sample 10% seed "exp-42"', sampled('exp-42', 10, LIVE)],
  // Additions beyond the contract's lines
  ['avg of amount over "purchase" >= 100', ['c01', 'c02', 'c07']],
  ['min of amount over "purchase" < 60', ['c03', 'c05']],
  ['max of amount over "purchase" in last 30 days >= 200', ['c01', 'c02']],
  ['count distinct of currency over "purchase" >= 2', []],
  ['count distinct currency over "purchase" = 1', ['c01', 'c02', 'c03', 'c04', 'c05', 'c07']],
  ['did "purchase" where amount is set at least 1 time', ['c01', 'c02', 'c03', 'c04', 'c05', 'c07']],
  ['sum of amount over "purchase" < 100', ['c03', 'c04', 'c05']],
  ['sample 50% seed "a" or sample 50% seed "a"', sampled('a', 50, LIVE)],
  ['sample 100% seed "x"', LIVE],
];

describe('segment contract examples (golden)', () => {
  let runtime: TestRuntime;
  let workspaceId: string;
  beforeAll(async () => {
    runtime = await openTestRuntime();
    const workspace = await createWorkspace(runtime.pg, { name: 'Golden', timezone: 'Asia/Kolkata' });
    workspaceId = workspace.id;
    const attributes = {
      age: 'number',
      plan: 'string',
      email: 'string',
      name: 'string',
      city: 'string',
      interests: 'string_list',
      birthday: 'date',
    };
    for (const [name, type] of Object.entries(attributes)) {
      await runtime.pg.query('INSERT INTO attribute_schemas (workspace_id, name, type) VALUES ($1, $2, $3)', [
        workspaceId,
        name,
        type,
      ]);
    }
    await insertContacts(runtime.ch, workspaceId, contacts);
    await insertEvents(runtime.ch, workspaceId, events);
    await insertSends(runtime.ch, workspaceId, sends);
    const dsl = 'sum of amount over "purchase" in last 90 days > 5000 or tagged "vip"';
    await insertSegment(runtime.pg, workspaceId, { name: 'high_value', dsl, ast: parseSegment(dsl).ast! });
  });
  afterAll(async () => runtime?.close());

  it('the fixture covers every example line of the contract', () => {
    const golden = new Set(EXAMPLES.map(([dsl]) => dsl));
    for (const example of CONTRACT_EXAMPLES)
      expect(golden, example).toContain(example.replace(/\s*--.*$/, ''));
    // The contract lives beside the repository (shared/segment-dsl.md); where it is, every line of its
    // code blocks must be one of ours, so an example added there cannot go untested here.
    const contract = new URL('../../shared/segment-dsl.md', import.meta.url);
    if (!existsSync(contract)) return;
    const blocks = readFileSync(contract, 'utf8').match(/```\n[\s\S]*?```/g) ?? [];
    const lines = blocks.flatMap((block) =>
      block
        .split('\n')
        .slice(1, -1)
        .map((line) => line.trim())
        .filter(Boolean),
    );
    expect(lines.length).toBeGreaterThanOrEqual(40);
    for (const line of lines)
      expect(
        CONTRACT_EXAMPLES.map((e) => e.trim()),
        line,
      ).toContain(line);
  });

  // Only behaviour can take the rollup path; attribute, membership and message examples run once.
  const behaviour = EXAMPLES.filter(([dsl]) => /\b(did|seen|segment)\b/.test(dsl));
  for (const path of ['raw', 'rollup'] as const) {
    it.each(path === 'raw' ? EXAMPLES : behaviour)(`%s (${path})`, async (dsl, expected) => {
      const ids = await audienceIds(runtime, workspaceId, { dsl }, { now: NOW, path });
      expect(ids).toEqual([...expected].sort());
    });
  }

  it('counts, previews and snapshots agree with the audience', async () => {
    const dsl = 'country = "IN" and did "purchase"';
    const { count } = await countAudience(runtime, workspaceId, { dsl }, { now: NOW });
    expect(count).toBe(4);
    const page1 = await previewAudience(
      runtime,
      workspaceId,
      { dsl },
      { now: NOW, limit: 3, attributes: ['age', 'interests'] },
    );
    expect(page1.contacts.map((c) => c.id)).toEqual(['c01', 'c03', 'c04']);
    expect(page1.contacts[0]!.attributes).toEqual({ age: 30, interests: ['cricket', 'music'] });
    const page2 = await previewAudience(
      runtime,
      workspaceId,
      { dsl },
      { now: NOW, limit: 3, after: page1.next_cursor! },
    );
    expect(page2.contacts.map((c) => c.id)).toEqual(['c05']);
    expect(page2.next_cursor).toBeNull();
    const snapshot = await createSnapshot(
      runtime,
      workspaceId,
      { dsl },
      { now: NOW, snapshotId: 'snap_golden' },
    );
    expect(snapshot).toMatchObject({ snapshot_id: 'snap_golden', count: 4 });
    const again = await createSnapshot(
      runtime,
      workspaceId,
      { dsl },
      { now: NOW, snapshotId: 'snap_golden' },
    );
    expect(again.count).toBe(4);
    expect(await snapshotContacts(runtime, workspaceId, 'snap_golden')).toEqual(['c01', 'c03', 'c04', 'c05']);
  });

  it('another workspace sees none of these contacts', async () => {
    const other = await createWorkspace(runtime.pg, { name: 'Other' });
    expect(
      (await countAudience(runtime, other.id, { dsl: 'did "purchase" or country = "IN"' }, { now: NOW }))
        .count,
    ).toBe(0);
  });
});
