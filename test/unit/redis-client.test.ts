/**
 * Redis Cluster settings: REDIS_CLUSTER_NODES parsing and errors (never
 * echoing an entry, which may hold a password), the key slot function
 * against values from the Redis Cluster specification, and how a cluster is
 * named in messages and legacy URLs.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.ts';
import { describeRedis, keySlot, redisAddressUrl } from '../../src/store/redis-client.ts';

describe('REDIS_CLUSTER_NODES', () => {
  it('is off by default and parses host:port, IPv6 and redis:// / rediss:// entries', () => {
    expect(loadConfig({}).redisClusterNodes).toBeUndefined();
    expect(loadConfig({ REDIS_CLUSTER_NODES: ' 10.0.0.1:7000, redis-1:7001 ,[::1]:7002' }).redisClusterNodes).toEqual([
      { host: '10.0.0.1', port: 7000, tls: false }, { host: 'redis-1', port: 7001, tls: false }, { host: '::1', port: 7002, tls: false },
    ]);
    expect(loadConfig({ REDIS_CLUSTER_NODES: 'rediss://app:p%40ss@r1:6380/0,r2:6380' }).redisClusterNodes).toEqual([
      { host: 'r1', port: 6380, tls: true, username: 'app', password: 'p@ss' }, { host: 'r2', port: 6380, tls: false },
    ]);
    expect(loadConfig({}, { redisClusterNodes: ['a:1', 'redis://b:2'] } as never).redisClusterNodes).toEqual([
      { host: 'a', port: 1, tls: false }, { host: 'b', port: 2, tls: false },
    ]);
  });

  it('refuses bad entries with one line naming the variable and the entry number, not its text', () => {
    const cases: [string, RegExp][] = [
      ['r1', /entry 1 is not host:port/],
      ['r1:7000,user:secret@r2:7001', /entry 2 is not host:port/],
      ['redis://:secret@r1', /entry 1 needs a host and a port/],
      ['redis://:secret@r1:7000/2', /entry 1 names a database: Redis Cluster has only database 0/],
    ];
    for (const [value, message] of cases) {
      let err: unknown;
      try { loadConfig({ REDIS_CLUSTER_NODES: value }); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(/^invalid configuration: REDIS_CLUSTER_NODES: /);
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).not.toContain('secret');
    }
  });

  it('names the cluster in messages and legacy URLs without credentials', () => {
    const c = loadConfig({ REDIS_CLUSTER_NODES: 'redis://:secret@r1:7000,r2:7001' });
    expect(describeRedis(c)).toBe('Redis Cluster at r1:7000,r2:7001');
    expect(redisAddressUrl(c)).toBe('redis://r1:7000/0');
    const single = loadConfig({ REDIS_URL: 'redis://:pw@h:6380/2' });
    expect(describeRedis(single)).toBe('Redis at h:6380');
    expect(redisAddressUrl(single)).toBe('redis://h:6380/2');
  });
});

describe('keySlot', () => {
  it('matches the Redis Cluster specification, hash tags included', () => {
    expect(keySlot('123456789')).toBe(0x31c3 % 16384); // the spec's CRC16 check value
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('{user1000}.following')).toBe(keySlot('user1000'));
    expect(keySlot('{user1000}.followers')).toBe(keySlot('{user1000}.following'));
    expect(keySlot('foo{}{bar}')).not.toBe(keySlot('bar')); // an empty first tag: the whole key is hashed
    expect(keySlot('foo{{bar}}zap')).toBe(keySlot('{bar'));
    expect(keySlot('foo{bar}{zap}')).toBe(keySlot('bar'));
  });
});
