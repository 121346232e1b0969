// The Node side of the recovery-cost benchmark (bench/run-recovery.sh),
// identical to bench/recoveryserver: socket.io 4.8 with
// connectionStateRecovery on its default in-memory adapter (one node, no
// broker), WebSocket transport.   node sio-recovery-server.js PORT [MAX_MS]
// (MAX_MS: maxDisconnectionDuration, default 120000 as socket.io's; the
// middlewares are skipped on recovery, socket.io's default.) Events:
//   "join" ROOM: joins ROOM; "burst" N: emits "ev" i for i in 0..N-1 to room
//   "r" then acknowledges with N; on a disconnect: "gone" (id, reason) to
//   room "ctl".
// With a third argument REDIS_URL [KEY], the adapter is
// @socket.io/redis-streams-adapter on that Redis (stream and channel
// prefix KEY, default "socket.io"): recovery through the stream.
const { Server } = require("socket.io");
const port = Number(process.argv[2] || 3000), max = Number(process.argv[3] || 120000);
const streamsURL = process.argv[4], key = process.argv[5] || "socket.io";
const opts = {
  transports: ["websocket"],
  connectionStateRecovery: { maxDisconnectionDuration: max, skipMiddlewares: true },
};

async function main() {
  if (streamsURL) {
    const { createClient } = require("redis");
    const { createAdapter } = require("@socket.io/redis-streams-adapter");
    const client = createClient({ url: streamsURL });
    client.on("error", (e) => console.error("redis", e.message));
    await client.connect();
    opts.adapter = createAdapter(client, { streamName: key, channelPrefix: key });
  }
  serve(new Server(port, opts));
}

function serve(io) {
  io.on("connection", (socket) => {
    socket.on("join", (room, ack) => {
      socket.join(room);
      if (typeof ack === "function") ack();
    });
    socket.on("burst", (n, ack) => {
      for (let i = 0; i < n; i++) io.to("r").emit("ev", i);
      if (typeof ack === "function") ack(n);
    });
    socket.on("disconnect", (reason) => io.to("ctl").emit("gone", socket.id, reason));
  });
  process.stdout.write("listening\n");
}

main().catch((e) => { console.error(e); process.exit(1); });
