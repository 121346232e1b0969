// Publishes a fixed set of messages with the real @socket.io/redis-emitter,
// for the reverse-decoding test.   node emit.js KEY
const { createClient } = require("redis");
const { Emitter } = require("@socket.io/redis-emitter");
(async () => {
  const c = createClient({ url: "redis://127.0.0.1:6379" });
  await c.connect();
  const e = new Emitter(c, { key: process.argv[2] });
  e.of("/admin").to(["r1", "r2"]).except("sid9").emit("multi", "a", 1, Buffer.from([0, 255]), { k: [1.5, null, true] });
  e.to("room1").volatile.emit("one", { u: "é😀" });
  e.in("room1").socketsJoin("room2");
  e.in("room1").disconnectSockets(true);
  e.serverSideEmit("ping", 1);
  await new Promise((r) => setTimeout(r, 100));
  await c.quit();
})().catch((err) => { console.error(err); process.exit(1); });
