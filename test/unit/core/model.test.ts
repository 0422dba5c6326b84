import { describe, expect, it } from 'vitest';
import { DecimalStringSchema, ImageSchema, NameSchema, LocationSettingsSchema } from '../../../src/model';
import { makeImage } from '../../../src/testing/fixtures';

describe('model schemas', () => {
  it('names are 1-100 characters, without control characters or leading/trailing whitespace (never trimmed)', () => {
    expect(NameSchema.parse('web 1')).toBe('web 1');
    for (const padded of ['  web-1  ', ' web-1', 'web-1 ', 'web-1\u00a0', '\u3000web-1']) {
      expect(NameSchema.safeParse(padded).error?.issues.map((i) => i.message)).toEqual([
        'must not start or end with whitespace (it is never trimmed)',
      ]);
    }
    expect(NameSchema.safeParse('').success).toBe(false);
    expect(NameSchema.safeParse('   ').success).toBe(false);
    expect(NameSchema.safeParse('a'.repeat(100)).success).toBe(true);
    expect(NameSchema.safeParse('a'.repeat(101)).success).toBe(false);
    expect(NameSchema.safeParse('bad\nname').success).toBe(false);
    expect(NameSchema.safeParse('bad\u0000name').success).toBe(false);
    expect(NameSchema.safeParse("prod; rm -rf / $(x) `y` 'z' ünïcødé").success).toBe(true);
  });

  it('decimal strings are exact non-negative decimals', () => {
    for (const ok of ['0', '0.05', '0.0125', '12', '1000000.123456']) expect(DecimalStringSchema.safeParse(ok).success).toBe(true);
    for (const bad of ['-1', '1e3', '.5', '0.', 'NaN', ' 1', '1,5']) expect(DecimalStringSchema.safeParse(bad).success).toBe(false);
  });

  it('a fixture image is a valid image and defaults fill optional fields', () => {
    expect(ImageSchema.parse(makeImage())).toEqual(
      makeImage({ id: expect.any(String) as unknown as string, fileKey: expect.any(String) as unknown as string }),
    );
    const minimal = ImageSchema.parse({
      id: 'i',
      kind: 'custom',
      name: 'n',
      storageId: 's',
      fileKey: 'k',
      status: 'creating',
      createdAt: new Date(),
      updatedAt: new Date(),
    });
    expect(minimal.format).toBe('qcow2');
    expect(minimal.sizeBytes).toBeNull();
  });

  it('location settings default to disabled with price "0"', () => {
    const settings = LocationSettingsSchema.parse({ locationId: 'l', updatedAt: new Date() });
    expect(settings).toMatchObject({ imagesEnabled: false, pricePerGbMonth: '0', currency: 'USD', defaultImageLimit: null });
  });
});
