/**
 * The simulator's recipient behaviour model: who is on WhatsApp, who stopped marketing, when each
 * person reads. Pinned API: the send-time helper uses `recipientProfile` as ground truth, so a
 * send-time model has something true to find.
 */
import {
  type CountryCode,
  getCountries,
  getCountryCallingCode,
  parsePhoneNumberFromString,
} from 'libphonenumber-js';
import { rngFor } from './rng.ts';

export interface RecipientProfile {
  /** E.164 with the leading +. */
  phone: string;
  /** ISO 3166 alpha-2 from the phone number, or null when it has none. */
  country: string | null;
  onWhatsApp: boolean;
  /** Stopped marketing messages from businesses before the run started (sends fail with 131050). */
  stoppedMarketing: boolean;
  /** IANA zone, from the phone's country (its most populous zone where it has several). */
  timezone: string;
  /** Local hours (0-23) at which this person reads most. */
  preferredHours: number[];
  /** Probability that a message delivered at this local hour and weekday (0 = Sunday) is read within 24 h. */
  readProbabilityAt(localHour: number, dayOfWeek: number): number;
  /** Probability of a reply once read. */
  replyProbability: number;
  /** Probability of a STOP reply once read (a marketing opt-out, and a negative quality signal). */
  stopProbability: number;
  /** Probability the person blocks the business once read (a negative quality signal). */
  blockProbability: number;
  /** Typical time from sent to delivered (phone offline, network). */
  deliveryDelayMs: number;
  /** Whether an undeliverable number fails in the send response (true) or later in a failed status. */
  failsAtSend: boolean;
}

export interface RecipientRates {
  notOnWhatsApp: number;
  stoppedMarketing: number;
}

export const DEFAULT_RECIPIENT_RATES: RecipientRates = { notOnWhatsApp: 0.05, stoppedMarketing: 0.03 };

/** Most populous zone per country; a phone number alone cannot say more. */
const COUNTRY_ZONES: Record<string, string> = {
  IN: 'Asia/Kolkata',
  US: 'America/New_York',
  CA: 'America/Toronto',
  BR: 'America/Sao_Paulo',
  MX: 'America/Mexico_City',
  AR: 'America/Argentina/Buenos_Aires',
  CO: 'America/Bogota',
  CL: 'America/Santiago',
  PE: 'America/Lima',
  GB: 'Europe/London',
  IE: 'Europe/Dublin',
  DE: 'Europe/Berlin',
  FR: 'Europe/Paris',
  ES: 'Europe/Madrid',
  IT: 'Europe/Rome',
  NL: 'Europe/Amsterdam',
  PT: 'Europe/Lisbon',
  PL: 'Europe/Warsaw',
  TR: 'Europe/Istanbul',
  RU: 'Europe/Moscow',
  UA: 'Europe/Kyiv',
  ZA: 'Africa/Johannesburg',
  NG: 'Africa/Lagos',
  KE: 'Africa/Nairobi',
  EG: 'Africa/Cairo',
  MA: 'Africa/Casablanca',
  AE: 'Asia/Dubai',
  SA: 'Asia/Riyadh',
  IL: 'Asia/Jerusalem',
  PK: 'Asia/Karachi',
  BD: 'Asia/Dhaka',
  LK: 'Asia/Colombo',
  NP: 'Asia/Kathmandu',
  ID: 'Asia/Jakarta',
  MY: 'Asia/Kuala_Lumpur',
  SG: 'Asia/Singapore',
  TH: 'Asia/Bangkok',
  VN: 'Asia/Ho_Chi_Minh',
  PH: 'Asia/Manila',
  CN: 'Asia/Shanghai',
  HK: 'Asia/Hong_Kong',
  JP: 'Asia/Tokyo',
  KR: 'Asia/Seoul',
  AU: 'Australia/Sydney',
  NZ: 'Pacific/Auckland',
};

/** Hours around which people's reading clusters: morning, lunch, evening. */
const PEAK_CANDIDATES = [7, 8, 9, 12, 13, 17, 18, 19, 20, 21];

/** Calling codes that belong to one country only: there the code alone names the country. */
const SOLE_COUNTRY = (() => {
  const byCode = new Map<string, CountryCode[]>();
  for (const country of getCountries()) {
    const code = getCountryCallingCode(country);
    byCode.set(code, [...(byCode.get(code) ?? []), country]);
  }
  return new Map(
    [...byCode].filter(([, countries]) => countries.length === 1).map(([code, [c]]) => [code, c!]),
  );
})();

/** The phone's country; parsing in full only where a calling code is shared (+1, +7, +44, ...). */
export function countryOfPhone(e164: string): string | null {
  for (let length = 1; length <= 3; length++) {
    const country = SOLE_COUNTRY.get(e164.slice(1, 1 + length));
    if (country) return country;
  }
  return parsePhoneNumberFromString(e164)?.country ?? null;
}

/** The table's zone, else the first zone ICU lists for the country, else UTC. */
export function timezoneForCountry(country: string | null): string {
  if (!country) return 'UTC';
  const known = COUNTRY_ZONES[country];
  if (known) return known;
  try {
    const locale = new Intl.Locale(`und-${country}`) as Intl.Locale & {
      getTimeZones?: () => string[] | undefined;
    };
    return locale.getTimeZones?.()?.[0] ?? 'UTC';
  } catch {
    return 'UTC';
  }
}

/** Circular distance between two hours of the day. */
function hourDistance(a: number, b: number): number {
  const d = Math.abs(a - b) % 24;
  return Math.min(d, 24 - d);
}

/** The same seed and phone always give the same person. */
export function recipientProfile(
  seed: string,
  phone: string,
  rates: RecipientRates = DEFAULT_RECIPIENT_RATES,
): RecipientProfile {
  const e164 = phone.startsWith('+') ? phone : `+${phone}`;
  const rng = rngFor(seed, 'recipient', e164);
  const country = countryOfPhone(e164);
  const onWhatsApp = !rng.chance(rates.notOnWhatsApp);
  const stoppedMarketing = onWhatsApp && rng.chance(rates.stoppedMarketing);
  const peaks = 1 + rng.int(0, 1);
  const preferredHours: number[] = [];
  while (preferredHours.length < peaks) {
    const hour = rng.pick(PEAK_CANDIDATES);
    if (!preferredHours.some((h) => hourDistance(h, hour) < 3)) preferredHours.push(hour);
  }
  preferredHours.sort((a, b) => a - b);
  const base = 0.1 + rng.float() * 0.2;
  const amplitude = 0.45 + rng.float() * 0.25;
  const weekendFactor = 0.8 + rng.float() * 0.4;
  const annoyed = rng.chance(0.05);
  const offline = rng.chance(0.1);
  return {
    phone: e164,
    country,
    onWhatsApp,
    stoppedMarketing,
    timezone: timezoneForCountry(country),
    preferredHours,
    readProbabilityAt(localHour: number, dayOfWeek: number): number {
      const peak = Math.max(...preferredHours.map((h) => Math.exp(-(hourDistance(localHour, h) ** 2) / 2)));
      const night = localHour < 6 ? 0.5 : 1;
      const weekend = dayOfWeek === 0 || dayOfWeek === 6 ? weekendFactor : 1;
      return Math.min(0.97, (base + amplitude * peak) * night * weekend);
    },
    replyProbability: 0.02 + rng.float() * 0.13,
    stopProbability: annoyed ? 0.1 + rng.float() * 0.2 : rng.float() * 0.01,
    blockProbability: annoyed ? 0.05 + rng.float() * 0.1 : rng.float() * 0.004,
    deliveryDelayMs: offline ? 60_000 + rng.int(0, 6 * 3_600_000) : 200 + rng.int(0, 5_000),
    failsAtSend: rng.chance(0.5),
  };
}
