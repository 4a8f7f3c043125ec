import type { Runtime } from '../runtime.ts';

/**
 * Words that, sent alone, withdraw marketing consent. WhatsApp defines no STOP keyword, so the
 * sender must honour the words its users actually send; workspaces replace this list.
 */
export const DEFAULT_OPT_OUT_KEYWORDS = [
  'STOP',
  'STOP ALL',
  'UNSUBSCRIBE',
  'OPT OUT',
  'OPTOUT',
  // Spanish, Portuguese
  'PARAR',
  'ALTO',
  'BAJA',
  'DETENER',
  'SAIR',
  'CANCELAR INSCRICAO',
  // Hindi / Hinglish
  'BAND KARO',
  'BAND KAREN',
  'बंद करो',
  'रोकें',
  // French, German, Indonesian
  'ARRET',
  'ARRETER',
  'DESABONNER',
  'STOPP',
  'ABMELDEN',
  'BERHENTI',
];

export const DEFAULT_REPLY_WINDOW_HOURS = 72;

export interface MessagingSettings {
  replyWindowHours: number;
  optOutKeywords: string[];
  /** Sent back after a keyword opt-out; null sends nothing. */
  optOutConfirmation: string | null;
}

/** Upper-cases, strips accents, punctuation and repeated spaces, so "Stop!" and "  stop " match. */
export function normalizeKeyword(text: string): string {
  return text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toUpperCase()
    .replace(/[^\p{L}\p{N}\p{M}\s]/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/** The keyword a message is, if it is one; a whole-message match, so "don't stop" is not an opt-out. */
export function matchOptOutKeyword(text: string, keywords: readonly string[]): string | undefined {
  if (!text || text.length > 64) return undefined;
  const normalized = normalizeKeyword(text);
  if (!normalized) return undefined;
  return keywords.find((keyword) => normalizeKeyword(keyword) === normalized);
}

export async function messagingSettings(runtime: Runtime, workspaceId: string): Promise<MessagingSettings> {
  const { rows } = await runtime.pg.query<{
    reply_window_hours: number;
    opt_out_keywords: string[] | null;
    opt_out_confirmation: string | null;
  }>(
    'SELECT reply_window_hours, opt_out_keywords, opt_out_confirmation FROM messaging_settings WHERE workspace_id = $1',
    [workspaceId],
  );
  const row = rows[0];
  return {
    replyWindowHours: row?.reply_window_hours ?? DEFAULT_REPLY_WINDOW_HOURS,
    optOutKeywords: row?.opt_out_keywords ?? DEFAULT_OPT_OUT_KEYWORDS,
    optOutConfirmation: row?.opt_out_confirmation ?? null,
  };
}

export async function updateMessagingSettings(
  runtime: Runtime,
  workspaceId: string,
  patch: Partial<MessagingSettings>,
): Promise<MessagingSettings> {
  const current = await messagingSettings(runtime, workspaceId);
  const next = { ...current, ...patch };
  await runtime.pg.query(
    `INSERT INTO messaging_settings (workspace_id, reply_window_hours, opt_out_keywords, opt_out_confirmation, updated_at)
     VALUES ($1, $2, $3, $4, now())
     ON CONFLICT (workspace_id) DO UPDATE SET reply_window_hours = EXCLUDED.reply_window_hours,
       opt_out_keywords = EXCLUDED.opt_out_keywords, opt_out_confirmation = EXCLUDED.opt_out_confirmation,
       updated_at = now()`,
    [workspaceId, next.replyWindowHours, next.optOutKeywords, next.optOutConfirmation],
  );
  return next;
}
