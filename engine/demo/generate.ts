import { DateTime } from 'luxon';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';
import { defineAttributes } from '../contacts/attributes.ts';
import type { ContactInput } from '../contacts/types.ts';
import { upsertContacts } from '../contacts/upsert.ts';
import type { Runtime } from '../runtime.ts';
import type { Workspace } from '../workspaces.ts';

// Deterministic, realistic demo data: the same seed and end date give the same contacts and events.

interface City {
  name: string;
  zone: string;
  /** E.164 prefix of mobile numbers there; `digits` random digits follow. */
  prefix: string;
  digits: number;
  weight: number;
}

interface Country {
  code: string;
  weight: number;
  languages: string[];
  currency: string;
  /** Rough USD value of one unit of the currency, for lifetime_value. */
  usd: number;
  /** Typical basket in local currency. */
  basket: number;
  cities: City[];
}

export const DEMO_COUNTRIES: Country[] = [
  {
    code: 'IN',
    weight: 30,
    languages: ['en', 'hi'],
    currency: 'INR',
    usd: 0.012,
    basket: 900,
    cities: [
      { name: 'Mumbai', zone: 'Asia/Kolkata', prefix: '+9198', digits: 8, weight: 3 },
      { name: 'Delhi', zone: 'Asia/Kolkata', prefix: '+9197', digits: 8, weight: 3 },
      { name: 'Bengaluru', zone: 'Asia/Kolkata', prefix: '+9199', digits: 8, weight: 2 },
    ],
  },
  {
    code: 'BR',
    weight: 15,
    languages: ['pt-BR'],
    currency: 'BRL',
    usd: 0.18,
    basket: 120,
    cities: [
      { name: 'São Paulo', zone: 'America/Sao_Paulo', prefix: '+55119', digits: 8, weight: 3 },
      { name: 'Rio de Janeiro', zone: 'America/Sao_Paulo', prefix: '+55219', digits: 8, weight: 2 },
      { name: 'Manaus', zone: 'America/Manaus', prefix: '+55929', digits: 8, weight: 1 },
    ],
  },
  {
    code: 'ID',
    weight: 12,
    languages: ['id'],
    currency: 'IDR',
    usd: 0.000062,
    basket: 250_000,
    cities: [
      { name: 'Jakarta', zone: 'Asia/Jakarta', prefix: '+62812', digits: 8, weight: 3 },
      { name: 'Makassar', zone: 'Asia/Makassar', prefix: '+62811', digits: 8, weight: 1 },
    ],
  },
  {
    code: 'MX',
    weight: 10,
    languages: ['es-MX'],
    currency: 'MXN',
    usd: 0.055,
    basket: 600,
    cities: [
      { name: 'Mexico City', zone: 'America/Mexico_City', prefix: '+5255', digits: 8, weight: 3 },
      { name: 'Tijuana', zone: 'America/Tijuana', prefix: '+52664', digits: 7, weight: 1 },
    ],
  },
  {
    code: 'NG',
    weight: 10,
    languages: ['en'],
    currency: 'NGN',
    usd: 0.00065,
    basket: 25_000,
    cities: [{ name: 'Lagos', zone: 'Africa/Lagos', prefix: '+234803', digits: 7, weight: 1 }],
  },
  {
    code: 'US',
    weight: 10,
    languages: ['en', 'es'],
    currency: 'USD',
    usd: 1,
    basket: 45,
    cities: [
      { name: 'New York', zone: 'America/New_York', prefix: '+12125', digits: 6, weight: 3 },
      { name: 'Chicago', zone: 'America/Chicago', prefix: '+13125', digits: 6, weight: 2 },
      { name: 'Los Angeles', zone: 'America/Los_Angeles', prefix: '+12135', digits: 6, weight: 2 },
    ],
  },
  {
    code: 'GB',
    weight: 7,
    languages: ['en'],
    currency: 'GBP',
    usd: 1.27,
    basket: 35,
    cities: [{ name: 'London', zone: 'Europe/London', prefix: '+4474', digits: 8, weight: 1 }],
  },
  {
    code: 'DE',
    weight: 6,
    languages: ['de'],
    currency: 'EUR',
    usd: 1.08,
    basket: 40,
    cities: [{ name: 'Berlin', zone: 'Europe/Berlin', prefix: '+49151', digits: 8, weight: 1 }],
  },
];

export const DEMO_INTERESTS = [
  'cricket',
  'football',
  'music',
  'movies',
  'tech',
  'fashion',
  'travel',
  'food',
  'fitness',
  'gaming',
];
const PLANS: [string, number][] = [
  ['free', 0.6],
  ['pro', 0.3],
  ['business', 0.1],
];
/** Local hours around which people are active: early risers, lunch, evening, night owls. */
export const DEMO_CHRONOTYPES: [number, number][] = [
  [7.5, 0.22],
  [12.5, 0.2],
  [18.5, 0.3],
  [21.5, 0.28],
];

export interface DemoOptions {
  contacts: number;
  days: number;
  seed: number;
  /** End of the window (exclusive); default: the start of the current UTC day, so a day's runs agree. */
  until?: Date;
  /** Contacts generated and written per round (memory stays flat). */
  chunk?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface DemoSummary {
  workspace_id: string;
  contacts: number;
  events: number;
  events_by_name: Record<string, number>;
  contacts_by_country: Record<string, number>;
  consent_whatsapp_marketing: { opted_in: number; opted_out: number; none: number };
  window: { from: string; to: string };
  seconds: number;
}

function pick<T>(rng: RandomGenerator, items: readonly T[], weight: (item: T) => number): T {
  const total = items.reduce((sum, item) => sum + weight(item), 0);
  let x = uniformFloat64(rng) * total;
  for (const item of items) {
    x -= weight(item);
    if (x < 0) return item;
  }
  return items[items.length - 1]!;
}

function normal(rng: RandomGenerator): number {
  const u = Math.max(uniformFloat64(rng), 1e-12);
  const v = uniformFloat64(rng);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

function poisson(rng: RandomGenerator, mean: number): number {
  const limit = Math.exp(-mean);
  let k = 0;
  let p = uniformFloat64(rng);
  while (p > limit && k < 12) {
    k++;
    p *= uniformFloat64(rng);
  }
  return k;
}

/** A 32-bit seed for contact `index`, independent of how contacts are chunked. */
function contactSeed(seed: number, index: number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  h = Math.imul(h ^ index, 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) | 0;
}

/** Unique numbers per prefix: an affine bijection of a counter over the prefix's digit space. */
function phoneFor(city: City, counter: number): string {
  const space = 10 ** city.digits;
  const digits = (counter * 7_919 + 104_729) % space;
  return `${city.prefix}${String(digits).padStart(city.digits, '0')}`;
}

export const DEMO_ATTRIBUTES = [
  { name: 'plan', type: 'string', description: 'subscription plan: free, pro, business' },
  { name: 'city', type: 'string', description: 'home city' },
  { name: 'age', type: 'number', description: 'age in years' },
  { name: 'birthday', type: 'date', description: 'date of birth' },
  { name: 'interests', type: 'string_list', description: 'declared interests' },
  { name: 'lifetime_value', type: 'number', description: 'total purchases, USD' },
];

export const DEMO_PLATFORMS = ['android', 'android', 'android', 'ios', 'web'];
export const DEMO_PRODUCTS = [
  'sneakers',
  'headphones',
  'phone_case',
  'tshirt',
  'backpack',
  'watch',
  'novel',
  'coffee',
];
export const DEMO_SOURCES = ['ad', 'referral', 'organic', 'store'];

/** Declares the demo's attributes and its events' property types in a workspace. */
export async function defineDemoSchema(
  sql: Parameters<typeof defineAttributes>[0],
  workspaceId: string,
  extraAttributes: { name: string; type: string; description?: string }[] = [],
): Promise<void> {
  await defineAttributes(sql, workspaceId, [...DEMO_ATTRIBUTES, ...extraAttributes]);
  await sql.query(
    `INSERT INTO event_properties (workspace_id, event_name, property, type)
     SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING`,
    [
      workspaceId,
      ['signup', 'app_open', 'add_to_cart', 'add_to_cart', 'purchase', 'purchase', 'purchase'],
      ['source', 'platform', 'product', 'price', 'amount', 'currency', 'items'],
      ['string', 'string', 'string', 'number', 'number', 'string', 'number'],
    ],
  );
}

/**
 * Generates `contacts` contacts with `days` days of behaviour and writes them: contacts (with
 * consent history) through the normal upsert, events straight into ClickHouse in large batches.
 * Every contact has a home city and zone, and opens the app around a personal local hour, so
 * send-time models find a real signal in the history.
 */
export async function generateDemo(
  runtime: Runtime,
  workspace: Pick<Workspace, 'id' | 'default_region'>,
  options: DemoOptions,
): Promise<DemoSummary> {
  const started = Date.now();
  const until = options.until ?? new Date(Math.floor(Date.now() / 86_400_000) * 86_400_000);
  const from = new Date(until.getTime() - options.days * 86_400_000);
  const chunk = options.chunk ?? 2_000;
  await defineDemoSchema(runtime.pg, workspace.id);

  // Local midnight of each day in each zone, computed once (zones × days luxon calls in all).
  const midnights = new Map<string, number[]>();
  const midnightsOf = (zone: string) => {
    let list = midnights.get(zone);
    if (!list) {
      list = [];
      const first = DateTime.fromJSDate(from, { zone }).startOf('day');
      for (let d = 0; d <= options.days + 1; d++) list.push(first.plus({ days: d }).toMillis());
      midnights.set(zone, list);
    }
    return list;
  };

  const counters = new Map<string, number>();
  const summary: DemoSummary = {
    workspace_id: workspace.id,
    contacts: 0,
    events: 0,
    events_by_name: {},
    contacts_by_country: {},
    consent_whatsapp_marketing: { opted_in: 0, opted_out: 0, none: 0 },
    window: { from: from.toISOString(), to: until.toISOString() },
    seconds: 0,
  };

  let eventsInFlight: Promise<void> = Promise.resolve();
  for (let start = 0; start < options.contacts; start += chunk) {
    const inputs: ContactInput[] = [];
    const createdAt: string[] = [];
    const events: Record<string, unknown>[] = [];
    const end = Math.min(options.contacts, start + chunk);
    for (let index = start; index < end; index++) {
      const rng = xoroshiro128plus(contactSeed(options.seed, index));
      const country = pick(rng, DEMO_COUNTRIES, (c) => c.weight);
      const city = pick(rng, country.cities, (c) => c.weight);
      const counter = counters.get(city.prefix) ?? 0;
      counters.set(city.prefix, counter + 1);
      const phone = phoneFor(city, counter);
      const age = Math.min(75, 18 + Math.floor(Math.abs(normal(rng)) * 14 + uniformFloat64(rng) * 10));
      const birthYear = until.getUTCFullYear() - age;
      const birthday = new Date(
        Date.UTC(birthYear, 0, 1) + Math.floor(uniformFloat64(rng) * 365) * 86_400_000,
      )
        .toISOString()
        .slice(0, 10);
      const plan = pick(rng, PLANS, ([, w]) => w)[0];
      const interests = DEMO_INTERESTS.filter(() => uniformFloat64(rng) < 0.22).slice(0, 4);
      // Most contacts signed up early in the window, so they have history.
      const signupDay = Math.min(options.days - 1, Math.floor(options.days * uniformFloat64(rng) ** 2));
      const peak = pick(rng, DEMO_CHRONOTYPES, ([, w]) => w)[0] + normal(rng) * 0.8;
      const activity = Math.exp(normal(rng) * 0.7) * (plan === 'free' ? 0.7 : 1.3);
      const days = midnightsOf(city.zone);
      const contactEvents: Record<string, unknown>[] = [];
      let sequence = 0;
      const push = (name: string, ts: number, properties: Record<string, unknown>) => {
        if (ts >= until.getTime() || ts < from.getTime()) return;
        contactEvents.push({
          workspace_id: workspace.id,
          name,
          contact_id: '',
          ts: new Date(ts).toISOString().replace('T', ' ').replace('Z', ''),
          event_id: `demo-${options.seed}-${index}-${sequence++}`,
          properties: JSON.stringify(properties),
        });
      };
      const signupAt = days[signupDay]! + Math.floor((peak + normal(rng)) * 3_600_000);
      const signupTs = Math.min(Math.max(signupAt, from.getTime()), until.getTime() - 60_000);
      push('signup', signupTs, { source: pick(rng, DEMO_SOURCES, () => 1) });
      let spentUsd = 0;
      for (let day = signupDay; day < options.days; day++) {
        const opens = Math.min(6, poisson(rng, activity));
        for (let k = 0; k < opens; k++) {
          const hour = Math.min(23.99, Math.max(0, peak + normal(rng) * 1.3));
          const at = days[day]! + Math.floor(hour * 3_600_000);
          if (at <= signupTs) continue;
          push('app_open', at, { platform: pick(rng, DEMO_PLATFORMS, () => 1) });
          if (uniformFloat64(rng) < 0.15) {
            const product = pick(rng, DEMO_PRODUCTS, () => 1);
            const price = Math.round(country.basket * Math.exp(normal(rng) * 0.5));
            const cartAt = at + Math.floor((2 + uniformFloat64(rng) * 18) * 60_000);
            push('add_to_cart', cartAt, { product, price });
            if (uniformFloat64(rng) < (plan === 'free' ? 0.3 : 0.5)) {
              const items = 1 + Math.floor(uniformFloat64(rng) * 3);
              const amount = price * items;
              push('purchase', cartAt + Math.floor((3 + uniformFloat64(rng) * 27) * 60_000), {
                amount,
                currency: country.currency,
                items,
              });
              spentUsd += amount * country.usd;
            }
          }
        }
      }
      const consentDraw = uniformFloat64(rng);
      const consentStatus = consentDraw < 0.82 ? 'opted_in' : consentDraw < 0.93 ? 'opted_out' : undefined;
      const createdIso = new Date(signupTs).toISOString();
      inputs.push({
        external_id: `demo-${index}`,
        phone,
        language: pick(rng, country.languages, () => 1),
        timezone: city.zone,
        attributes: {
          plan,
          city: city.name,
          age,
          birthday,
          interests,
          lifetime_value: Math.round(spentUsd * 100) / 100,
        },
        tags: plan === 'business' ? ['b2b'] : [],
        lists: uniformFloat64(rng) < 0.3 ? ['newsletter'] : [],
        consent: [
          ...(consentStatus
            ? [
                {
                  channel: 'whatsapp' as const,
                  purpose: 'marketing' as const,
                  status: consentStatus as 'opted_in' | 'opted_out',
                  source: consentStatus === 'opted_in' ? 'signup_form' : 'reply_stop',
                  proof:
                    consentStatus === 'opted_in'
                      ? 'Ticked "Send me offers on WhatsApp" at signup'
                      : 'Replied STOP',
                  actor: 'contact',
                  recorded_at: createdIso,
                },
              ]
            : []),
          {
            channel: 'whatsapp' as const,
            purpose: 'utility' as const,
            status: 'opted_in' as const,
            source: 'signup_form',
            actor: 'contact',
            recorded_at: createdIso,
          },
        ],
      });
      createdAt.push(createdIso);
      (contactEvents as { contact_index?: number }[]).forEach((e) => {
        e.contact_index = inputs.length - 1;
      });
      events.push(...contactEvents);
      summary.contacts_by_country[country.code] = (summary.contacts_by_country[country.code] ?? 0) + 1;
      summary.consent_whatsapp_marketing[consentStatus ?? 'none']++;
    }
    const result = await upsertContacts(runtime, workspace, inputs, {
      actor: 'demo',
      path: '/demo',
      createdAt: (i) => createdAt[i],
    });
    for (const event of events) {
      const e = event as { contact_index?: number; contact_id: string; name: string };
      e.contact_id = result.ids[e.contact_index!]!;
      delete e.contact_index;
      summary.events_by_name[e.name] = (summary.events_by_name[e.name] ?? 0) + 1;
    }
    // ClickHouse parses and indexes one chunk's events on its own threads while this thread builds
    // the next chunk; at most one chunk's insert is in flight
    await eventsInFlight;
    eventsInFlight = insertEvents(runtime, events);
    eventsInFlight.catch(() => {}); // awaited (and thrown) at the next chunk or the end
    summary.contacts += inputs.length;
    summary.events += events.length;
    options.onProgress?.(summary.contacts, options.contacts);
  }
  await eventsInFlight;
  summary.seconds = Math.round((Date.now() - started) / 100) / 10;
  return summary;
}

async function insertEvents(runtime: Runtime, events: Record<string, unknown>[]): Promise<void> {
  for (let i = 0; i < events.length; i += 100_000)
    await runtime.ch.insert('events', events.slice(i, i + 100_000));
}
