/** Keyboard helpers for the studio: ignore keys typed into form fields. */
const NON_TEXT_INPUTS = new Set(['checkbox', 'radio', 'button', 'submit', 'reset', 'range', 'file', 'color']);

/** The key goes into a text field (or a select), so the studio's shortcuts must not act on it. */
export function isTyping(e: KeyboardEvent): boolean {
  const t = e.target as HTMLElement | null;
  if (!t || !t.tagName) return false;
  if (t.tagName === 'INPUT') return !NON_TEXT_INPUTS.has((t as HTMLInputElement).type);
  return t.tagName === 'TEXTAREA' || t.tagName === 'SELECT' || t.isContentEditable;
}

/** A plain key press the studio may act on (no Alt/Meta/Ctrl, not typed into a field, not auto-repeat). */
export function isPlainKey(e: KeyboardEvent): boolean {
  return !e.altKey && !e.metaKey && !e.ctrlKey && !e.repeat && !isTyping(e) && !e.defaultPrevented;
}
