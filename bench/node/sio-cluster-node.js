// The Node side of the cluster fan-out benchmark (bench/run-cluster.sh):
// one socket.io 4.8 node with @socket.io/redis-adapter 8 (node-redis 4
// clients), the same events as examples/bench with -url: on "join" the
// socket joins the room named by the argument; on "fanout" the server
// emits "tick" with the same argument to room "bench" (on every node).
// WebSocket transport.
//   node sio-cluster-node.js PORT [KEY]      (REDIS_URL, default redis://127.0.0.1:6379)
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { createClient } = require("redis");
(async () => {
  const port = Number(process.argv[2] || 3000), key = process.argv[3] || "socket.io";
  const pub = createClient({ url: process.env.REDIS_URL || "redis://127.0.0.1:6379" });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  const io = new Server({ transports: ["websocket"], adapter: createAdapter(pub, sub, { key }) });
  io.on("connection", (socket) => {
    socket.on("join", (room) => socket.join(room));
    socket.on("fanout", (arg) => io.to("bench").emit("tick", arg));
  });
  io.listen(port);
  process.stdout.write("listening\n");
})().catch((e) => { console.error(e); process.exit(1); });
