/**
 * Whether a body is one complete JSON object as far as its brackets and strings go: the check the
 * webhook endpoint makes before storing a signed body, instead of a full JSON.parse on the request
 * path (a byte scan costs a fraction of a parse; the processor dead-letters anything it still cannot
 * read). A truncated body always fails it: a cut leaves a bracket or a string open.
 */
export function isCompleteJsonObject(body: Uint8Array): boolean {
  const OPEN_OBJECT = 0x7b;
  const CLOSE_OBJECT = 0x7d;
  const OPEN_ARRAY = 0x5b;
  const CLOSE_ARRAY = 0x5d;
  const QUOTE = 0x22;
  const BACKSLASH = 0x5c;
  let start = 0;
  let end = body.length - 1;
  while (start <= end && isSpace(body[start]!)) start++;
  while (end >= start && isSpace(body[end]!)) end--;
  if (start >= end || body[start] !== OPEN_OBJECT || body[end] !== CLOSE_OBJECT) return false;
  // Open brackets as a stack of bits (1 = object), deep enough for any webhook; deeper is refused.
  const stack = new Uint8Array(512);
  let depth = 0;
  for (let i = start; i <= end; i++) {
    const byte = body[i]!;
    if (byte === QUOTE) {
      // Skip the string, honouring escapes.
      for (i++; i <= end; i++) {
        const inner = body[i]!;
        if (inner === BACKSLASH) i++;
        else if (inner === QUOTE) break;
      }
      if (i > end) return false;
    } else if (byte === OPEN_OBJECT || byte === OPEN_ARRAY) {
      if (depth === stack.length) return false;
      stack[depth++] = byte === OPEN_OBJECT ? 1 : 0;
    } else if (byte === CLOSE_OBJECT || byte === CLOSE_ARRAY) {
      if (depth === 0 || stack[--depth] !== (byte === CLOSE_OBJECT ? 1 : 0)) return false;
      // The top-level object closes only at the last byte.
      if (depth === 0 && i !== end) return false;
    }
  }
  return depth === 0;
}

function isSpace(byte: number): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}
