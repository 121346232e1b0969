// The Node side of the cluster fan-out benchmarks (bench/run-cluster.sh,
// bench/run-sharded.sh): one socket.io 4.8 node with @socket.io/redis-adapter
// 8 (node-redis 4 clients), the same events as examples/bench with -url: on
// "join" the socket joins the room named by the argument (acknowledged when
// the client asks, as the load generator does); on "fanout" the server
// emits "tick" with the same argument to room "bench" (on every node).
// WebSocket transport.
//   node sio-cluster-node.js PORT [KEY]      classic adapter (createAdapter, key KEY)
//                                            on REDIS_URL, default redis://127.0.0.1:6379
//   node sio-cluster-node.js PORT KEY HOST:PORT[,HOST:PORT...]
//                                            sharded adapter (createShardedAdapter,
//                                            subscriptionMode "dynamic", channelPrefix KEY)
//                                            on that Redis Cluster
const { Server } = require("socket.io");
const { createAdapter, createShardedAdapter } = require("@socket.io/redis-adapter");
const { createClient, createCluster } = require("redis");
(async () => {
  const port = Number(process.argv[2] || 3000), key = process.argv[3] || "socket.io", nodes = process.argv[4];
  let adapter;
  if (nodes) {
    const pub = createCluster({ rootNodes: nodes.split(",").map((a) => ({ url: "redis://" + a })) });
    const sub = pub.duplicate();
    pub.on("error", (e) => console.error("redis pub", e.message));
    sub.on("error", (e) => console.error("redis sub", e.message));
    await Promise.all([pub.connect(), sub.connect()]);
    adapter = createShardedAdapter(pub, sub, { channelPrefix: key, subscriptionMode: "dynamic" });
  } else {
    const pub = createClient({ url: process.env.REDIS_URL || "redis://127.0.0.1:6379" });
    const sub = pub.duplicate();
    pub.on("error", (e) => console.error("redis pub", e.message));
    sub.on("error", (e) => console.error("redis sub", e.message));
    await Promise.all([pub.connect(), sub.connect()]);
    adapter = createAdapter(pub, sub, { key });
  }
  const io = new Server({ transports: ["websocket"], adapter });
  io.on("connection", (socket) => {
    socket.on("join", (room, ack) => {
      socket.join(room);
      if (typeof ack === "function") ack();
    });
    socket.on("fanout", (arg) => io.to("bench").emit("tick", arg));
  });
  io.listen(port);
  process.stdout.write("listening\n");
})().catch((e) => { console.error(e); process.exit(1); });
