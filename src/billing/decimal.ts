/**
 * Exact rational arithmetic on bigints for money, rates, sizes and hours. Billing never uses
 * binary floating point: every value is a reduced fraction `numerator / denominator`, and
 * rounding happens once, explicitly, with {@link Rational.format}.
 * @module
 */
import { InstanceImagesError } from '../errors';

/** Longest text {@link Rational.parse} accepts (a guard against pathological input). */
const MAX_TEXT_LENGTH = 400;
const DECIMAL_PATTERN = /^(-)?(\d+)(?:\.(\d+))?$/;
const FRACTION_PATTERN = /^(-)?(\d+)\/(\d+)$/;

function gcd(a: bigint, b: bigint): bigint {
  let x = a < 0n ? -a : a;
  let y = b < 0n ? -b : b;
  while (y !== 0n) {
    const r = x % y;
    x = y;
    y = r;
  }
  return x;
}

function toBigInt(value: bigint | number, what: string): bigint {
  if (typeof value === 'bigint') return value;
  if (!Number.isSafeInteger(value)) {
    throw new InstanceImagesError('VALIDATION_FAILED', `${what} must be a safe integer to be used in exact arithmetic`, {
      fields: [{ path: what, message: 'must be a safe integer' }],
    });
  }
  return BigInt(value);
}

function invalidNumber(text: string): InstanceImagesError {
  const shown = text.length > 40 ? `${text.slice(0, 40)}…` : text;
  return new InstanceImagesError('VALIDATION_FAILED', `${JSON.stringify(shown)} is not a decimal like "0.05" or a fraction like "51/730"`, {
    fields: [{ path: 'value', message: 'must be a decimal or a fraction' }],
  });
}

/** 10^n as a bigint. */
export function powerOfTen(n: number): bigint {
  return 10n ** BigInt(n);
}

/**
 * An exact rational number, always reduced, with a positive denominator. Immutable.
 *
 * @example
 * ```ts
 * const hourly = Rational.parse('0.05').times(Rational.of(20)).dividedBy(Rational.of(730));
 * hourly.times(Rational.of(51)).toString(); // "51/730"
 * hourly.times(Rational.of(51)).format(2);  // "0.07"
 * ```
 */
export class Rational {
  /** The reduced numerator (carries the sign). */
  readonly numerator: bigint;
  /** The reduced denominator, always positive. */
  readonly denominator: bigint;

  private constructor(numerator: bigint, denominator: bigint) {
    this.numerator = numerator;
    this.denominator = denominator;
  }

  /** Zero. */
  static readonly ZERO: Rational = new Rational(0n, 1n);
  /** One. */
  static readonly ONE: Rational = new Rational(1n, 1n);

  /**
   * The fraction `numerator / denominator`, reduced. Numbers must be safe integers.
   * @throws VALIDATION_FAILED when the denominator is zero or a number is not a safe integer.
   */
  static of(numerator: bigint | number, denominator: bigint | number = 1n): Rational {
    let n = toBigInt(numerator, 'numerator');
    let d = toBigInt(denominator, 'denominator');
    if (d === 0n) throw new InstanceImagesError('VALIDATION_FAILED', 'Division by zero in an exact calculation');
    if (d < 0n) {
      n = -n;
      d = -d;
    }
    if (d === 1n) return new Rational(n, 1n);
    const g = gcd(n, d);
    return g === 1n ? new Rational(n, d) : new Rational(n / g, d / g);
  }

  /**
   * Parses a decimal (`"12"`, `"0.0125"`, `"-1.5"`) or a fraction (`"51/730"`, as printed by
   * {@link Rational.toString}). No exponents, no spaces, no binary floating point involved.
   * @throws VALIDATION_FAILED when the text is neither.
   */
  static parse(text: string): Rational {
    if (typeof text !== 'string' || text.length === 0 || text.length > MAX_TEXT_LENGTH) throw invalidNumber(String(text));
    const decimal = DECIMAL_PATTERN.exec(text);
    if (decimal) {
      const [, sign, whole = '0', fraction = ''] = decimal;
      const digits = BigInt(whole + fraction);
      return Rational.of(sign ? -digits : digits, powerOfTen(fraction.length));
    }
    const fraction = FRACTION_PATTERN.exec(text);
    if (fraction) {
      const [, sign, num = '0', den = '1'] = fraction;
      if (BigInt(den) === 0n) throw invalidNumber(text);
      const n = BigInt(num);
      return Rational.of(sign ? -n : n, BigInt(den));
    }
    throw invalidNumber(text);
  }

  /** `this + other`. */
  plus(other: Rational): Rational {
    if (this.denominator === other.denominator) return Rational.of(this.numerator + other.numerator, this.denominator);
    return Rational.of(this.numerator * other.denominator + other.numerator * this.denominator, this.denominator * other.denominator);
  }

  /** `this - other`. */
  minus(other: Rational): Rational {
    return this.plus(other.negated());
  }

  /** `this × other`. */
  times(other: Rational): Rational {
    return Rational.of(this.numerator * other.numerator, this.denominator * other.denominator);
  }

  /**
   * `this ÷ other`.
   * @throws VALIDATION_FAILED when `other` is zero.
   */
  dividedBy(other: Rational): Rational {
    return Rational.of(this.numerator * other.denominator, this.denominator * other.numerator);
  }

  /** `-this`. */
  negated(): Rational {
    return new Rational(-this.numerator, this.denominator);
  }

  /** -1, 0 or 1 as `this` is less than, equal to or greater than `other`. */
  compare(other: Rational): -1 | 0 | 1 {
    const left = this.numerator * other.denominator;
    const right = other.numerator * this.denominator;
    return left < right ? -1 : left > right ? 1 : 0;
  }

  /** Whether the two values are equal. */
  equals(other: Rational): boolean {
    return this.numerator === other.numerator && this.denominator === other.denominator;
  }

  /** Whether the value is zero. */
  isZero(): boolean {
    return this.numerator === 0n;
  }

  /** Whether the value is below zero. */
  isNegative(): boolean {
    return this.numerator < 0n;
  }

  /** The smaller of `this` and `other`. */
  min(other: Rational): Rational {
    return this.compare(other) <= 0 ? this : other;
  }

  /** The larger of `this` and `other`. */
  max(other: Rational): Rational {
    return this.compare(other) >= 0 ? this : other;
  }

  /** The largest integer not above the value. */
  floor(): bigint {
    const q = this.numerator / this.denominator;
    return this.numerator < 0n && q * this.denominator !== this.numerator ? q - 1n : q;
  }

  /** The smallest integer not below the value. */
  ceil(): bigint {
    const q = this.numerator / this.denominator;
    return this.numerator > 0n && q * this.denominator !== this.numerator ? q + 1n : q;
  }

  /**
   * The value rounded half-up (ties away from zero) to `decimals` decimal places, as a
   * {@link Rational} whose denominator divides 10^decimals.
   */
  roundHalfUp(decimals: number): Rational {
    return Rational.of(this.scaledHalfUp(decimals), powerOfTen(decimals));
  }

  /**
   * The value rounded half-up (ties away from zero) to exactly `decimals` places, as a decimal
   * string: `Rational.parse("51/730").format(2) === "0.07"`, `Rational.of(1).format(2) === "1.00"`.
   */
  format(decimals: number): string {
    if (!Number.isInteger(decimals) || decimals < 0) {
      throw new InstanceImagesError('VALIDATION_FAILED', 'The number of decimals must be a non-negative integer', {
        fields: [{ path: 'decimals', message: 'must be a non-negative integer' }],
      });
    }
    const scaled = this.scaledHalfUp(decimals);
    const negative = scaled < 0n;
    const digits = (negative ? -scaled : scaled).toString().padStart(decimals + 1, '0');
    const whole = digits.slice(0, digits.length - decimals);
    const fraction = digits.slice(digits.length - decimals);
    return `${negative ? '-' : ''}${whole}${decimals > 0 ? `.${fraction}` : ''}`;
  }

  /**
   * Like {@link Rational.format}, at most `maxDecimals` places, without trailing zeros:
   * `Rational.parse("50.25").toDecimalString(6) === "50.25"`.
   */
  toDecimalString(maxDecimals: number): string {
    const text = this.format(maxDecimals);
    if (!text.includes('.')) return text;
    const trimmed = text.replace(/0+$/, '').replace(/\.$/, '');
    return trimmed === '-0' ? '0' : trimmed;
  }

  /** The number of decimal places of the value's exact decimal form, or `null` when it does not terminate. */
  terminatingDecimals(): number | null {
    let d = this.denominator;
    let twos = 0;
    let fives = 0;
    while (d % 2n === 0n) {
      d /= 2n;
      twos += 1;
    }
    while (d % 5n === 0n) {
      d /= 5n;
      fives += 1;
    }
    return d === 1n ? Math.max(twos, fives) : null;
  }

  /**
   * The exact value as text: a decimal when it terminates (`"0.0125"`, `"20"`), otherwise the
   * reduced fraction (`"51/730"`). {@link Rational.parse} reads both back.
   */
  toString(): string {
    const decimals = this.terminatingDecimals();
    return decimals === null ? `${this.numerator}/${this.denominator}` : this.format(decimals);
  }

  /** JSON form: the same as {@link Rational.toString}. */
  toJSON(): string {
    return this.toString();
  }

  private scaledHalfUp(decimals: number): bigint {
    const scaled = this.numerator * powerOfTen(decimals);
    const negative = scaled < 0n;
    const magnitude = negative ? -scaled : scaled;
    let q = magnitude / this.denominator;
    const remainder = magnitude - q * this.denominator;
    if (remainder * 2n >= this.denominator) q += 1n;
    return negative ? -q : q;
  }
}
