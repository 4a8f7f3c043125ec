/** Cloud API error bodies as the simulator sends them (shape from the facts page). */
export const ERROR_TITLES: Record<number, string> = {
  1: 'API Unknown',
  2: 'API Service',
  4: 'Application request limit reached',
  100: 'Invalid parameter',
  190: 'Invalid OAuth access token',
  368: 'Temporarily blocked for policies violations',
  80007: 'Rate limit issues',
  130403: 'Recipient blocked by the business',
  130429: 'Rate limit hit',
  131000: 'Something went wrong',
  131016: 'Service unavailable',
  131026: 'Message undeliverable',
  131031: 'Account has been locked',
  131047: 'Re-engagement message',
  131048: 'Spam rate limit hit',
  131049: 'This message was not delivered to maintain healthy ecosystem engagement.',
  131050:
    'Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business',
  131051: 'Unsupported message type',
  131056: '(Business Account, Consumer Account) pair rate limit hit',
  131057: 'Account in maintenance mode',
  131064: 'Limit imposed for template miscategorisation',
  132000: 'Number of parameters does not match the expected number of params',
  132001: 'Template name does not exist in the translation',
  132005: 'Translated text too long',
  132007: 'Template Format Character Policy Violated',
  132012: 'Parameter format does not match format in the created template',
  132015: 'Template is Paused',
  132016: 'Template is Disabled',
};

/** 429 for call-rate and throughput codes, 401 for tokens, 5xx for server codes, 400 otherwise [3P]. */
export function httpStatusFor(code: number): number {
  if (code === 4 || code === 80007 || code === 130429) return 429;
  if (code === 190) return 401;
  if (code === 1 || code === 131000) return 500;
  if (code === 2 || code === 131016) return 503;
  return 400;
}

export interface SimError {
  code: number;
  details: string;
  subcode?: number;
  userMessage?: string;
}

export function errorBody(error: SimError, traceId: string): Record<string, unknown> {
  const title = ERROR_TITLES[error.code] ?? 'Error';
  return {
    error: {
      message: `(#${error.code}) ${title}`,
      type: 'OAuthException',
      code: error.code,
      ...(error.subcode ? { error_subcode: error.subcode } : {}),
      ...(error.userMessage ? { error_user_title: title, error_user_msg: error.userMessage } : {}),
      error_data: { messaging_product: 'whatsapp', details: error.details },
      fbtrace_id: traceId,
    },
  };
}

/** The errors[] item of a failed status webhook. */
export function statusError(code: number, details: string) {
  return {
    code,
    title: ERROR_TITLES[code] ?? 'Error',
    message: ERROR_TITLES[code] ?? 'Error',
    error_data: { details },
  };
}
