// Publishes N room-targeted emits through the real @socket.io/redis-emitter
// 5.1.0 (node-redis 4 client, which pipelines the commands of one tick).
//   node emit.js N KEY
// The emitter is fire-and-forget; a final PING waits until Redis has
// processed every PUBLISH before the clock stops.
const { createClient } = require("redis");
const { Emitter } = require("@socket.io/redis-emitter");
(async () => {
  const n = Number(process.argv[2] || 200000), key = process.argv[3] || "bench";
  const c = createClient({ url: process.env.REDIS_URL || "redis://127.0.0.1:6379" });
  await c.connect();
  const e = new Emitter(c, { key });
  const room = e.to("bench");
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    room.emit("tick", { n: i });
    if (i % 10000 === 9999) await new Promise((r) => setImmediate(r)); // let the client flush
  }
  await c.ping();
  const s = Number(process.hrtime.bigint() - start) / 1e9;
  process.stdout.write(JSON.stringify({ contender: "node-redis-emitter", n, seconds: s, msgs_per_s: n / s }) + "\n");
  await c.quit();
})().catch((e) => { console.error(e); process.exit(1); });
