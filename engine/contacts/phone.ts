import {
  type CountryCode,
  isSupportedCountry,
  parsePhoneNumberFromString,
  validatePhoneNumberLength,
} from 'libphonenumber-js/max';

export type PhoneResult = { ok: true; e164: string; country: string | null } | { ok: false; reason: string };

const LENGTH_REASONS: Record<string, string> = {
  TOO_SHORT: 'is too short',
  TOO_LONG: 'is too long',
  INVALID_LENGTH: 'has a length no number in its region has',
  INVALID_COUNTRY: 'has no country code and the default region is unknown',
  NOT_A_NUMBER: 'is not a phone number',
};

function reasonFor(text: string, problem: string): string {
  if (problem === 'INVALID_COUNTRY' && text.startsWith('+')) return 'has an unknown country calling code';
  return LENGTH_REASONS[problem] ?? 'is not a valid number';
}

/**
 * Normalizes a phone number to E.164. Numbers without a `+country` prefix are read in the workspace's
 * default region. Uses the full metadata (`/max`) so validity is checked against real number ranges.
 */
export function normalizePhone(raw: string, defaultRegion: string): PhoneResult {
  const text = raw.trim();
  if (text.length === 0) return { ok: false, reason: 'is empty' };
  if (text.length > 40) return { ok: false, reason: 'is too long' };
  const region = isSupportedCountry(defaultRegion) ? (defaultRegion as CountryCode) : undefined;
  const parsed = parsePhoneNumberFromString(text, region ? { defaultCountry: region } : undefined);
  if (!parsed) {
    const lengthProblem = validatePhoneNumberLength(text, region ? { defaultCountry: region } : undefined);
    return { ok: false, reason: reasonFor(text, lengthProblem ?? 'NOT_A_NUMBER') };
  }
  if (!parsed.isValid()) {
    const lengthProblem = validatePhoneNumberLength(text, region ? { defaultCountry: region } : undefined);
    if (lengthProblem) return { ok: false, reason: reasonFor(text, lengthProblem) };
    return {
      ok: false,
      reason: `is not a valid number${parsed.country ? ` in ${parsed.country}` : ''} (no such number range)`,
    };
  }
  return { ok: true, e164: parsed.number, country: parsed.country ?? null };
}

// ICU still names a few zones by their legacy names; users and other tools expect the current ones.
const ZONE_ALIASES: Record<string, string> = {
  'Asia/Calcutta': 'Asia/Kolkata',
  'Asia/Katmandu': 'Asia/Kathmandu',
  'Asia/Saigon': 'Asia/Ho_Chi_Minh',
  'Asia/Rangoon': 'Asia/Yangon',
  'Europe/Kiev': 'Europe/Kyiv',
  'Atlantic/Faeroe': 'Atlantic/Faroe',
  'Pacific/Truk': 'Pacific/Chuuk',
  'Pacific/Ponape': 'Pacific/Pohnpei',
  'America/Godthab': 'America/Nuuk',
};

export function canonicalZone(zone: string): string {
  return ZONE_ALIASES[zone] ?? zone;
}

const zoneCache = new Map<string, string | null>();

function offsetsOf(zone: string, year: number): string {
  return [0, 3, 6, 9]
    .map(
      (month) =>
        new Intl.DateTimeFormat('en-US', { timeZone: zone, timeZoneName: 'longOffset' })
          .formatToParts(Date.UTC(year, month, 15))
          .find((part) => part.type === 'timeZoneName')?.value,
    )
    .join(',');
}

/**
 * The time zone of a country when it has one: exactly one IANA zone, or several that keep the same
 * offsets all year (Germany's Berlin and Büsingen). Null for countries spanning zones (US, BR, ID, MX).
 */
export function countryTimeZone(country: string): string | null {
  const cached = zoneCache.get(country);
  if (cached !== undefined) return cached;
  let zone: string | null = null;
  try {
    const locale = new Intl.Locale(`und-${country}`) as Intl.Locale & {
      getTimeZones?: () => string[] | undefined;
      timeZones?: string[];
    };
    const zones = locale.getTimeZones?.() ?? locale.timeZones ?? [];
    if (zones.length > 0) {
      const year = new Date().getUTCFullYear();
      const first = offsetsOf(zones[0]!, year);
      if (zones.every((z) => offsetsOf(z, year) === first)) zone = canonicalZone(zones[0]!);
    }
  } catch {
    zone = null;
  }
  zoneCache.set(country, zone);
  return zone;
}
