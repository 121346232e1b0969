// A socket.io 4.8 server with @socket.io/redis-adapter 8, one node of a
// mixed cluster, driven through stdin.   node cluster-node.js PORT KEY
// (PORT 0: a free port, reported in the ready line.)
// node cluster-node.js PORT KEY HOST:PORT[,HOST:PORT...] [MODE]: the sharded
// adapter (createShardedAdapter, channelPrefix KEY, subscriptionMode MODE:
// static, dynamic (the default) or dynamic-private) on that Redis Cluster.
// node cluster-node.js PORT KEY streams:REDIS_URL [RECOVERY_MS]: the Redis
// Streams adapter (@socket.io/redis-streams-adapter createAdapter,
// streamName and channelPrefix KEY) on that Redis; with RECOVERY_MS,
// connectionStateRecovery with that maxDisconnectionDuration.
// Clients join the room named by their `room` query parameter on connect.
// Events that other servers emit with serverSideEmit print
// {"type":"server-side","event":..,"args":[..]}; when the sender waits for
// acknowledgements, this node answers "node pong " + JSON of the args.
// Commands (one JSON object per stdin line, "id" echoed in the result):
//   {"id":1,"op":"emit","rooms":[..],"except":[..],"event":E,"args":[..]}
//   {"id":1,"op":"emitMany","rooms":[..],"event":E,"count":N}  emits E with 0, 1, ... N-1
//   {"id":2,"op":"emitWithAck","rooms":[..],"event":E,"args":[..],"timeout":ms}
//   {"id":3,"op":"fetchSockets","rooms":[..]}
//   {"id":4,"op":"socketsJoin"|"socketsLeave","rooms":[..],"to":[..]}
//   {"id":5,"op":"disconnectSockets","rooms":[..],"close":bool}
//   {"id":6,"op":"serverSideEmit","event":E,"args":[..]}
//   {"id":7,"op":"serverSideEmitWithAck","event":E,"args":[..],"timeout":ms}
//   {"id":8,"op":"serverCount"}   {"id":9,"op":"allRooms"}
// Results: {"type":"result","id":..,"result":..} or {"type":"result","id":..,"error":".."}.
// Binary values are {"$binary": base64} both ways. Prints {"type":"ready","port":N}.
const readline = require("readline");
const { plain, unplain, redisPair, answerPing } = require("./common");
const { Server } = require("socket.io");
const { createAdapter, createShardedAdapter } = require("@socket.io/redis-adapter");
const streams = require("@socket.io/redis-streams-adapter");
const { createClient, createCluster } = require("redis");

const [port, key, where, fifth] = [Number(process.argv[2]), process.argv[3] || "socket.io", process.argv[4], process.argv[5]];
const streamsURL = where && where.startsWith("streams:") ? where.slice("streams:".length) : "";
const clusterNodes = streamsURL ? "" : where;
const mode = (!streamsURL && fifth) || "dynamic";
const recoveryMs = streamsURL ? Number(fifth || 0) : 0;

// xreaders counts the connections whose last command is XREAD.
async function xreaders(c) {
  const list = await c.sendCommand(["CLIENT", "LIST"]);
  return list.split("\n").filter((l) => / cmd=xread /.test(l + " ")).length;
}
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");

async function main() {
  let io, pub, readersBefore = 0;
  if (streamsURL) {
    pub = createClient({ url: streamsURL });
    pub.on("error", (e) => console.error("redis", e.message));
    await pub.connect();
    readersBefore = await xreaders(pub);
    const opts = { adapter: streams.createAdapter(pub, { streamName: key, channelPrefix: key }) };
    if (recoveryMs) opts.connectionStateRecovery = { maxDisconnectionDuration: recoveryMs };
    io = new Server(opts);
  } else if (clusterNodes) {
    pub = createCluster({ rootNodes: clusterNodes.split(",").map((a) => ({ url: "redis://" + a })) });
    const sub = pub.duplicate();
    pub.on("error", (e) => console.error("redis pub", e.message));
    sub.on("error", (e) => console.error("redis sub", e.message));
    await Promise.all([pub.connect(), sub.connect()]);
    io = new Server({ adapter: createShardedAdapter(pub, sub, { channelPrefix: key, subscriptionMode: mode }) });
  } else {
    const pair = await redisPair();
    pub = pair.pub;
    io = new Server({ adapter: createAdapter(pair.pub, pair.sub, { key, requestsTimeout: 5000 }) });
  }
  io.on("connection", (socket) => {
    const room = socket.handshake.query.room;
    if (room) socket.join(room);
  });
  answerPing(io);
  const sel = (c) => {
    let s = io.of(c.ns || "/");
    if (c.rooms && c.rooms.length) s = s.in(c.rooms);
    if (c.except && c.except.length) s = s.except(c.except);
    return s;
  };
  const ops = {
    emit: async (c) => { sel(c).emit(c.event, ...unplain(c.args || [])); return true; },
    emitMany: async (c) => { for (let i = 0; i < c.count; i++) sel(c).emit(c.event, i); return true; },
    emitWithAck: async (c) => sel(c).timeout(c.timeout || 5000).emitWithAck(c.event, ...unplain(c.args || [])),
    fetchSockets: async (c) => (await sel(c).fetchSockets()).map((s) => ({ id: s.id, rooms: [...s.rooms], data: s.data, handshake: s.handshake })),
    socketsJoin: async (c) => { sel(c).socketsJoin(c.to); return true; },
    socketsLeave: async (c) => { sel(c).socketsLeave(c.to); return true; },
    disconnectSockets: async (c) => { sel(c).disconnectSockets(!!c.close); return true; },
    serverSideEmit: async (c) => { io.of(c.ns || "/").serverSideEmit(c.event, ...unplain(c.args || [])); return true; },
    serverSideEmitWithAck: async (c) => io.of(c.ns || "/").serverSideEmitWithAck(c.event, ...unplain(c.args || [])),
    serverCount: async (c) => io.of(c.ns || "/").adapter.serverCount(),
    allRooms: async (c) => [...(await io.of(c.ns || "/").adapter.allRooms())],
  };
  readline.createInterface({ input: process.stdin }).on("line", (line) => {
    const c = JSON.parse(line);
    const f = ops[c.op];
    if (!f) return out({ type: "result", id: c.id, error: "unknown op " + c.op });
    f(c).then((r) => out({ type: "result", id: c.id, result: plain(r) }), (e) => out({ type: "result", id: c.id, error: String(e && e.message || e) }));
  });
  const httpServer = require("http").createServer();
  io.attach(httpServer);
  await new Promise((resolve, reject) => {
    httpServer.once("error", reject);
    httpServer.listen(port, "127.0.0.1", resolve);
  });
  // the adapter subscribes asynchronously: wait until this node is counted
  // (the sharded one: the test waits for PUBSUB SHARDNUMSUB), and the
  // streams one until it also reads the stream (XREAD from "$": what is
  // appended before is not for it)
  for (; !clusterNodes;) {
    const n = await pub.sendCommand(["PUBSUB", "NUMSUB", streamsURL ? key + "#/#" : key + "-request#/#"]);
    if (Number(n[1]) > 0 && (!streamsURL || (await xreaders(pub)) > readersBefore)) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  out({ type: "ready", port: httpServer.address().port });
}
main().catch((e) => { console.error(e); process.exit(1); });
