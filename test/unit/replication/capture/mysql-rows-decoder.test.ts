/**
 * The string helpers of the fast row decoder against the zongji code they
 * replace (common.js zeroPad, parseNewDecimal's leading-zero regex), over
 * ordinary and odd inputs; the decoder as a whole is compared with zongji
 * on a real binlog in test/integration/replication/mysql-rows-decoder.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { decimalAt, decimalText, stripZeros, zeroPad } from '../../../../src/replication/capture/mysql-rows-decoder.ts';

const zongjiZeroPad = (num: number | string, size: number): string => {
  const s = '00000000000000000000000000000000' + num;
  return s.substr(s.length - size);
};

describe('fast row decoder helpers', () => {
  it('zeroPad is zongji zeroPad', () => {
    const nums: (number | string)[] = [0, 1, 9, 10, 99, 100, 999, 1000, 9999, 10000, 32767, 123456789, 999999999, -1, -12, 0.5, 12.5, '7', '', 'abc', 2 ** 53, 1e21];
    for (let i = 0; i < 2000; i++) nums.push(Math.floor(Math.random() * 10 ** Math.floor(Math.random() * 12)));
    for (const n of nums) for (const size of [0, 1, 2, 3, 4, 6, 9, 20, 32, 33, 40]) expect(zeroPad(n, size), `${n}/${size}`).toBe(zongjiZeroPad(n, size));
  });

  it('stripZeros is the /^0+(?=\\d)/ replace', () => {
    const cases = ['', '0', '00', '000', '1', '01', '001', '0000000001', '100', '0-5', '00-5', '0a', '00a', '-0', '000000000123456789', '10', '0010'];
    const digits = '0000123-a';
    for (let i = 0; i < 3000; i++) cases.push(Array.from({ length: Math.floor(Math.random() * 8) }, () => digits[Math.floor(Math.random() * digits.length)]).join(''));
    for (const c of cases) expect(stripZeros(c), JSON.stringify(c)).toBe(c.replace(/^0+(?=\d)/, ''));
  });

  it('NEWDECIMAL text written digit by digit is the string way\'s, for values MariaDB writes and for any bytes', () => {
    const DIG2BYTES = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
    const digits = (n: number): string => Array.from({ length: n }, () => String(Math.floor(Math.random() * 10))).join('');
    let checked = 0;
    for (let round = 0; round < 4000; round++) {
      const precision = 1 + Math.floor(Math.random() * 65);
      const scale = Math.floor(Math.random() * (Math.min(precision, 30) + 1));
      const intg = precision - scale;
      const layout = { a: scale, b: Math.floor(intg / 9), c: intg % 9, d: Math.floor(scale / 9), e: scale % 9 };
      // A value MariaDB writes: digits in groups, big-endian, the sign bit set for >= 0 and every byte inverted for < 0.
      const intText = round % 7 === 0 ? '0'.repeat(intg) : digits(intg);
      const fracText = round % 11 === 0 ? '0'.repeat(scale) : digits(scale);
      const negative = round % 3 === 0;
      const groups: [string, number][] = [];
      if (layout.c > 0) groups.push([intText.slice(0, layout.c), DIG2BYTES[layout.c]!]);
      for (let i = 0; i < layout.b; i++) groups.push([intText.slice(layout.c + i * 9, layout.c + i * 9 + 9), 4]);
      for (let i = 0; i < layout.d; i++) groups.push([fracText.slice(i * 9, i * 9 + 9), 4]);
      if (layout.e > 0) groups.push([fracText.slice(layout.d * 9), DIG2BYTES[layout.e]!]);
      const bytes: number[] = [];
      for (const [text, width] of groups) {
        const v = Number(text || '0');
        for (let k = width - 1; k >= 0; k--) bytes.push(Math.floor(v / 256 ** k) % 256);
      }
      if (bytes.length === 0) continue;
      bytes[0] = bytes[0]! | 0x80;
      const buf = Buffer.from(negative ? bytes.map((b) => b ^ 0xff) : bytes);
      const framed = Buffer.concat([Buffer.from([7, 7]), buf, Buffer.from([9])]);
      expect(decimalAt(framed, 2, layout), `${precision},${scale} ${buf.toString('hex')}`).toBe(decimalText(framed, 2, layout));
      // Any bytes (a group out of its range takes the string way).
      const noise = Buffer.from(Array.from({ length: buf.length + 3 }, () => Math.floor(Math.random() * 256)));
      expect(decimalAt(noise, 1, layout), `${precision},${scale} ${noise.toString('hex')}`).toBe(decimalText(noise, 1, layout));
      checked++;
    }
    expect(checked).toBeGreaterThan(3000);
    // The bench table's DECIMAL(12,2): 12345.67 and -0.05.
    const d122 = { a: 2, b: 1, c: 1, d: 0, e: 2 };
    expect(decimalAt(Buffer.from([0x80, 0x00, 0x00, 0x30, 0x39, 0x43]), 0, d122)).toBe('12345.67');
    expect(decimalAt(Buffer.from([0x80, 0x00, 0x00, 0x00, 0x00, 0x05].map((b, i) => (i === 0 ? b : b) ^ 0xff)), 0, d122)).toBe('-0.05');
  });
});
