/**
 * The string helpers of the fast row decoder against the zongji code they
 * replace (common.js zeroPad, parseNewDecimal's leading-zero regex), over
 * ordinary and odd inputs; the decoder as a whole is compared with zongji
 * on a real binlog in test/integration/replication/mysql-rows-decoder.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { stripZeros, zeroPad } from '../../../../src/replication/capture/mysql-rows-decoder.ts';

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
});
