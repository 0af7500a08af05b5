/**
 * Settings tables: every trainer declares its settings once, as a table of fields with type,
 * default, range, help text and whether the setting may change while a run goes on. The form,
 * the URL table, scenarios, the engine hosts and the trainers all read the same table, so a
 * setting has one default and one range (issue: "one settings table per trainer").
 *
 * The idea is tensorflow/playground's `src/state.ts` (one serialisable table of properties with
 * their types); the code is ours. Values are plain JSON (numbers, strings, booleans, null, small
 * objects), so a config round-trips through IndexedDB, the worker boundary and the URL.
 *
 * A table validates a partial config (`validate`), filling the defaults, and reports every bad
 * field at once (`SettingsError.fields`, for the UI to show next to each input). URL text is
 * parsed in plain decimal notation only (`1e-4` and `0.5` yes, `0x10`, `0b11` and `Infinity` no).
 */

/** A default that depends on fields declared before it (the reward model's defaults depend on its mode). */
export type DefaultOf<V, C> = V | ((resolved: Partial<C>) => V);

interface Common<V, C> {
  /** One line for tooltips and the settings table. */
  help: string;
  /** Words for forms and messages ("learning rate"); default the key. */
  label?: string;
  default: DefaultOf<V, C>;
  /** May change while a run goes on (applies at the next iteration boundary). Default false. */
  live?: boolean;
  /** The URL parameter's name when it is not `<prefix><Key>`; `false` keeps the field out of URLs. */
  url?: string | false;
}

export interface NumberSpec {
  kind: 'number';
  min: number;
  max: number;
  int?: boolean;
  minExclusive?: boolean;
  maxExclusive?: boolean;
}
export interface NullableNumberSpec extends Omit<NumberSpec, 'kind'> {
  kind: 'number-or-off';
  /** The value a form puts in when the setting is switched on. */
  onValue: number;
}
export interface BooleanSpec {
  kind: 'boolean';
}
export interface ChoiceSpec<V extends string> {
  kind: 'choice';
  choices: readonly V[];
}
/** Anything else (an object, an optional pair): its own check and its own URL text. */
export interface CustomSpec<V> {
  kind: 'custom';
  /** A problem with `v`, or null when it is fine (`v` is any JSON value). */
  check(v: unknown): string | null;
  /** Value → URL text (and the "Default …" text of forms). */
  format(v: V): string;
  /** URL text → a candidate value (checked by `check` after). */
  parse(raw: string): unknown;
}

export type FieldSpec<V, C> = Common<V, C> &
  ([V] extends [number]
    ? NumberSpec
    : [V] extends [number | null]
      ? NullableNumberSpec
      : [V] extends [boolean]
        ? BooleanSpec
        : [V] extends [string]
          ? ChoiceSpec<V> | CustomSpec<V>
          : CustomSpec<V>);

/** Any row, as the table's own code reads it. */
type AnySpec = Common<unknown, never> &
  (NumberSpec | NullableNumberSpec | BooleanSpec | ChoiceSpec<string> | CustomSpec<unknown>);

export type TableSpec<C> = { [K in keyof C]-?: FieldSpec<C[K], C> };

/** Problems per field; `_` for problems of the whole (unknown fields, not an object). */
export type FieldProblems<C> = Partial<Record<keyof C | '_', string>>;

/** Every bad setting of one table, with a message per field. */
export class SettingsError<C = Record<string, unknown>> extends Error {
  override name = 'SettingsError';
  readonly fields: FieldProblems<C>;
  constructor(what: string, fields: FieldProblems<C>) {
    super(
      `Invalid ${what} settings: ` +
        Object.entries(fields)
          .map(([k, v]) => (k === '_' ? v : `${k}: ${v}`))
          .join('; ') +
        '.',
    );
    this.fields = fields;
  }
}

export type ParsedText = { ok: true; value: unknown } | { ok: false; reason: string };

/** Plain decimal notation (an optional sign, digits, a point, an exponent): what a URL number may be. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** URL text → number, or NaN when it is not plain decimal notation. */
export function decimal(raw: string): number {
  const v = raw.trim();
  return DECIMAL.test(v) ? Number(v) : NaN;
}

const TRUE = new Set(['1', 'true', 'on', 'yes']);
const FALSE = new Set(['0', 'false', 'off', 'no']);
const OFF = new Set(['off', 'null', 'none']);

export function booleanText(raw: string): boolean | null {
  const v = raw.trim().toLowerCase();
  return TRUE.has(v) ? true : FALSE.has(v) ? false : null;
}

/** `off`, `null` or `none`. */
export function isOffText(raw: string): boolean {
  return OFF.has(raw.trim().toLowerCase());
}

function rangeText(s: NumberSpec | NullableNumberSpec): string {
  const lo = `${s.minExclusive ? '>' : '≥'} ${s.min}`;
  const hi = s.max < Infinity ? ` and ${s.maxExclusive ? '<' : '≤'} ${s.max}` : '';
  return lo + hi;
}

function numberProblem(s: NumberSpec | NullableNumberSpec, v: unknown): string | null {
  const fine =
    typeof v === 'number' &&
    Number.isFinite(v) &&
    (!s.int || Number.isInteger(v)) &&
    (s.minExclusive ? v > s.min : v >= s.min) &&
    (s.maxExclusive ? v < s.max : v <= s.max);
  return fine ? null : `must be ${s.int ? 'a whole number' : 'a number'} ${rangeText(s)}`;
}

export interface TableOptions<C extends object> {
  /** Names the table in messages ("Invalid PPO settings: …"). */
  what: string;
  /** URL parameter prefix (`rm` → `rmEpochs`); '' for names equal to the keys. */
  urlPrefix: string;
  /** Checks across fields, given the problems each field has alone (skip fields that have one). */
  cross?: (c: C, alone: FieldProblems<C>) => FieldProblems<C>;
  /** The error thrown by `validate` (default `SettingsError`). */
  error?: (fields: FieldProblems<C>, table: SettingsTable<C>) => Error;
}

export class SettingsTable<C extends object> {
  readonly keys: readonly (keyof C & string)[];
  /** The defaults (with the first choice of every default that depends on other fields). */
  readonly defaults: Readonly<C>;
  readonly what: string;
  readonly urlPrefix: string;

  constructor(
    readonly fields: TableSpec<C>,
    private readonly opts: TableOptions<C>,
  ) {
    this.keys = Object.keys(fields) as (keyof C & string)[];
    this.what = opts.what;
    this.urlPrefix = opts.urlPrefix;
    this.defaults = Object.freeze(this.defaultsFor({}));
  }

  spec<K extends keyof C>(key: K): FieldSpec<C[K], C> {
    return this.fields[key];
  }

  help(key: keyof C): string {
    return this.fields[key].help;
  }

  label(key: keyof C | '_'): string {
    return key === '_' ? '' : (this.fields[key].label ?? String(key));
  }

  /** Problems as one sentence with the fields' labels: "epochs must be …; learning rate must be …." */
  sentence(fields: FieldProblems<C>): string {
    return (
      Object.entries(fields)
        .map(([k, v]) => (k === '_' ? v : `${this.label(k as keyof C)} ${v}`))
        .join('; ') + '.'
    );
  }

  private error(fields: FieldProblems<C>): Error {
    return this.opts.error ? this.opts.error(fields, this) : new SettingsError(this.what, fields);
  }

  isLive(key: keyof C): boolean {
    return this.fields[key].live === true;
  }

  /** The defaults, where those that depend on other fields see `partial`'s values. */
  defaultsFor(partial: Partial<C>): C {
    const out: Partial<C> = {};
    for (const k of this.keys) {
      const d = this.fields[k].default as DefaultOf<C[typeof k], C>;
      const v = typeof d === 'function' ? (d as (r: Partial<C>) => C[typeof k])({ ...out, ...partial }) : d;
      out[k] = structuredClone(v);
    }
    return out as C;
  }

  /** The problem with one value of `key`, or null (the value is any JSON value). */
  problem(key: keyof C, v: unknown): string | null {
    const s = this.fields[key] as unknown as AnySpec;
    switch (s.kind) {
      case 'number':
        return numberProblem(s, v);
      case 'number-or-off':
        return v === null ? null : numberProblem(s, v) && `must be off (null) or ${numberProblem(s, v)!.slice(8)}`;
      case 'boolean':
        return typeof v === 'boolean' ? null : 'must be true or false';
      case 'choice':
        return (s.choices as readonly unknown[]).includes(v)
          ? null
          : `must be ${s.choices.map((c) => `'${c}'`).join(' or ')}`;
      case 'custom':
        return s.check(v);
    }
  }

  /** Every problem of `partial` filled with the defaults; empty when it is valid. */
  problems(partial: unknown): FieldProblems<C> {
    if (typeof partial !== 'object' || partial === null || Array.isArray(partial))
      return { _: 'settings must be an object' } as FieldProblems<C>;
    const o = partial as Record<string, unknown>;
    const errors: FieldProblems<C> = {};
    const unknown = Object.keys(o).filter((k) => !(this.keys as readonly string[]).includes(k));
    if (unknown.length) errors._ = `unknown setting${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}`;
    const c = this.fill(o);
    for (const k of this.keys) {
      const p = this.problem(k, c[k]);
      if (p) errors[k] = `${p}, got ${JSON.stringify(c[k]) ?? String(c[k])}`;
    }
    if (this.opts.cross) for (const [k, v] of Object.entries(this.opts.cross(c, errors))) errors[k as keyof C] ??= v;
    return errors;
  }

  /**
   * `partial` filled with the defaults and checked: a fresh config, or the table's error listing
   * every bad field (unknown fields too, to catch typos). `undefined` values take the default.
   */
  validate(partial: unknown = {}): C {
    const errors = this.problems(partial);
    if (Object.keys(errors).length) throw this.error(errors);
    return this.fill(partial as Record<string, unknown>);
  }

  /**
   * `current` with `change` applied, checked as a whole, refusing fields that may not change
   * while running. What a trainer's `updateConfig` calls.
   */
  update(current: C, change: Partial<C>): C {
    const fixed = (Object.keys(change) as (keyof C & string)[]).filter(
      (k) => this.keys.includes(k) && !this.isLive(k) && JSON.stringify(change[k]) !== JSON.stringify(current[k]),
    );
    if (fixed.length) {
      const fields: FieldProblems<C> = {};
      for (const k of fixed) fields[k] = 'cannot change while the run goes on';
      throw this.error(fields);
    }
    return this.validate({ ...current, ...change });
  }

  private fill(o: Record<string, unknown>): C {
    const defined = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<C>;
    const c = this.defaultsFor(defined);
    for (const k of this.keys) if (defined[k] !== undefined) c[k] = structuredClone(defined[k]) as C[typeof k];
    return c;
  }

  // ---------------------------------------------------------------- URL text

  /** The URL parameter of `key`, or null when the field stays out of URLs. */
  urlName(key: keyof C & string): string | null {
    const u = this.fields[key].url;
    if (u === false) return null;
    if (typeof u === 'string') return u;
    return this.urlPrefix ? this.urlPrefix + key[0].toUpperCase() + key.slice(1) : key;
  }

  /** Value → text (URLs, "Default …" in forms). */
  format(key: keyof C, v: unknown): string {
    const s = this.fields[key] as unknown as AnySpec;
    if (s.kind === 'custom') return s.format(v);
    if (v === null) return 'off';
    return String(v);
  }

  /** URL text → a value of `key`, checked alone (cross-field checks come after, in `validate`). */
  parse(key: keyof C, raw: string): ParsedText {
    const s = this.fields[key] as unknown as AnySpec;
    let v: unknown;
    switch (s.kind) {
      case 'number':
        v = decimal(raw);
        break;
      case 'number-or-off':
        v = isOffText(raw) ? null : decimal(raw);
        break;
      case 'boolean':
        v = booleanText(raw);
        if (v === null) return { ok: false, reason: 'must be 1 or 0 (true or false)' };
        break;
      case 'choice':
        v = raw.trim().toLowerCase();
        if (!(s.choices as readonly string[]).includes(v as string))
          v = s.choices.find((c) => c.toLowerCase() === v) ?? v;
        break;
      case 'custom':
        v = s.parse(raw);
        break;
    }
    const p = this.problem(key, v);
    if (p && (s.kind === 'number' || s.kind === 'number-or-off') && !DECIMAL.test(raw.trim()) && !isOffText(raw))
      return { ok: false, reason: `${p} in plain decimal notation` };
    return p ? { ok: false, reason: p } : { ok: true, value: v };
  }
}

/** Declare a table; `C` is checked against the fields' kinds. */
export function settingsTable<C extends object>(fields: TableSpec<C>, opts: TableOptions<C>): SettingsTable<C> {
  return new SettingsTable(fields, opts);
}
