/**
 * Exact decimal arithmetic for SUM/AVG upkeep: a value is a BigInt scaled by
 * 10^scale. Sources hand exact numerics over as strings ("12.340"); adding
 * and subtracting them as floats would drift from what the source computes
 * after a few thousand changes.
 */
export interface Decimal { units: bigint; scale: number }

const DEC_RE = /^([+-])?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

export const ZERO: Decimal = { units: 0n, scale: 0 };

/** Parse a number or decimal text; undefined when it is not a finite decimal. */
export function parseDecimal(v: string | number | bigint): Decimal | undefined {
  if (typeof v === 'bigint') return { units: v, scale: 0 };
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return undefined;
    if (Number.isSafeInteger(v)) return { units: BigInt(v), scale: 0 };
    v = String(v);
  }
  const m = DEC_RE.exec(v.trim());
  if (!m || (!m[2] && !m[3])) return undefined;
  const frac = m[3] ?? '';
  let units = BigInt((m[2] || '0') + frac);
  let scale = frac.length;
  const exp = m[4] ? Number(m[4]) : 0;
  if (exp > 0) { if (exp >= scale) { units *= 10n ** BigInt(exp - scale); scale = 0; } else scale -= exp; }
  else if (exp < 0) scale -= exp;
  if (m[1] === '-') units = -units;
  return { units, scale };
}

function align(a: Decimal, b: Decimal): [bigint, bigint, number] {
  if (a.scale === b.scale) return [a.units, b.units, a.scale];
  if (a.scale > b.scale) return [a.units, b.units * 10n ** BigInt(a.scale - b.scale), a.scale];
  return [a.units * 10n ** BigInt(b.scale - a.scale), b.units, b.scale];
}

export function addDecimal(a: Decimal, b: Decimal): Decimal {
  const [x, y, scale] = align(a, b);
  return { units: x + y, scale };
}

export function subDecimal(a: Decimal, b: Decimal): Decimal {
  const [x, y, scale] = align(a, b);
  return { units: x - y, scale };
}

export function compareDecimal(a: Decimal, b: Decimal): number {
  const [x, y] = align(a, b);
  return x === y ? 0 : x < y ? -1 : 1;
}

/** `a / n` rounded half away from zero to `scale` digits. */
export function divideDecimal(a: Decimal, n: bigint, scale: number): Decimal {
  const num = scale >= a.scale ? a.units * 10n ** BigInt(scale - a.scale) : a.units;
  const den = scale >= a.scale ? n : n * 10n ** BigInt(a.scale - scale);
  let q = num / den;
  const r = num % den;
  if (r !== 0n && (r < 0n ? -r : r) * 2n >= (den < 0n ? -den : den)) q += (num < 0n) !== (den < 0n) ? -1n : 1n;
  return { units: q, scale };
}

export function decimalToString(d: Decimal): string {
  const neg = d.units < 0n;
  let digits = (neg ? -d.units : d.units).toString();
  if (d.scale === 0) return (neg ? '-' : '') + digits;
  digits = digits.padStart(d.scale + 1, '0');
  return `${neg ? '-' : ''}${digits.slice(0, -d.scale)}.${digits.slice(-d.scale)}`;
}
