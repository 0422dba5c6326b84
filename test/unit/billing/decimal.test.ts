import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Rational } from '../../../src/billing/decimal';
import { isInstanceImagesError } from '../../../src/errors';

describe('Rational', () => {
  it('parses decimals and fractions exactly and reduces them', () => {
    expect(Rational.parse('0.0125').toString()).toBe('0.0125');
    expect(Rational.parse('0.0125').numerator).toBe(1n);
    expect(Rational.parse('0.0125').denominator).toBe(80n);
    expect(Rational.parse('51/730').toString()).toBe('51/730');
    expect(Rational.parse('10/4').toString()).toBe('2.5');
    expect(Rational.parse('-1.50').toString()).toBe('-1.5');
    expect(Rational.parse('000').toString()).toBe('0');
    expect(Rational.parse('123456789012345678.123456789012345678').toString()).toBe('123456789012345678.123456789012345678');
  });

  it.each(['', '1e3', '0x10', '1.', '.5', ' 1', '1/0', 'NaN', '1,5', '--1', '1/2/3'])('rejects %j', (text) => {
    expect(() => Rational.parse(text)).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
  });

  it('does exact arithmetic where binary floating point does not', () => {
    const sum = Rational.parse('0.1').plus(Rational.parse('0.2'));
    expect(sum.equals(Rational.parse('0.3'))).toBe(true);
    expect(Rational.parse('0.05').times(Rational.of(20)).dividedBy(Rational.of(730)).times(Rational.of(51)).toString()).toBe('51/730');
    expect(Rational.of(1).minus(Rational.parse('0.3')).toString()).toBe('0.7');
    expect(Rational.of(3, -6).toString()).toBe('-0.5');
  });

  it('rejects a zero denominator and unsafe integers', () => {
    expect(() => Rational.of(1, 0)).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    expect(() => Rational.of(1).dividedBy(Rational.ZERO)).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    expect(() => Rational.of(0.5)).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    expect(() => Rational.of(2 ** 60)).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
  });

  it.each([
    ['51/730', 2, '0.07'],
    ['0.005', 2, '0.01'],
    ['0.0049999', 2, '0.00'],
    ['-0.005', 2, '-0.01'],
    ['-0.004', 2, '0.00'],
    ['1', 2, '1.00'],
    ['2.5', 0, '3'],
    ['1/3', 6, '0.333333'],
    ['2/3', 6, '0.666667'],
    ['12345.6789', 3, '12345.679'],
  ])('formats %s with %i decimals half-up as %s', (text, decimals, expected) => {
    expect(Rational.parse(text).format(decimals)).toBe(expected);
    expect(Rational.parse(text).roundHalfUp(decimals).equals(Rational.parse(expected))).toBe(true);
  });

  it('floors, ceils, compares and trims', () => {
    expect(Rational.parse('7/2').floor()).toBe(3n);
    expect(Rational.parse('7/2').ceil()).toBe(4n);
    expect(Rational.parse('-7/2').floor()).toBe(-4n);
    expect(Rational.parse('-7/2').ceil()).toBe(-3n);
    expect(Rational.of(4).ceil()).toBe(4n);
    expect(Rational.parse('0.1').compare(Rational.parse('1/10'))).toBe(0);
    expect(Rational.parse('0.1').compare(Rational.parse('1/9'))).toBe(-1);
    expect(Rational.parse('50.25').toDecimalString(6)).toBe('50.25');
    expect(Rational.parse('1/3').toDecimalString(6)).toBe('0.333333');
    expect(Rational.parse('-0.0000001').toDecimalString(6)).toBe('0');
    expect(Rational.parse('1/3').terminatingDecimals()).toBeNull();
    expect(Rational.parse('1/80').terminatingDecimals()).toBe(4);
    expect(JSON.stringify({ x: Rational.parse('51/730') })).toBe('{"x":"51/730"}');
  });

  it('rejects a bad decimals count with VALIDATION_FAILED', () => {
    try {
      Rational.ONE.format(-1);
      expect.unreachable();
    } catch (error) {
      expect(isInstanceImagesError(error, 'VALIDATION_FAILED')).toBe(true);
    }
  });

  it('round-trips through toString and parse, and sums agree with bigint arithmetic (property)', () => {
    const rational = fc
      .tuple(fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }), fc.bigInt({ min: 1n, max: 10n ** 20n }))
      .map(([n, d]) => Rational.of(n, d));
    fc.assert(
      fc.property(rational, rational, (a, b) => {
        expect(Rational.parse(a.toString()).equals(a)).toBe(true);
        const sum = a.plus(b);
        expect(sum.numerator * a.denominator * b.denominator).toBe(
          (a.numerator * b.denominator + b.numerator * a.denominator) * sum.denominator,
        );
        expect(
          a
            .times(b)
            .dividedBy(b.isZero() ? Rational.ONE : b)
            .equals(b.isZero() ? Rational.ZERO : a),
        ).toBe(true);
        // Rounding is within half a unit of the last place.
        const rounded = a.roundHalfUp(2);
        const error = rounded.minus(a);
        expect(error.compare(Rational.parse('0.005')) <= 0 && error.compare(Rational.parse('-0.005')) >= 0).toBe(true);
      }),
    );
  });
});
