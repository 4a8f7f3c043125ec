import {
  type CountryCode,
  isSupportedCountry,
  Metadata,
  type PhoneNumber,
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

/** Why libphonenumber-js's parse or length check refused a number, in words for the error report. */
export function reasonFor(text: string, problem: string): string {
  if (problem === 'INVALID_COUNTRY' && text.startsWith('+')) return 'has an unknown country calling code';
  return LENGTH_REASONS[problem] ?? 'is not a valid number';
}

// `PhoneNumber.isValid()` with its regular expressions compiled once. libphonenumber-js (1.13)
// decides validity in `isValid.js` and `helpers/getNumberType.js`: select the numbering plan of the
// number's country, else of its calling code; without type data, the national number must match the
// plan's pattern; with it, it must match the plan's pattern and the pattern of at least one type
// (fixed line first, then the other types; a type counts only if it has a pattern and, when it lists
// possible lengths, the number's length is one of them). Each match is
// `new RegExp('^(?:' + pattern + ')$').test(number)`, which builds and looks up a pattern of up to a
// few kilobytes for every type of every number: about three quarters of the time of a parse. The
// checks below are the same, on the same metadata, with each expression built once per plan;
// test/phone.test.ts compares them with `isValid()` on generated numbers of every calling code.
const TYPES = [
  'FIXED_LINE',
  'MOBILE',
  'PREMIUM_RATE',
  'TOLL_FREE',
  'SHARED_COST',
  'VOIP',
  'PERSONAL_NUMBER',
  'PAGER',
  'UAN',
  'VOICEMAIL',
] as const;
const entirely = (pattern: string) => new RegExp(`^(?:${pattern})$`);
/** The part of libphonenumber-js's `Metadata` that validity reads (not in its type declarations). */
interface PlanMetadata {
  selectNumberingPlan(plan: string): void;
  nationalNumberPattern(): string;
  hasTypes(): boolean;
  type(name: string): { pattern(): string; possibleLengths(): number[] | undefined } | undefined;
}
const validators = new Map<string, (nationalNumber: string) => boolean>();

function validatorFor(plan: string): (nationalNumber: string) => boolean {
  const metadata = new Metadata() as unknown as PlanMetadata;
  metadata.selectNumberingPlan(plan);
  const general = entirely(metadata.nationalNumberPattern());
  if (!metadata.hasTypes()) return (n) => general.test(n);
  const types: { pattern: RegExp; lengths: number[] | undefined }[] = [];
  for (const name of TYPES) {
    const type = metadata.type(name);
    if (!type?.pattern()) continue;
    types.push({ pattern: entirely(type.pattern()), lengths: type.possibleLengths() });
  }
  return (n) =>
    general.test(n) &&
    types.some(({ pattern, lengths }) => (!lengths || lengths.includes(n.length)) && pattern.test(n));
}

/** `parsed.isValid()`, with compiled patterns (see above). */
export function isValidParsed(parsed: PhoneNumber): boolean {
  const plan = parsed.country ?? parsed.countryCallingCode;
  let validator = validators.get(plan);
  if (!validator) {
    validator = validatorFor(plan);
    validators.set(plan, validator);
  }
  return validator(parsed.nationalNumber);
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
  if (!isValidParsed(parsed)) {
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
