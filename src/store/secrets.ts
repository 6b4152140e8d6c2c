/**
 * Secrets at rest: AES-256-GCM with a key derived from TRIBUTARY_SECRET_KEY
 * (or a generated key file, created 0600 on first start). Ciphertext format:
 * "v1:<iv b64>:<tag b64>:<data b64>".
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export class SecretBox {
  private readonly key: Buffer;
  constructor(secret: string) {
    this.key = createHash('sha256').update(`tributary:${secret}`).digest();
  }

  encrypt(plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return `v1:${iv.toString('base64')}:${cipher.getAuthTag().toString('base64')}:${data.toString('base64')}`;
  }

  decrypt(box: string): string {
    const [v, iv, tag, data] = box.split(':');
    if (v !== 'v1' || !iv || !tag || data === undefined) throw new Error('secret is not in v1 format');
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64'));
    decipher.setAuthTag(Buffer.from(tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(data, 'base64')), decipher.final()]).toString('utf8');
  }
}

/** The configured key, or the key file's (created on first use). Returns whether it was generated. */
export function resolveSecretKey(configured: string | undefined, keyFile: string): { key: string; generated: boolean } {
  if (configured) return { key: configured, generated: false };
  if (existsSync(keyFile)) return { key: readFileSync(keyFile, 'utf8').trim(), generated: false };
  mkdirSync(path.dirname(keyFile), { recursive: true });
  const key = randomBytes(32).toString('base64url');
  writeFileSync(keyFile, key + '\n', { mode: 0o600 });
  return { key, generated: true };
}
