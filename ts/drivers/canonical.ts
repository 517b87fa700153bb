// Canonical JSON, byte for byte what Python's json.dumps(value, sort_keys=True,
// separators=(",", ":"), ensure_ascii=True) writes for the same value, so that the tests compare
// bytes. Keys sort by code point, as Python sorts them.

function escapeString(text: string): string {
  let out = '"';
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit === 0x22) out += '\\"';
    else if (unit === 0x5c) out += "\\\\";
    else if (unit === 0x0a) out += "\\n";
    else if (unit === 0x0d) out += "\\r";
    else if (unit === 0x09) out += "\\t";
    else if (unit === 0x08) out += "\\b";
    else if (unit === 0x0c) out += "\\f";
    else if (unit < 0x20 || unit > 0x7e) out += "\\u" + unit.toString(16).padStart(4, "0");
    else out += text[i];
  }
  return out + '"';
}

function isSurrogate(unit: number): boolean {
  return unit >= 0xd800 && unit <= 0xdfff;
}

/** Code point order without decoding: UTF-16 order differs from it only where a surrogate meets a
 * unit at or above U+E000 (the surrogate's code point is the larger). */
function byCodePoint(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (isSurrogate(x) !== isSurrogate(y)) return isSurrogate(x) ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

export function canonical(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") return JSON.stringify(value);
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "string") return escapeString(value);
  if (Array.isArray(value)) return "[" + value.map(canonical).join(",") + "]";
  if (value instanceof Map) return canonical(Object.fromEntries(value));
  const record = value as { [key: string]: unknown };
  const keys = Object.keys(record).filter((k) => record[k] !== undefined).sort(byCodePoint);
  return "{" + keys.map((k) => escapeString(k) + ":" + canonical(record[k])).join(",") + "}";
}
