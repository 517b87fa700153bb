// ---- runtime: the same in every export (statemachine/rendering/typescript_runtime.ts) ----------

/** The session as JSON: the field names and shape of the Python `Session.to_wire()`. */
export interface Session {
  readonly threadId: string;
  readonly status: Status;
  readonly providerName: string | null;
  readonly activeTurnId: string | null;
  readonly lastError: string | null;
  readonly updatedAt: string | null;
  /** A requested turn that has not started; `turnId` null when its id is not known. */
  readonly pendingTurn: PendingTurn | null;
  /** What the newest open request asks for (approval, user-input), or null. */
  readonly awaiting: string | null;
  /** The provider's open requests, oldest first (always present; empty when none is open). */
  readonly openRequests: readonly OpenRequest[];
  /** Carried through for the orchestrator, never interpreted (present only when set by `seed`). */
  readonly providerInstanceId?: string;
  readonly runtimeMode?: string;
}

export interface PendingTurn {
  readonly turnId: string | null;
}

/** One open request: the id the provider gave it, and what it asks for (approval, user-input). */
export interface OpenRequest {
  readonly requestId: RequestId;
  readonly kind: string;
}

/** The wire envelope an orchestrator receives (T3's field names). */
export interface EventEnvelope {
  readonly eventId: string;
  readonly type: string;
  readonly provider: string;
  readonly threadId: string;
  readonly createdAt: string;
  readonly turnId?: string | null;
  readonly payload?: { readonly [field: string]: unknown } | null;
}

export type OutcomeKind = "applied" | "ignored" | "duplicate" | "rejected" | "forgotten";

/** What happened to one event. `session` is the session after it (for `forgotten`: the session a
 * new thread starts from); `before` the one it met. */
export interface Outcome {
  readonly kind: OutcomeKind;
  readonly reason: RejectionReason | null;
  readonly eventId: string;
  readonly threadId: string;
  readonly type: string;
  readonly session: Session;
  readonly before: Session;
  /** Index of the spec transition taken (applied and forgotten only). */
  readonly transition: number | null;
}

/** The outcome as the Python `Outcome.to_wire()` writes it. */
export interface WireOutcome {
  readonly kind: OutcomeKind;
  readonly reason: RejectionReason | null;
  readonly eventId: string;
  readonly threadId: string;
  readonly type: string;
  readonly session: Session;
}

export function outcomeToWire(outcome: Outcome): WireOutcome {
  return {
    kind: outcome.kind,
    reason: outcome.reason,
    eventId: outcome.eventId,
    threadId: outcome.threadId,
    type: outcome.type,
    session: outcome.session,
  };
}

/** A malformed event; `field` names the offending field (`payload.state`, `createdAt`, ...).
 * Nothing changed when it is thrown. */
export class EventError extends Error {
  readonly field: string;
  readonly detail: string;

  constructor(field: string, detail: string) {
    super(`${field}: ${detail}`);
    this.name = "EventError";
    this.field = field;
    this.detail = detail;
  }
}

type Payload = { readonly [field: string]: unknown };

/** A checked event, with the attribute names the guards' and effects' renderings read (those of the
 * Python `Event`). `created_dt` is `createdAt` in microseconds since 1970-01-01T00:00:00Z. */
export interface ParsedEvent {
  readonly event_id: string;
  readonly type: string;
  readonly provider: string;
  readonly thread_id: string;
  readonly created_at: string;
  readonly turn_id: string | null;
  readonly payload: Payload;
  /** The machine trigger (`type` or `type[variant]`), or null for a type that is not a lifecycle one. */
  readonly trigger: Trigger | null;
  readonly created_dt: bigint;
}

/** What a guard reads of a thread's finished turns. */
export interface TurnMemory {
  has(turn: string): boolean;
}

// -- Python's meaning of a few operations, for the renderings --------------------------------------
// <helpers> (the XState export copies this section)

/** A request's id: a string or an integer within +/-(2^53 - 1), as the envelope checks admit it,
 * so `===` agrees with Python's `==` on it; null for a request that carries none. */
export type RequestId = string | number | null;

const hasOwn = Object.prototype.hasOwnProperty;

/** `payload.get(name)`: the field's value, null when absent (or null). Own fields only: a payload
 * never reaches the prototype chain. */
function payloadGet(payload: Payload, name: unknown): unknown {
  if (typeof name !== "string" || !hasOwn.call(payload, name)) {
    return null;
  }
  const value = payload[name];
  return value === undefined ? null : value;
}

/** Python's truth value of a JSON value. */
function pyTruthy(value: unknown): boolean {
  if (value === null || value === undefined) return false;
  if (typeof value === "boolean") return value;
  if (typeof value === "number") return value !== 0;
  if (typeof value === "string") return value.length > 0;
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === "object") return Object.keys(value).length > 0;
  return true;
}

/** Python's `str()` of a JSON value: exact for text, booleans, null and integers; other numbers,
 * lists and objects are spelled as Python would spell them as far as JavaScript can tell (a JSON
 * number written `1.0` is a float in Python and the integer 1 here). */
function pyStr(value: unknown): string {
  if (typeof value === "string") return value;
  return pyRepr(value);
}

function pyRepr(value: unknown): string {
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "number") return pyNumber(value);
  if (typeof value === "string") return pyStringRepr(value);
  if (Array.isArray(value)) return "[" + value.map(pyRepr).join(", ") + "]";
  if (typeof value === "object") {
    const parts: string[] = [];
    for (const key of Object.keys(value)) {
      parts.push(pyStringRepr(key) + ": " + pyRepr((value as Payload)[key]));
    }
    return "{" + parts.join(", ") + "}";
  }
  return String(value);
}

function pyNumber(value: number): string {
  if (Number.isNaN(value)) return "nan";
  if (!Number.isFinite(value)) return value > 0 ? "inf" : "-inf";
  if (Number.isInteger(value) && Math.abs(value) < 1e16) return String(value);
  // Python's float repr: the shortest digits that round-trip (as JavaScript's), written in
  // exponent form when the exponent is below -4 or at least 16.
  const [digits, exponentText] = value.toExponential().split("e");
  const exponent = Number(exponentText);
  if (exponent < -4 || exponent >= 16) {
    const sign = exponent < 0 ? "-" : "+";
    return `${digits!}e${sign}${String(Math.abs(exponent)).padStart(2, "0")}`;
  }
  const text = String(value);
  return text.includes(".") ? text : text + ".0";
}

function pyStringRepr(text: string): string {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if (ch === quote || ch === "\\") out += "\\" + ch;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (code < 0x20 || code === 0x7f) out += "\\x" + code.toString(16).padStart(2, "0");
    else if (code >= 0xd800 && code <= 0xdfff) out += "\\u" + code.toString(16).padStart(4, "0");
    else out += ch;
  }
  return out + quote;
}

// </helpers>

/** Length in code points (what Python's `len` counts), not UTF-16 units. */
function codePointLength(text: string): number {
  let pairs = 0;
  for (let i = 0; i < text.length - 1; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        pairs++;
        i++;
      }
    }
  }
  return text.length - pairs;
}

// -- timestamps: CPython 3.11's datetime.fromisoformat, byte for byte ------------------------------

const US_PER_DAY = 86_400_000_000n;
const DAYS_BEFORE_MONTH = [0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
const DAYS_IN_MONTH = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const FRACTION_CORRECTION = [100000, 10000, 1000, 100, 10];
const UTF8 = new TextEncoder();

function isLeap(year: number): boolean {
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
}

function daysInMonth(year: number, month: number): number {
  return month === 2 && isLeap(year) ? 29 : DAYS_IN_MONTH[month]!;
}

/** Days since 0001-01-01 (day 1), as Python's date.toordinal(). */
function ordinal(year: number, month: number, day: number): number {
  const y = year - 1;
  const before = DAYS_BEFORE_MONTH[month]! + (month > 2 && isLeap(year) ? 1 : 0);
  return y * 365 + Math.floor(y / 4) - Math.floor(y / 100) + Math.floor(y / 400) + before + day;
}

const EPOCH_ORDINAL = 719163; // 1970-01-01
const MIN_INSTANT = BigInt(ordinal(1, 1, 1) - EPOCH_ORDINAL) * US_PER_DAY;
const MAX_INSTANT = BigInt(ordinal(9999, 12, 31) - EPOCH_ORDINAL + 1) * US_PER_DAY - 1n;

class InvalidTimestamp extends Error {}

function isDigit(byte: number): boolean {
  return byte >= 0x30 && byte <= 0x39;
}

/** Reads a string as CPython's C parser does: UTF-8 bytes, a NUL past the end. */
class Bytes {
  readonly data: Uint8Array;
  readonly length: number;

  constructor(data: Uint8Array) {
    this.data = data;
    this.length = data.length;
  }

  at(i: number): number {
    return i >= 0 && i < this.length ? this.data[i]! : 0;
  }

  /** `count` decimal digits from `at`, or -1. */
  digits(at: number, count: number): number {
    let value = 0;
    for (let i = 0; i < count; i++) {
      const byte = this.at(at + i);
      if (!isDigit(byte)) return -1;
      value = value * 10 + (byte - 0x30);
    }
    return value;
  }
}

function separatorAt(b: Bytes): number {
  const len = b.length;
  if (len === 7) return 7;
  if (b.at(4) === 0x2d) {
    if (b.at(5) === 0x57) {
      if (len > 8 && b.at(8) === 0x2d) {
        if (len === 9) return -1;
        if (len > 10 && isDigit(b.at(10))) return 8;
        return 10;
      }
      return 8;
    }
    return 10;
  }
  if (b.at(4) === 0x57) {
    let idx = 7;
    while (idx < len && isDigit(b.at(idx))) idx++;
    if (idx < 9) return idx;
    return idx % 2 === 0 ? 7 : 8;
  }
  return 8;
}

/** [year, month, day] of a date whose fields are not checked yet, or null. */
function parseDate(b: Bytes, length: number): [number, number, number] | null {
  const year = b.digits(0, 4);
  if (year < 0) return null;
  let p = 4;
  const dashes = b.at(p) === 0x2d;
  if (dashes) p++;
  if (b.at(p) === 0x57) {
    p++;
    const week = b.digits(p, 2);
    if (week < 0) return null;
    p += 2;
    let weekday = 1;
    if (length < 0 || p < length) {
      if (dashes && b.at(p++) !== 0x2d) return null;
      weekday = b.digits(p, 1);
      if (weekday < 0) return null;
    }
    return isoWeekDate(year, week, weekday);
  }
  const month = b.digits(p, 2);
  if (month < 0) return null;
  p += 2;
  if (dashes && b.at(p++) !== 0x2d) return null;
  const day = b.digits(p, 2);
  if (day < 0) return null;
  return [year, month, day];
}

function isoWeekDate(year: number, week: number, weekday: number): [number, number, number] | null {
  if (year < 1) return null; // CPython computes nonsense there, which its range checks then refuse
  const firstWeekday = (ordinal(year, 1, 1) + 6) % 7; // Monday 0
  if (week <= 0 || week >= 53) {
    if (!(week === 53 && (firstWeekday === 3 || (firstWeekday === 2 && isLeap(year))))) return null;
  }
  if (weekday <= 0 || weekday >= 8) return null;
  let week1Monday = ordinal(year, 1, 1) - firstWeekday;
  if (firstWeekday > 3) week1Monday += 7;
  return fromOrdinal(week1Monday + (week - 1) * 7 + weekday - 1);
}

function fromOrdinal(n: number): [number, number, number] {
  // Days since 0001-01-01 -> (year, month, day), for ordinals >= 1.
  let rest = n - 1;
  const n400 = Math.floor(rest / 146097);
  rest -= n400 * 146097;
  const n100 = Math.floor(rest / 36524);
  rest -= n100 * 36524;
  const n4 = Math.floor(rest / 1461);
  rest -= n4 * 1461;
  const n1 = Math.floor(rest / 365);
  rest -= n1 * 365;
  let year = n400 * 400 + 1 + n100 * 100 + n4 * 4 + n1;
  if (n1 === 4 || n100 === 4) {
    return [year - 1, 12, 31];
  }
  let month = 1;
  while (month < 12 && DAYS_BEFORE_MONTH[month + 1]! + (month + 1 > 2 && isLeap(year) ? 1 : 0) <= rest) month++;
  const day = rest - (DAYS_BEFORE_MONTH[month]! + (month > 2 && isLeap(year) ? 1 : 0)) + 1;
  if (year > 9999) year = 10000;
  return [year, month, day];
}

interface Clock4 {
  rv: number;
  h: number;
  m: number;
  s: number;
  us: number;
}

function parseHhMmSsFf(b: Bytes, start: number, end: number): Clock4 {
  const vals = [0, 0, 0];
  let p = start;
  let separated = true;
  let i = 0;
  for (; i < 3; i++) {
    const v = b.digits(p, 2);
    if (v < 0) return { rv: -3, h: vals[0]!, m: vals[1]!, s: vals[2]!, us: 0 };
    vals[i] = v;
    p += 2;
    const c = b.at(p++);
    if (i === 0) separated = c === 0x3a;
    if (p >= end) return { rv: c !== 0 ? 1 : 0, h: vals[0]!, m: vals[1]!, s: vals[2]!, us: 0 };
    if (separated && c === 0x3a) continue;
    if (c === 0x2e || c === 0x2c) break;
    if (!separated) p--;
    else return { rv: -4, h: vals[0]!, m: vals[1]!, s: vals[2]!, us: 0 };
  }
  const remains = end - p;
  const toParse = remains >= 6 ? 6 : remains;
  let us = b.digits(p, toParse);
  if (us < 0) return { rv: -3, h: vals[0]!, m: vals[1]!, s: vals[2]!, us: 0 };
  p += toParse;
  if (toParse < 6) us *= FRACTION_CORRECTION[toParse - 1]!;
  while (isDigit(b.at(p))) p++;
  return { rv: b.at(p) !== 0 ? 1 : 0, h: vals[0]!, m: vals[1]!, s: vals[2]!, us };
}

/** `createdAt` text -> microseconds since 1970-01-01T00:00:00Z, as the Python side reads it
 * (`datetime.fromisoformat`, no offset meaning UTC). Throws for text Python refuses. */
export function parseTimestamp(text: string): bigint {
  const codePoints = Array.from(text, (ch) => ch.codePointAt(0)!);
  if (codePoints.length < 7) throw new InvalidTimestamp(text);
  // CPython lets a lone surrogate stand as the separator (at 7, 8 or 10) and nowhere else.
  for (const at of [7, 8, 10]) {
    if (at > codePoints.length) break;
    const cp = codePoints[at];
    if (cp !== undefined && cp >= 0xd800 && cp <= 0xdfff) {
      codePoints[at] = 0x54;
      break;
    }
  }
  if (codePoints.some((cp) => cp >= 0xd800 && cp <= 0xdfff)) throw new InvalidTimestamp(text);
  const b = new Bytes(UTF8.encode(codePoints.map((cp) => String.fromCodePoint(cp)).join("")));
  const separator = separatorAt(b);
  const date = parseDate(b, separator);
  if (date === null) throw new InvalidTimestamp(text);
  let clock: Clock4 = { rv: 0, h: 0, m: 0, s: 0, us: 0 };
  let offsetUs = 0n;
  const len = b.length;
  if (len > separator) {
    let p = separator;
    const lead = b.at(p);
    if ((lead & 0x80) === 0) p += 1;
    else if ((lead & 0xf0) === 0xe0) p += 3;
    else if ((lead & 0xf0) === 0xf0) p += 4;
    else p += 2;
    const end = len;
    let tz = p;
    do {
      const c = b.at(tz);
      if (c === 0x5a || c === 0x2b || c === 0x2d) break;
    } while (++tz < end);
    clock = parseHhMmSsFf(b, p, tz);
    if (clock.rv < 0) throw new InvalidTimestamp(text);
    if (tz === end) {
      if (clock.rv === 1) throw new InvalidTimestamp(text);
    } else if (b.at(tz) === 0x5a) {
      if (b.at(tz + 1) !== 0) throw new InvalidTimestamp(text);
    } else {
      const sign = b.at(tz) === 0x2d ? -1 : 1;
      const zone = parseHhMmSsFf(b, tz + 1, end);
      if (zone.rv !== 0) throw new InvalidTimestamp(text);
      const seconds = sign * (zone.h * 3600 + zone.m * 60 + zone.s);
      if (seconds !== 0) {
        // A zero offset in whole seconds is UTC, whatever its fraction (as CPython 3.11 has it).
        offsetUs = BigInt(seconds) * 1_000_000n + BigInt(sign * zone.us);
        if (offsetUs <= -US_PER_DAY || offsetUs >= US_PER_DAY) throw new InvalidTimestamp(text);
      }
    }
  }
  const [year, month, day] = date;
  if (year < 1 || year > 9999 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) {
    throw new InvalidTimestamp(text);
  }
  if (clock.h > 23 || clock.m > 59 || clock.s > 59) throw new InvalidTimestamp(text);
  const days = BigInt(ordinal(year, month, day) - EPOCH_ORDINAL);
  const local = days * US_PER_DAY + BigInt(((clock.h * 60 + clock.m) * 60 + clock.s) * 1_000_000 + clock.us);
  return local - offsetUs;
}

// -- the clock bound ---------------------------------------------------------------------------------

export const DEFAULT_MAX_CLOCK_SKEW_MS = 86_400_000;
export const CREATED_IN_FUTURE = "created_in_future";

/** The latest `createdAt` accepted: the ingest clock plus the allowed skew (null: no bound). The
 * limit only grows: an event at or before it is accepted without reading the clock. */
export class Horizon {
  private skewUs: bigint | null;
  private limit: bigint;
  private readonly clock: () => number;

  /** `clock` returns milliseconds since 1970-01-01T00:00:00Z (`Date.now` by default). */
  constructor(maxClockSkewMs: number | null = DEFAULT_MAX_CLOCK_SKEW_MS, clock: () => number = Date.now) {
    if (maxClockSkewMs !== null && (!Number.isFinite(maxClockSkewMs) || maxClockSkewMs < 0)) {
      throw new RangeError("maxClockSkewMs must be a finite number >= 0, or null");
    }
    this.skewUs = maxClockSkewMs === null ? null : BigInt(Math.round(maxClockSkewMs * 1000));
    this.clock = clock;
    this.limit = maxClockSkewMs === null ? MAX_INSTANT : MIN_INSTANT;
  }

  /** Is `at` (microseconds since the epoch) later than the ingest clock plus the bound? */
  beyond(at: bigint): boolean {
    if (at <= this.limit || this.skewUs === null) return false;
    const now = this.clock();
    if (typeof now !== "number" || !Number.isFinite(now)) {
      throw new TypeError("the ingest clock must return milliseconds since the epoch");
    }
    const limit = BigInt(Math.round(now * 1000)) + this.skewUs;
    if (limit > MAX_INSTANT) {
      // A bound past the largest date Python can hold: nothing is beyond it.
      this.skewUs = null;
      this.limit = MAX_INSTANT;
      return false;
    }
    if (limit > this.limit) this.limit = limit;
    return at > this.limit;
  }
}

// -- memories ----------------------------------------------------------------------------------------

/** An insertion-ordered set that forgets its oldest member past `cap` (O(1) per operation). */
export class BoundedSet implements TurnMemory {
  readonly cap: number;
  private readonly members = new Set<string>();
  private readonly ring: string[] = [];
  private head = 0;

  constructor(cap: number) {
    this.cap = cap;
  }

  /** Adds `key`; false if it was a member already (a member keeps its place). */
  add(key: string): boolean {
    if (this.members.has(key)) return false;
    this.members.add(key);
    if (this.ring.length < this.cap) {
      this.ring.push(key);
    } else {
      this.members.delete(this.ring[this.head]!);
      this.ring[this.head] = key;
      this.head = (this.head + 1) % this.cap;
    }
    return true;
  }

  has(key: string): boolean {
    return this.members.has(key);
  }

  get size(): number {
    return this.members.size;
  }

  /** Oldest first. */
  toArray(): string[] {
    return [...this.ring.slice(this.head), ...this.ring.slice(0, this.head)];
  }
}

export const DEFAULT_MAX_EVENT_IDS = 1024;
export const DEFAULT_MAX_FINISHED_TURNS = 256;
/** How many deleted threads keep their de-duplication memory (a tombstone), oldest forgotten first. */
export const DEFAULT_MAX_TOMBSTONES = 1024;

/** One thread: its session and both memories. `seen` keeps the eventIds themselves (the Python
 * side keeps their keyed 64-bit digests: the same answers, barring a digest collision). Change it only
 * through `apply`. */
export class Thread {
  session: Session;
  /** `session.updatedAt` parsed (microseconds since the epoch), or null. */
  updatedDt: bigint | null;
  readonly seen: BoundedSet;
  readonly finished: BoundedSet;

  constructor(session: Session, maxEventIds = DEFAULT_MAX_EVENT_IDS, maxFinishedTurns = DEFAULT_MAX_FINISHED_TURNS) {
    if (!Number.isInteger(maxEventIds) || maxEventIds < 1) throw new RangeError("maxEventIds must be at least 1");
    if (!Number.isInteger(maxFinishedTurns) || maxFinishedTurns < 1) {
      throw new RangeError("maxFinishedTurns must be at least 1");
    }
    this.updatedDt = session.updatedAt === null ? null : parseTimestamp(session.updatedAt);
    this.session = session;
    this.seen = new BoundedSet(maxEventIds);
    this.finished = new BoundedSet(maxFinishedTurns);
  }
}

/** The session a thread starts from: the initial status, the event's provider, nothing else. */
export function freshSession(threadId: string, provider: string): Session {
  return {
    threadId,
    status: INITIAL_STATUS,
    providerName: provider,
    activeTurnId: null,
    lastError: null,
    updatedAt: null,
    pendingTurn: null,
    awaiting: null,
    openRequests: [],
  };
}

// -- parsing -----------------------------------------------------------------------------------------

export const MAX_ID_LENGTH = 256;

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Refuse text no store can keep as it is (the Python `unstorable`): a NUL, or a lone surrogate
 * (not Unicode text). Such text may become session state (an id, a request's id, an error). */
function storable(value: string, where: string): void {
  if (value.includes("\u0000")) throw new EventError(where, "holds a NUL character");
  if (LONE_SURROGATE.test(value)) throw new EventError(where, "holds a lone surrogate (not Unicode text)");
}

function text(data: { readonly [key: string]: unknown }, name: string, limit: number): string {
  if (!hasOwn.call(data, name)) throw new EventError(name, "is required");
  const value = data[name];
  if (typeof value !== "string") throw new EventError(name, `must be a string, got ${typeName(value)}`);
  if (value.length === 0) throw new EventError(name, "must not be empty");
  if (value.length > limit) {
    const length = codePointLength(value);
    if (length > limit) throw new EventError(name, `is ${length} characters long; the limit is ${limit}`);
  }
  storable(value, name);
  return value;
}

function isObject(value: unknown): value is { readonly [key: string]: unknown } {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Validates a wire envelope against the spec (the Python `EventParser.parse`): the same checks in
 * the same order, so the same field is named. The payload object is kept, read-only by contract. */
export function parseEvent(data: unknown, maxIdLength: number = MAX_ID_LENGTH): ParsedEvent {
  if (!isObject(data)) throw new EventError("event", `must be a JSON object, got ${typeName(data)}`);
  const eventId = text(data, "eventId", maxIdLength);
  if (eventId.startsWith(SYNTHETIC_EVENT_PREFIX)) {
    throw new EventError("eventId", `ids starting with ${JSON.stringify(SYNTHETIC_EVENT_PREFIX)} are reserved for the library's own events`);
  }
  const type = text(data, "type", maxIdLength);
  const provider = text(data, "provider", maxIdLength);
  const threadId = text(data, "threadId", maxIdLength);
  const createdAt = text(data, "createdAt", maxIdLength);
  let createdDt: bigint;
  try {
    createdDt = parseTimestamp(createdAt);
  } catch {
    throw new EventError("createdAt", `not an ISO 8601 timestamp: ${JSON.stringify(createdAt.slice(0, 64))}`);
  }
  let turnId: string | null = null;
  const rawTurn = hasOwn.call(data, "turnId") ? data["turnId"] : null;
  if (rawTurn !== null && rawTurn !== undefined) {
    if (typeof rawTurn !== "string" || rawTurn.length === 0) {
      throw new EventError("turnId", "must be a non-empty string or null");
    }
    if (rawTurn.length > maxIdLength && codePointLength(rawTurn) > maxIdLength) {
      throw new EventError("turnId", `is ${codePointLength(rawTurn)} characters long; the limit is ${maxIdLength}`);
    }
    storable(rawTurn, "turnId");
    turnId = rawTurn;
  }
  const rawPayload = hasOwn.call(data, "payload") ? data["payload"] : null;
  let payload: Payload;
  if (rawPayload === null || rawPayload === undefined) {
    payload = {};
  } else if (isObject(rawPayload)) {
    payload = rawPayload;
  } else {
    throw new EventError("payload", `must be a JSON object, got ${typeName(rawPayload)}`);
  }
  return {
    event_id: eventId,
    type,
    provider,
    thread_id: threadId,
    created_at: createdAt,
    turn_id: turnId,
    payload,
    trigger: triggerOf(type, payload),
    created_dt: createdDt,
  };
}

/** An `id` payload field (a request's id): a string of 1 to MAX_ID_LENGTH characters, or an integer
 * JavaScript holds exactly. (A JSON number written `1.0` is the integer 1 here; Python refuses it
 * as a float: once parsed, JavaScript cannot tell them apart.) */
function checkId(value: unknown, where: string): void {
  if (typeof value === "string") {
    // The messages are Python's (`request_id_problem`).
    if (value.length === 0) throw new EventError(where, "must not be empty");
    if (value.length > MAX_ID_LENGTH && codePointLength(value) > MAX_ID_LENGTH) {
      throw new EventError(where, `is ${codePointLength(value)} characters long; the limit is ${MAX_ID_LENGTH}`);
    }
  } else if (typeof value === "number" && Number.isInteger(value)) {
    if (!Number.isSafeInteger(value)) throw new EventError(where, `is an integer beyond +/-${Number.MAX_SAFE_INTEGER}`);
  } else {
    const got = typeof value === "boolean" ? "bool" : typeof value === "number" ? "float" : typeName(value);
    throw new EventError(where, `must be a string or an integer, got ${got}`);
  }
}

function triggerOf(type: string, payload: Payload): Trigger | null {
  const fields = EVENT_TYPES.get(type);
  if (fields === undefined) return null;
  let trigger: string = type;
  for (const f of fields) {
    let value = payloadGet(payload, f.name);
    const where = `payload.${f.name}`;
    if (value === null) {
      if (f.required) throw new EventError(where, "is required");
      value = f.default;
      if (value === null) continue;
    } else if (typeof value === "string") {
      storable(value, where);
    }
    if ((f.type === "string" || f.type === "boolean") && typeof value !== f.type) {
      throw new EventError(where, `must be a ${f.type}, got ${typeName(value)}`);
    }
    if (f.enum !== null && (typeof value !== "string" || !f.enum.includes(value))) {
      throw new EventError(where, `must be one of ${JSON.stringify(f.enum)}, got ${JSON.stringify(pyStr(value).slice(0, 64))}`);
    }
    if (f.type === "id") checkId(value, where);
    if (f.selects) trigger = `${type}[${value as string}]`;
  }
  return trigger as Trigger;
}

/** The JSON-line reading: `JSON.parse`, and the Python side's nesting bound. */
export const MAX_NESTING = 200;

function depth(value: unknown): number {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [item, level] = stack.pop()!;
    if (typeof item !== "object" || item === null) continue;
    if (level > deepest) deepest = level;
    for (const child of Array.isArray(item) ? item : Object.values(item)) {
      if (typeof child === "object" && child !== null) stack.push([child, level + 1]);
    }
  }
  return deepest;
}

export function parseLine(line: string): unknown {
  let data: unknown;
  try {
    data = JSON.parse(line);
  } catch (error) {
    throw new EventError("line", `not valid JSON: ${(error as Error).message}`);
  }
  if (depth(data) > MAX_NESTING) throw new EventError("line", `not valid JSON: nested deeper than ${MAX_NESTING} levels`);
  return data;
}

// -- the step ----------------------------------------------------------------------------------------

type Step = (rec: Thread, ev: ParsedEvent) => Outcome;

function unapplied(kind: OutcomeKind, reason: RejectionReason | null, ev: ParsedEvent, session: Session): Outcome {
  return { kind, reason, eventId: ev.event_id, threadId: ev.thread_id, type: ev.type, session, before: session, transition: null };
}

/** The clock bound `apply` uses when given none: the default skew, the wall clock. */
export const DEFAULT_HORIZON = new Horizon();

/** One event on one thread (the Python `SessionProjector._step`): de-duplication, the clock bound,
 * the type, then the step for (status, trigger) generated from the recorded table. A `forgotten`
 * outcome means the caller drops the thread and its memories. */
export function apply(thread: Thread, ev: ParsedEvent, horizon: Horizon = DEFAULT_HORIZON): Outcome {
  if (thread.session.threadId !== ev.thread_id) {
    throw new RangeError("the event belongs to another thread");
  }
  const before = thread.session;
  if (!thread.seen.add(ev.event_id)) return unapplied("duplicate", null, ev, before);
  if (horizon.beyond(ev.created_dt)) return unapplied("rejected", CREATED_IN_FUTURE, ev, before);
  if (ev.trigger === null) return unapplied("ignored", null, ev, before);
  const outcome = STEPS.get(before.status)!.get(ev.trigger)!(thread, ev);
  if (outcome.kind === "applied" && FORGETTING.has(ev.trigger)) {
    return { ...outcome, kind: "forgotten", session: freshSession(ev.thread_id, ev.provider) };
  }
  return outcome;
}

export interface ProjectorOptions {
  maxEventIds?: number;
  maxFinishedTurns?: number;
  /** null: no bound (replaying logs written ahead of this machine's clock). */
  maxClockSkewMs?: number | null;
  /** Milliseconds since the epoch; `Date.now` by default. */
  clock?: () => number;
  maxIdLength?: number;
  /** How many deleted threads keep their eventIds (0: none), so a redelivery is a duplicate. */
  maxTombstones?: number;
}

export interface SeedOptions {
  finishedTurns?: Iterable<string>;
  seenEventIds?: Iterable<string>;
}

/** Sessions by threadId (the Python `SessionProjector`, without observers and snapshots). */
export class SessionProjector {
  readonly maxEventIds: number;
  readonly maxFinishedTurns: number;
  readonly maxIdLength: number;
  readonly maxTombstones: number;
  private readonly horizon: Horizon;
  private readonly threads = new Map<string, Thread>();
  /** Deleted threads' memories, oldest first (the Python `Pipeline.tombstones`). */
  private readonly tombstones = new Map<string, Thread>();

  constructor(options: ProjectorOptions = {}) {
    this.maxEventIds = options.maxEventIds ?? DEFAULT_MAX_EVENT_IDS;
    this.maxFinishedTurns = options.maxFinishedTurns ?? DEFAULT_MAX_FINISHED_TURNS;
    this.maxIdLength = options.maxIdLength ?? MAX_ID_LENGTH;
    if (!Number.isInteger(this.maxEventIds) || this.maxEventIds < 1) throw new RangeError("maxEventIds must be at least 1");
    if (!Number.isInteger(this.maxFinishedTurns) || this.maxFinishedTurns < 1) {
      throw new RangeError("maxFinishedTurns must be at least 1");
    }
    if (!Number.isInteger(this.maxIdLength) || this.maxIdLength < 1) throw new RangeError("maxIdLength must be at least 1");
    this.maxTombstones = options.maxTombstones ?? DEFAULT_MAX_TOMBSTONES;
    if (!Number.isInteger(this.maxTombstones) || this.maxTombstones < 0) {
      throw new RangeError("maxTombstones must be at least 0");
    }
    const skew = options.maxClockSkewMs === undefined ? DEFAULT_MAX_CLOCK_SKEW_MS : options.maxClockSkewMs;
    this.horizon = new Horizon(skew, options.clock ?? Date.now);
  }

  /** Apply one wire envelope and say what happened. Throws `EventError` for malformed input,
   * before anything changes. */
  apply(envelope: unknown): Outcome {
    const ev = parseEvent(envelope, this.maxIdLength);
    let thread = this.threads.get(ev.thread_id);
    if (thread === undefined) {
      const tomb = this.tombstones.get(ev.thread_id);
      const fresh = freshSession(ev.thread_id, ev.provider);
      // A redelivery from before the delete: the thread stays deleted.
      if (tomb !== undefined && tomb.seen.has(ev.event_id)) return unapplied("duplicate", null, ev, fresh);
      thread = new Thread(fresh, this.maxEventIds, this.maxFinishedTurns);
      if (tomb !== undefined) {
        // A new event: the thread starts anew, and still knows the ids it saw before.
        this.tombstones.delete(ev.thread_id);
        for (const id of tomb.seen.toArray()) thread.seen.add(id);
      }
      this.threads.set(ev.thread_id, thread);
    }
    const outcome = apply(thread, ev, this.horizon);
    if (outcome.kind === "forgotten") {
      this.threads.delete(ev.thread_id);
      this.bury(ev.thread_id, thread);
    }
    return outcome;
  }

  private bury(threadId: string, thread: Thread): void {
    if (this.maxTombstones === 0) return;
    this.tombstones.delete(threadId);
    this.tombstones.set(threadId, thread);
    while (this.tombstones.size > this.maxTombstones) this.tombstones.delete(this.tombstones.keys().next().value!);
  }

  /** `apply` for one JSON line (`EventError("line")` when it is not JSON). */
  applyLine(line: string): Outcome {
    return this.apply(parseLine(line));
  }

  get(threadId: string): Session | undefined {
    return this.threads.get(threadId)?.session;
  }

  sessions(): Map<string, Session> {
    return new Map([...this.threads].map(([id, thread]) => [id, thread.session]));
  }

  /** The thread's remembered finished turns, oldest first. */
  finishedTurns(threadId: string): string[] {
    return this.threads.get(threadId)?.finished.toArray() ?? [];
  }

  /** The thread's de-duplication memory (the eventIds themselves), oldest first. */
  seenEventIds(threadId: string): string[] {
    return this.threads.get(threadId)?.seen.toArray() ?? [];
  }

  hasSeen(threadId: string, eventId: string): boolean {
    return this.threads.get(threadId)?.seen.has(eventId) ?? false;
  }

  /** Put a session in place as is (restoring from your own storage, tests). */
  seed(session: Session, options: SeedOptions = {}): void {
    if (!STATUS_SET.has(session.status)) throw new EventError("status", `unknown status ${JSON.stringify(session.status)}`);
    session = withOpenRequests(session);
    let thread: Thread;
    try {
      thread = new Thread(session, this.maxEventIds, this.maxFinishedTurns);
    } catch {
      throw new EventError("updatedAt", `not an ISO 8601 timestamp: ${JSON.stringify(String(session.updatedAt).slice(0, 64))}`);
    }
    for (const turn of options.finishedTurns ?? []) thread.finished.add(turn);
    for (const id of options.seenEventIds ?? []) thread.seen.add(id);
    this.threads.set(session.threadId, thread);
  }
}

/** A stored session whose open requests every step can read: one stored before sessions carried
 * them has none; a list of anything but {requestId, kind} is refused before it is put in place. */
function withOpenRequests(session: Session): Session {
  const requests: unknown = (session as { readonly openRequests?: unknown }).openRequests;
  if (requests === undefined) return { ...session, openRequests: [] };
  if (!Array.isArray(requests) || !requests.every(isOpenRequest)) {
    throw new EventError("openRequests", "must be a list of {requestId, kind}: a string, an integer or null, and a string");
  }
  return session;
}

function isOpenRequest(request: unknown): boolean {
  if (!isObject(request) || typeof request["kind"] !== "string") return false;
  const id = request["requestId"];
  return id === null || typeof id === "string" || Number.isSafeInteger(id);
}

// -- building sessions in the steps ------------------------------------------------------------------

function pendingOf(pend: string | null): PendingTurn | null {
  return pend === null ? null : { turnId: pend === "" ? null : pend };
}

function pendOf(session: Session): string | null {
  return session.pendingTurn === null ? null : (session.pendingTurn.turnId ?? "");
}

/** The open requests as the renderings hold them (the Python slot's shape): [requestId, kind]
 * pairs, oldest first. */
function reqOf(session: Session): readonly (readonly [RequestId, string])[] {
  return session.openRequests.map((r) => [r.requestId, r.kind] as const);
}

function requestsOf(req: readonly (readonly [RequestId, string])[]): readonly OpenRequest[] {
  return req.map(([requestId, kind]) => ({ requestId, kind }));
}

function sessionAfter(
  s: Session, status: Status, providerName: string | null, activeTurnId: string | null, lastError: string | null,
  updatedAt: string | null, pendingTurn: PendingTurn | null, awaiting: string | null,
  openRequests: readonly OpenRequest[],
): Session {
  const after: { -readonly [K in keyof Session]: Session[K] } = {
    threadId: s.threadId, status, providerName, activeTurnId, lastError, updatedAt, pendingTurn, awaiting,
    openRequests,
  };
  if (s.providerInstanceId !== undefined) after.providerInstanceId = s.providerInstanceId;
  if (s.runtimeMode !== undefined) after.runtimeMode = s.runtimeMode;
  return after;
}

function applied(ev: ParsedEvent, before: Session, after: Session, transition: number): Outcome {
  return { kind: "applied", reason: null, eventId: ev.event_id, threadId: ev.thread_id, type: ev.type, session: after, before, transition };
}

function rejected(ev: ParsedEvent, session: Session, reason: RejectionReason): Outcome {
  return unapplied("rejected", reason, ev, session);
}
