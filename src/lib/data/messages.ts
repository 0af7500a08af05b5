/**
 * Messages built from other messages ("Nothing was imported: <reason>."): a reason that already
 * ends a sentence must not get a second period ("…at most 2000.." was seen in the notices).
 */

/** A message without its final period(s), to end a longer sentence: "…: <reason>.". */
export function sentenceEnd(message: string): string {
  return message.trim().replace(/\.+$/, '');
}

/** A message as one sentence: a period added unless it already ends in . ! ? or …. */
export function sentence(message: string): string {
  const m = message.trim().replace(/\.{2,}$/, '.');
  return /[.!?…]$/.test(m) ? m : `${m}.`;
}
