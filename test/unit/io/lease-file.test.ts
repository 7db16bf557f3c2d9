// Exclusive leases on real files: one winner among concurrent takers, a heartbeat that keeps a lease alive, stale
// leases taken over by exactly one contender, and an owner that learns it lost its lease.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readLease, tryAcquireLease } from '../../../src/sidecar/io/lease-file';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('lease files', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'clipdrag-lease-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('one of many concurrent takers wins; the others see who holds it; release frees it', async () => {
    const file = path.join(dir, 'one.lock');
    const attempts = await Promise.all(Array.from({ length: 12 }, (_, i) => tryAcquireLease(file, { taker: i }, { staleAfterMs: 60_000 })));
    const winners = attempts.filter((a) => a.acquired);
    assert.equal(winners.length, 1);
    const lease = winners[0]!.acquired ? winners[0]!.lease : assert.fail();
    for (const attempt of attempts.filter((a) => !a.acquired)) {
      assert.equal(attempt.acquired ? '' : attempt.holder.owner?.token, lease.owner.token);
      assert.equal(attempt.acquired ? true : attempt.holder.stale, false);
    }
    assert.equal((await readLease(file, 60_000))?.owner?.pid, process.pid);
    await lease.release();
    assert.equal(await readLease(file, 60_000), undefined);
    assert.ok((await tryAcquireLease(file, {}, { staleAfterMs: 60_000 })).acquired);
  });

  it('a heartbeat keeps a lease fresh past the stale time', async () => {
    const file = path.join(dir, 'alive.lock');
    const first = await tryAcquireLease(file, {}, { staleAfterMs: 300, heartbeatMs: 50 });
    assert.ok(first.acquired);
    await sleep(700);
    const second = await tryAcquireLease(file, {}, { staleAfterMs: 300 });
    assert.equal(second.acquired, false);
    await first.lease.release();
  });

  it("a stale lease is taken over by exactly one of many contenders, and the old owner's release leaves the new lease alone", async () => {
    const file = path.join(dir, 'stale.lock');
    const old = await tryAcquireLease(file, { who: 'old' }, { staleAfterMs: 200, heartbeatMs: 60_000 });
    assert.ok(old.acquired);
    const past = new Date(Date.now() - 10_000);
    await utimes(file, past, past); // its heartbeat stopped long ago
    const attempts = await Promise.all(Array.from({ length: 12 }, () => tryAcquireLease(file, { who: 'new' }, { staleAfterMs: 200, heartbeatMs: 20 })));
    const winners = attempts.filter((a) => a.acquired);
    assert.equal(winners.length, 1);
    assert.deepEqual((await readdir(dir)).filter((name) => name.startsWith('stale')), ['stale.lock'], 'no takeover file left');
    await old.lease.release(); // must not delete the new owner's lease
    assert.equal((await readLease(file, 200))?.owner?.token, winners[0]!.acquired ? winners[0]!.lease.owner.token : '');
    await (winners[0]!.acquired ? winners[0]!.lease.release() : undefined);
  });

  it('an unreadable lease file is judged by its age', async () => {
    const file = path.join(dir, 'garbage.lock');
    await writeFile(file, 'not json');
    assert.equal((await tryAcquireLease(file, {}, { staleAfterMs: 60_000 })).acquired, false);
    const past = new Date(Date.now() - 120_000);
    await utimes(file, past, past);
    const taken = await tryAcquireLease(file, {}, { staleAfterMs: 60_000 });
    assert.ok(taken.acquired);
    await taken.lease.release();
  });
});
