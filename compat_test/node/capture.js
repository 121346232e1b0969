// Captures the bytes that the real @socket.io/redis-emitter 5 and
// @socket.io/redis-adapter 8 (with socket.io 4.8 servers and a real
// socket.io-client) publish on Redis, for the node dialect's golden tests.
//
//   node capture.js > ../../dialect/node/testdata/node-golden.json
//
// Needs Redis on 127.0.0.1:6379. Every message is recorded from a
// PSUBSCRIBE on a scratch key prefix, so the bytes are exactly what went
// over Redis.
const { createClient } = require("redis");
const { Emitter } = require("@socket.io/redis-emitter");
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { io: ioc } = require("socket.io-client");

const KEY = "golden" + Math.random().toString(36).slice(2, 8);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const url = "redis://127.0.0.1:6379";
  const recorder = createClient({ url });
  await recorder.connect();
  let captured = [];
  await recorder.pSubscribe(KEY + "*", (message, channel) => {
    captured.push({ channel: channel.toString(), hex: Buffer.from(message).toString("hex") });
  }, true);

  const records = [];
  async function step(name, fn) {
    captured = [];
    await fn();
    await sleep(150);
    records.push({ name, messages: captured.map((m) => ({ channel: m.channel.replace(KEY, "socket.io"), hex: m.hex })) });
  }

  const pub = createClient({ url });
  await pub.connect();
  const emitter = new Emitter(pub, { key: KEY });

  await step("emitter to room1 hello {a:1}", () => emitter.to("room1").emit("hello", { a: 1 }));
  await step("emitter hello", () => emitter.emit("hello"));
  await step("emitter multi-arg binary unicode numbers", () =>
    emitter.emit("multi", "é😀", 1, -1, 255, 65536, 2 ** 32, -(2 ** 33), 1.5, true, null, Buffer.from([1, 2, 3]), { a: [1, { x: null }], b: 1, 2: 2 }));
  await step("emitter of /admin to room1 except r9 volatile compress false", () =>
    emitter.of("/admin").to("room1").except("r9").volatile.compress(false).emit("news", "x"));
  await step("emitter to two rooms", () => emitter.to(["r1", "r2"]).emit("two"));
  await step("emitter socketsJoin", () => emitter.in("room1").socketsJoin(["room2"]));
  await step("emitter socketsLeave", () => emitter.socketsLeave(["room2"]));
  await step("emitter disconnectSockets close", () => emitter.in("room1").except("r9").disconnectSockets(true));
  await step("emitter serverSideEmit", () => emitter.serverSideEmit("ping", { x: 1 }));

  // two real servers and a client: adapter traffic
  const servers = [];
  for (let i = 0; i < 2; i++) {
    const p = createClient({ url }), s = p.duplicate();
    await Promise.all([p.connect(), s.connect()]);
    const io = new Server({ adapter: createAdapter(p, s, { key: KEY }) });
    io.listen(0);
    servers.push({ io, p, s });
  }
  const port = servers[1].io.httpServer.address().port;
  const client = ioc("http://127.0.0.1:" + port, { transports: ["websocket"] });
  client.on("ask", (n, cb) => cb("answer:" + n));
  await new Promise((r) => client.on("connect", r));
  servers[1].io.sockets.sockets.forEach((s) => s.join("room1"));
  await sleep(200);

  await step("adapter to room1 hello {a:1}", () => servers[0].io.to("room1").emit("hello", { a: 1 }));
  await step("adapter except volatile binary", () => servers[0].io.except("sid1").volatile.emit("file", Buffer.from([1, 2, 3])));
  await step("adapter broadcast with ack (types 7, 8, 9)", async () => {
    const res = await servers[0].io.timeout(2000).emitWithAck("ask", 7);
    if (res.length !== 1 || res[0] !== "answer:7") throw new Error("unexpected acks " + JSON.stringify(res));
  });

  client.close();
  for (const s of servers) {
    s.io.close();
    await s.p.quit().catch(() => {});
    await s.s.quit().catch(() => {});
  }
  await pub.quit();
  await recorder.quit();
  process.stdout.write(JSON.stringify({
    source: "@socket.io/redis-emitter 5.1.0, @socket.io/redis-adapter 8.3.0, socket.io 4.8.1, socket.io-client 4.8.1; captured with PSUBSCRIBE (the scratch key prefix is rewritten to socket.io in channel names)",
    key: "socket.io",
    records,
  }, null, 1) + "\n");
  process.exit(0);
}

main().catch((e) => { console.error(e); process.exit(1); });
