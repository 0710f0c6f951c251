// libpeernet's C ABI from Node.js through koffi: lifecycle, every status code, bad
// arguments, callbacks from library threads, respond-later from a worker thread,
// re-entrancy, free_user_data once, freeing a node with calls in flight, 1,000
// concurrent async calls, events, RPC, logger.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { Worker } from 'node:worker_threads';

import koffi from 'koffi';

import {
  async, AuthorizeFn, bytesAt, CallFn, EVENT, EventFn, FreeFn, HandlerFn, keyAt, lastError,
  LIB_PATH, LOG, LogFn, PEER, pn, RpcFn, S, STATUS, statusName, waitFor,
} from '../peernet.mjs';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'peernet-node-'));
// Callbacks that koffi queues from library threads do not keep Node's event loop alive
// on their own; this timer does while the tests wait for them.
const keepAlive = setInterval(() => {}, 1000);
after(() => clearInterval(keepAlive));
const live = new Set();
after(async () => {
  for (const n of live) await async(pn.node_free, n);
  fs.rmSync(root, { recursive: true, force: true });
});

function config(name, { autoConnect = false } = {}) {
  const cfg = pn.config_new(path.join(root, name));
  assert.ok(cfg, lastError());
  assert.equal(pn.config_set_listen(cfg, '127.0.0.1:0'), S.OK);
  assert.equal(pn.config_set_heartbeat(cfg, 200, 2000), S.OK);
  assert.equal(pn.config_set_auto_connect(cfg, autoConnect), S.OK);
  return cfg;
}

function start(name, cfg = null) {
  const own = cfg === null;
  if (own) cfg = config(name);
  const out = [null];
  const s = pn.node_start(cfg, out);
  if (own) pn.config_free(cfg);
  assert.equal(s, S.OK, lastError());
  live.add(out[0]);
  return out[0];
}

async function free(node) {
  live.delete(node);
  await async(pn.node_free, node); // may wait for JS callbacks: keep the loop running
}

function keyOf(node) {
  const k = {};
  pn.node_key(node, k);
  return k;
}

const addrOf = (node) => `127.0.0.1:${pn.node_port(node)}`;

async function pair(prefix) {
  const a = start(`${prefix}-a`);
  const b = start(`${prefix}-b`);
  const ka = keyOf(a);
  const kb = keyOf(b);
  assert.equal(pn.trust(a, kb, 'b'), S.OK);
  assert.equal(pn.trust(b, ka, 'a'), S.OK);
  assert.equal(await async(pn.connect, a, kb, addrOf(b), 5000), S.OK, lastError());
  assert.equal(await async(pn.wait_connected, b, ka, 5000), S.OK);
  return { a, b, ka, kb };
}

/** A blocking peernet_call run on a koffi worker thread; resolves [status, Buffer]. */
async function call(node, key, name, body = Buffer.alloc(0), timeout = 5000) {
  const res = {};
  const s = await async(pn.call, node, key, name, body, body.length, timeout, res);
  const data = res.data ? bytesAt(res.data, res.len) : Buffer.alloc(0);
  pn.buffer_free(res);
  return [s, data];
}

const registered = [];
function register(fn, proto) {
  const cb = koffi.register(fn, koffi.pointer(proto));
  registered.push(cb);
  return cb;
}
after(() => registered.forEach((cb) => koffi.unregister(cb)));

const handler = (fn) =>
  register((ud, from, body, len, r) => fn(keyAt(from), bytesAt(body, len), r, ud), HandlerFn);
const ECHO = handler((_from, body, r) => {
  if (r) pn.respond(r, body, body.length);
});

// ------------------------------------------------------------------ basics

test('versions and status strings', () => {
  assert.equal(pn.version(), '0.1.0');
  const abiFile = new URL('../../../peernet-ffi/ABI_VERSION', import.meta.url);
  assert.equal(pn.abi_version(), Number(fs.readFileSync(abiFile, 'utf8').trim()));
  STATUS.forEach((name, i) => assert.equal(statusName(i), name));
  assert.equal(statusName(1234), 'PEERNET_ERR_UNKNOWN');
});

test('last error and the panic guard', () => {
  const k = {};
  assert.equal(pn.key_from_hex('zz', k), S.ERR_INVALID_ARGUMENT);
  assert.match(lastError(), /64 hex/);
  assert.equal(pn.selftest_panic(), S.ERR_INTERNAL);
  assert.match(lastError(), /deliberate panic/);
  assert.equal(pn.key_from_hex('ab'.repeat(32), k), S.OK);
  assert.equal(lastError(), '');
});

test('keys and bad input', () => {
  const hex = Buffer.from([...Array(32).keys()]).toString('hex');
  const k = {};
  assert.equal(pn.key_from_hex(hex, k), S.OK);
  assert.deepEqual([...k.bytes], [...Array(32).keys()]);
  const out = Buffer.alloc(65);
  pn.key_to_hex(k, out);
  assert.equal(out.toString('latin1', 0, 64), hex);
  const fp = Buffer.alloc(17);
  pn.key_fingerprint(k, fp);
  assert.match(fp.toString('latin1', 0, 16), /^[0-9a-f]{16}$/);
  assert.equal(pn.key_from_hex(null, k), S.ERR_INVALID_ARGUMENT);
  assert.equal(pn.key_from_hex(hex, null), S.ERR_INVALID_ARGUMENT);
  // invalid UTF-8 through a raw byte buffer
  const bad = Buffer.concat([Buffer.from([0xff]), Buffer.from('a'.repeat(63)), Buffer.from([0])]);
  const fromHexRaw = pn.key_from_hex; // const char * accepts a Buffer of bytes
  assert.equal(fromHexRaw(bad, k), S.ERR_INVALID_ARGUMENT);
  assert.match(lastError(), /UTF-8/);
});

test('config errors', () => {
  assert.equal(pn.config_new(null), null);
  assert.equal(pn.config_new(''), null);
  const cfg = pn.config_new(path.join(root, 'cfg'));
  assert.equal(pn.config_set_listen(cfg, 'bogus'), S.ERR_INVALID_ARGUMENT);
  assert.equal(pn.config_set_max_frame(cfg, 10), S.ERR_INVALID_ARGUMENT);
  assert.equal(pn.config_set_heartbeat(cfg, 0, 0), S.ERR_INVALID_ARGUMENT);
  assert.equal(pn.config_set_udp_discovery(cfg, 0, 0, 'x,y'), S.ERR_INVALID_ARGUMENT);
  assert.equal(pn.config_set_udp_discovery(cfg, 4999, 100, '127.255.255.255'), S.OK);
  assert.equal(pn.config_set_network_monitor(cfg, 250), S.OK);
  assert.equal(pn.config_set_handshake_timeout(cfg, 0), S.ERR_INVALID_ARGUMENT);
  pn.config_free(cfg);
  pn.config_free(null);
});

test('lifecycle', async () => {
  const out = [null];
  assert.equal(pn.node_start(null, out), S.ERR_INVALID_ARGUMENT);
  let a = start('life');
  assert.ok(pn.node_port(a) > 0);
  const k1 = keyOf(a);
  await free(a);
  a = start('life');
  assert.deepEqual(keyOf(a).bytes, k1.bytes);
  assert.equal(pn.trust(a, k1, null), S.ERR_INVALID_ARGUMENT); // itself
  await free(a);
  pn.node_free(null);
});

// ------------------------------------------------------------------ status codes

test('every status code', async () => {
  const { a, b, kb } = await pair('status');
  const stranger = {};
  pn.key_from_hex('11'.repeat(32), stranger);
  const c = start('status-c');
  const kc = keyOf(c);
  pn.trust(a, kc, null);
  assert.equal((await call(a, kc, 'echo'))[0], S.ERR_NOT_CONNECTED);
  assert.equal(await async(pn.connect, a, stranger, addrOf(b), 1000), S.ERR_UNTRUSTED_PEER);
  // IO: refused; listen address in use
  const tmp = net.createServer();
  await new Promise((r) => tmp.listen(0, '127.0.0.1', r));
  const freePort = tmp.address().port;
  await new Promise((r) => tmp.close(r));
  assert.equal(await async(pn.connect, a, kc, `127.0.0.1:${freePort}`, 2000), S.ERR_IO);
  let cfg = config('status-io');
  pn.config_set_listen(cfg, addrOf(b));
  assert.equal(pn.node_start(cfg, [null]), S.ERR_IO);
  pn.config_free(cfg);
  // HANDSHAKE_FAILED: a server that never speaks; TIMEOUT: a shorter deadline
  const mute = net.createServer(() => {});
  await new Promise((r) => mute.listen(0, '127.0.0.1', r));
  cfg = config('status-hs');
  pn.config_set_handshake_timeout(cfg, 300);
  const h = start('status-hs', cfg);
  pn.config_free(cfg);
  pn.trust(h, stranger, null);
  const maddr = `127.0.0.1:${mute.address().port}`;
  assert.equal(await async(pn.connect, h, stranger, maddr, 3000), S.ERR_HANDSHAKE_FAILED);
  assert.equal(await async(pn.connect, h, stranger, maddr, 100), S.ERR_TIMEOUT);
  mute.close();
  // CORRUPT_FILE
  const dir = path.join(root, 'corrupt');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'trusted_peers'), 'garbage\n');
  cfg = pn.config_new(dir);
  assert.equal(pn.node_start(cfg, [null]), S.ERR_CORRUPT_FILE);
  pn.config_free(cfg);
  // handler outcomes
  assert.equal(pn.expose(b, 'echo', ECHO, null, null, null), S.OK);
  assert.equal(pn.expose(b, 'echo', ECHO, null, null, null), S.ERR_ALREADY_EXISTS);
  const deny = register(() => false, AuthorizeFn);
  pn.expose(b, 'fail', handler((f, body, r) => pn.respond_error(r, 'nope')), null, null, null);
  pn.expose(b, 'deny', ECHO, deny, null, null);
  assert.equal((await call(a, kb, 'missing'))[0], S.ERR_NO_SUCH_HANDLER);
  assert.equal((await call(a, kb, 'deny'))[0], S.ERR_FORBIDDEN);
  const [fs_, text] = await call(a, kb, 'fail');
  assert.equal(fs_, S.ERR_HANDLER_FAILED);
  assert.equal(text.toString(), 'nope');
  assert.equal((await call(a, kb, 'echo', Buffer.alloc(2 << 20)))[0], S.ERR_PAYLOAD_TOO_LARGE);
  assert.equal((await call(a, kb, 'echo', Buffer.from('up')))[1].toString(), 'up');
  // TIMEOUT on an unanswered call; CLOSED when the callee is freed
  const held = [];
  pn.expose(b, 'hold', handler((f, body, r) => held.push(r)), null, null, null);
  assert.equal((await call(a, kb, 'hold', Buffer.alloc(0), 200))[0], S.ERR_TIMEOUT);
  const pending = call(a, kb, 'hold', Buffer.alloc(0), 10000);
  assert.ok(await waitFor(() => held.length === 2));
  await free(b);
  assert.equal((await pending)[0], S.ERR_CLOSED);
  assert.equal(pn.respond(held[0], Buffer.from('x'), 1), S.ERR_INVALID_ARGUMENT);
  await free(a);
  await free(c);
  await free(h);
  // OK, INVALID_ARGUMENT, INTERNAL, OVERLOADED: the other tests
});

test('overloaded', async () => {
  const cfg = config('ovl-b');
  pn.config_set_max_concurrent_calls(cfg, 1);
  const b = start('ovl-b', cfg);
  pn.config_free(cfg);
  const a = start('ovl-a');
  const [ka, kb] = [keyOf(a), keyOf(b)];
  pn.trust(a, kb, null);
  pn.trust(b, ka, null);
  assert.equal(await async(pn.connect, a, kb, addrOf(b), 5000), S.OK);
  const held = [];
  pn.expose(b, 'hold', handler((f, body, r) => held.push(r)), null, null, null);
  const first = call(a, kb, 'hold', Buffer.alloc(0), 10000);
  assert.ok(await waitFor(() => held.length === 1));
  assert.equal((await call(a, kb, 'hold'))[0], S.ERR_OVERLOADED);
  assert.equal(pn.respond(held[0], Buffer.from('ok'), 2), S.OK);
  assert.deepEqual(await first, [S.OK, Buffer.from('ok')]);
  await free(a);
  await free(b);
});

test('bad arguments', async () => {
  const { a, b, kb } = await pair('args');
  pn.expose(b, 'echo', ECHO, null, null, null);
  const statuses = [
    pn.expose(b, 'n'.repeat(300), ECHO, null, null, null),
    pn.expose(b, Buffer.from([0x65, 0xff, 0x6f, 0]), ECHO, null, null, null),
    pn.expose(b, '', ECHO, null, null, null),
    pn.expose(b, 'peernet.x', ECHO, null, null, null),
    pn.expose(b, 'x', null, null, null, null),
    pn.expose(null, 'x', ECHO, null, null, null),
    (await call(a, kb, 'n'.repeat(300)))[0],
    pn.call(a, kb, null, null, 0, 1000, {}),
    pn.call(a, null, 'echo', null, 0, 1000, {}),
    pn.call(null, kb, 'echo', null, 0, 1000, {}),
    pn.call(a, kb, 'echo', null, 5, 1000, {}),
    pn.send(a, kb, 'echo', null, 5),
    pn.call_async(a, kb, 'echo', null, 0, 1000, null, null),
    pn.connect(a, kb, 'nowhere', 1000),
    pn.respond(null, null, 0),
    pn.respond_error(null, 'x'),
    pn.peers(a, null, null),
    pn.next_event(a, 0, null),
    pn.set_logger(null, null, 99),
    pn.discovered(a, kb, 'bad'),
  ];
  assert.deepEqual(statuses, statuses.map(() => S.ERR_INVALID_ARGUMENT));
  assert.deepEqual(await call(a, kb, 'echo', Buffer.from('fine')), [S.OK, Buffer.from('fine')]);
  await free(a);
  await free(b);
});

// ------------------------------------------------------------------ callbacks

test('callbacks come from library threads; respond later from a worker thread', async () => {
  const { a, b, ka, kb } = await pair('later');
  const held = [];
  let from = null;
  pn.expose(b, 'later', handler((f, body, r) => { from = f; held.push(r); }), null, null, null);
  const pending = call(a, kb, 'later'); // the C call runs on a koffi worker thread
  assert.ok(await waitFor(() => held.length === 1)); // the handler ran while it was blocked
  assert.deepEqual(from.bytes, ka.bytes);
  // answer from another JS thread, which loads the library itself
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const koffi = require('koffi');
     const lib = koffi.load(workerData.lib);
     koffi.opaque('peernet_responder');
     const respond = lib.func('int32_t peernet_respond(peernet_responder *r, const uint8_t *d, size_t n)');
     const r = BigInt(workerData.responder);
     const first = respond(r, Buffer.from('from a worker'), 13);
     const second = respond(r, Buffer.from('again'), 5);
     parentPort.postMessage([first, second]);`,
    { eval: true, workerData: { lib: LIB_PATH, responder: held[0].toString() } },
  );
  const [first, second] = await new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  assert.equal(first, S.OK);
  assert.equal(second, S.ERR_INVALID_ARGUMENT); // answered twice: an error, not UB
  assert.deepEqual(await pending, [S.OK, Buffer.from('from a worker')]);
  await free(a);
  await free(b);
});

test('re-entrancy: library calls from inside a callback', async () => {
  const { a, b, ka, kb } = await pair('reentry');
  const inner = {};
  pn.expose(b, 'reenter', handler((f, body, r) => {
    // a blocking network round trip (no JS handler involved), peers, expose/revoke
    inner.call = pn.call(b, ka, 'nothing-here', null, 0, 5000, {});
    const out = [null];
    const count = [0];
    inner.peers = pn.peers(b, out, count);
    inner.count = Number(count[0]);
    pn.peers_free(out[0], count[0]);
    inner.expose = pn.expose(b, 'tmp', ECHO, null, null, null);
    inner.revoke = pn.revoke(b, 'tmp');
    inner.connected = pn.is_connected(b, ka);
    pn.respond(r, body, body.length);
  }), null, null, null);
  assert.deepEqual(await call(a, kb, 'reenter', Buffer.from('ping')), [S.OK, Buffer.from('ping')]);
  assert.deepEqual(inner, {
    call: S.ERR_NO_SUCH_HANDLER, peers: S.OK, count: 1, expose: S.OK, revoke: S.OK, connected: true,
  });
  await free(a);
  await free(b);
});

test('free_user_data runs exactly once', async () => {
  const { a, b, kb } = await pair('free');
  const freed = [];
  const freeFn = register((ud) => freed.push(Number(ud)), FreeFn);
  assert.equal(pn.expose(b, 'r', ECHO, null, 1n, freeFn), S.OK);
  assert.equal((await call(a, kb, 'r'))[0], S.OK);
  assert.equal(pn.revoke(b, 'r'), S.OK);
  assert.ok(await waitFor(() => freed.includes(1)));
  assert.equal(pn.expose(b, 'n', ECHO, null, 2n, freeFn), S.OK);
  assert.equal(pn.expose(b, 'n', ECHO, null, 3n, freeFn), S.ERR_ALREADY_EXISTS);
  const ev = register(() => {}, EventFn);
  const rpc = register(() => {}, RpcFn);
  assert.equal(pn.set_event_callback(b, ev, 4n, freeFn), S.OK);
  assert.equal(pn.set_event_callback(b, ev, 5n, freeFn), S.OK);
  assert.equal(pn.set_rpc_dispatcher(b, rpc, 6n, freeFn), S.OK);
  assert.equal(pn.set_rpc_dispatcher(b, rpc, 7n, freeFn), S.OK);
  assert.ok(await waitFor(() => freed.length === 3));
  assert.deepEqual([...freed].sort(), [1, 4, 6]);
  await free(b);
  assert.deepEqual([...freed].sort(), [1, 2, 4, 5, 6, 7]); // 3 never: expose failed
  await free(a);
});

// ------------------------------------------------------------------ async calls

test('1,000 concurrent async calls', async () => {
  const { a, b, kb } = await pair('async');
  pn.expose(b, 'echo', ECHO, null, null, null);
  const results = new Map();
  let resolveAll;
  const allDone = new Promise((r) => { resolveAll = r; });
  const done = register((ud, status, data, len) => {
    const i = Number(ud);
    results.set(i, [...(results.get(i) || []), [status, bytesAt(data, len).toString()]]);
    if (results.size === 1000) resolveAll();
  }, CallFn);
  for (let i = 1; i <= 1000; i++) {
    const body = Buffer.from(String(i));
    assert.equal(pn.call_async(a, kb, 'echo', body, body.length, 30000, done, BigInt(i)), S.OK);
  }
  await allDone;
  for (const [i, v] of results) assert.deepEqual(v, [[S.OK, String(i)]]);
  await free(a);
  await free(b);
});

test('freeing a node with 100 calls in flight', async () => {
  const { a, b, kb } = await pair('inflight');
  const held = [];
  pn.expose(b, 'hold', handler((f, body, r) => held.push(r)), null, null, null);
  const outcomes = [];
  const done = register((ud, status) => outcomes.push([Number(ud), status]), CallFn);
  for (let i = 1; i <= 100; i++) {
    assert.equal(pn.call_async(a, kb, 'hold', null, 0, 30000, done, BigInt(i)), S.OK);
  }
  assert.ok(await waitFor(() => held.length === 100));
  await free(a);
  // every completion ran exactly once, with CLOSED, before node_free returned
  assert.deepEqual(outcomes.map(([i]) => i).sort((x, y) => x - y), [...Array(100).keys()].map((i) => i + 1));
  assert.ok(outcomes.every(([, s]) => s === S.ERR_CLOSED));
  await free(b);
});

// ------------------------------------------------------------------ events, peers, rpc, logger

test('events, peers, manual discovery', async () => {
  const a = start('ev-a');
  const b = start('ev-b');
  const [ka, kb] = [keyOf(a), keyOf(b)];
  pn.trust(a, kb, 'bee');
  pn.trust(b, ka, null);
  const got = [];
  const cb = register((ud, kind, key, detail) => got.push([kind, keyAt(key), detail]), EventFn);
  assert.equal(pn.set_event_callback(a, cb, null, null), S.OK);
  const ev = {};
  assert.equal(pn.next_event(a, 0, ev), S.ERR_TIMEOUT);
  assert.equal(await async(pn.connect, a, kb, addrOf(b), 5000), S.OK);
  assert.equal(await async(pn.next_event, a, 5000, ev), S.OK);
  assert.equal(ev.kind, EVENT.CONNECTED);
  assert.ok(ev.has_key);
  assert.deepEqual(ev.key.bytes, kb.bytes);
  assert.equal(ev.detail, addrOf(b));
  assert.ok(await waitFor(() => got.some(([k]) => k === EVENT.CONNECTED)));
  const out = [null];
  const count = [0];
  assert.equal(pn.peers(a, out, count), S.OK);
  assert.equal(Number(count[0]), 1);
  const [p] = koffi.decode(out[0], 'peernet_peer_info', Number(count[0]));
  assert.deepEqual(p.key.bytes, kb.bytes);
  assert.equal(p.state, PEER.CONNECTED);
  assert.equal(p.trusted, true);
  assert.equal(p.rpc, false);
  assert.equal(p.label, 'bee');
  assert.equal(p.address, addrOf(b));
  pn.peers_free(out[0], count[0]);
  assert.equal(await async(pn.disconnect, a, kb), S.OK);
  assert.equal(await async(pn.next_event, a, 5000, ev), S.OK);
  assert.equal(ev.kind, EVENT.DISCONNECTED);
  assert.equal(ev.close_reason, 5); // PEERNET_CLOSE_LOCAL_DISCONNECT
  assert.equal(pn.discovered(a, kb, addrOf(b)), S.OK);
  assert.equal(await async(pn.next_event, a, 5000, ev), S.OK);
  assert.equal(ev.kind, EVENT.DISCOVERED);
  assert.equal(pn.lost(a, kb), S.OK);
  assert.equal(await async(pn.next_event, a, 5000, ev), S.OK);
  assert.equal(ev.kind, EVENT.LOST);
  await free(a);
  await free(b);
});

test('rpc', async () => {
  const { a, b, ka, kb } = await pair('rpc');
  const d = register((ud, from, module, fn, args, len, r) => {
    const out = Buffer.from(`${module}.${fn}(${bytesAt(args, len)})`);
    pn.respond(r, out, out.length);
  }, RpcFn);
  const args = Buffer.from('[1,2]');
  const call_ = (res) => async(pn.rpc_call, a, kb, 'math', 'add', args, args.length, 5000, res);
  assert.equal(await call_({}), S.ERR_FORBIDDEN);
  assert.equal(pn.grant_rpc(b, ka, true), S.OK);
  assert.equal(pn.set_rpc_dispatcher(b, d, null, null), S.OK);
  const res = {};
  assert.equal(await call_(res), S.OK);
  assert.equal(bytesAt(res.data, res.len).toString(), 'math.add([1,2])');
  pn.buffer_free(res);
  await free(a);
  await free(b);
});

test('logger', async () => {
  const records = [];
  const cb = register((ud, level, target, message) => records.push([level, target, message]), LogFn);
  assert.equal(pn.set_logger(cb, null, LOG.DEBUG), S.OK);
  await free(start('log'));
  assert.ok(await waitFor(() => records.length > 0));
  assert.equal(pn.set_logger(null, null, LOG.OFF), S.OK);
  assert.ok(records.every(([lvl, target]) => lvl >= LOG.ERROR && lvl <= LOG.DEBUG && target.length > 0));
});
