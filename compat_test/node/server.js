// A socket.io 4.8 server with @socket.io/redis-adapter 8, for the compat
// tests.   node server.js PORT KEY
// Clients join the room named by their `room` query parameter on connect
// (namespaces "/" and "/admin"). serverSideEmit events are printed as JSON
// lines {"type":"server-side","event":...,"args":[...]}. Prints READY.
const { redisPair } = require("./common");
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");

const [port, key] = [Number(process.argv[2]), process.argv[3] || "socket.io"];

async function main() {
  const { pub, sub } = await redisPair();
  const io = new Server({ adapter: createAdapter(pub, sub, { key }) });
  for (const nsp of ["/", "/admin"]) {
    io.of(nsp).on("connection", (socket) => {
      const room = socket.handshake.query.room;
      if (room) socket.join(room);
      socket.on("join", (r, cb) => { socket.join(r); if (cb) cb("joined " + r); });
    });
  }
  io.on("ping", (...args) => {
    process.stdout.write(JSON.stringify({ type: "server-side", event: "ping", args }) + "\n");
  });
  io.listen(port);
  // the adapter subscribes asynchronously: wait until this node is counted
  for (;;) {
    const n = await pub.sendCommand(["PUBSUB", "NUMSUB", key + "-request#/#"]);
    if (Number(n[1]) > 0) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  process.stdout.write(JSON.stringify({ type: "ready", port }) + "\n");
}
main().catch((e) => { console.error(e); process.exit(1); });
