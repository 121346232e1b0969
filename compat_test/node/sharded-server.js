// A socket.io 4.8 server with @socket.io/redis-adapter's sharded adapter
// (createShardedAdapter, subscriptionMode "dynamic") on a Redis Cluster,
// for the compat tests.   node sharded-server.js PORT HOST:PORT[,HOST:PORT...]
// Clients join the room named by their `room` query parameter on connect.
// serverSideEmit events print {"type":"server-side","event":..,"args":[..]};
// when the sender waits for an acknowledgement this node answers
// "node pong " + JSON of the args. Commands on stdin (one JSON object a line):
//   {"op":"emit","rooms":[..],"event":E,"args":[..]}   io.to(rooms).emit
//   {"op":"serverSideEmit","event":E,"args":[..]}
// Binary values are {"$binary": base64} both ways. Prints {"type":"ready","port":N}.
const readline = require("readline");
const { createCluster } = require("redis");
const { Server } = require("socket.io");
const { createShardedAdapter } = require("@socket.io/redis-adapter");
const { unplain, answerPing } = require("./common");

const [port, nodes] = [Number(process.argv[2]), process.argv[3].split(",")];
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");

async function main() {
  const pub = createCluster({ rootNodes: nodes.map((a) => ({ url: "redis://" + a })) });
  const sub = pub.duplicate();
  pub.on("error", (e) => console.error("redis pub", e.message));
  sub.on("error", (e) => console.error("redis sub", e.message));
  await Promise.all([pub.connect(), sub.connect()]);
  const io = new Server({ adapter: createShardedAdapter(pub, sub, { subscriptionMode: "dynamic" }) });
  io.on("connection", (socket) => {
    const room = socket.handshake.query.room;
    if (room) socket.join(room);
  });
  answerPing(io);
  readline.createInterface({ input: process.stdin }).on("line", (line) => {
    const c = JSON.parse(line);
    const args = unplain(c.args || []);
    if (c.op === "emit") io.to(c.rooms || []).emit(c.event, ...args);
    if (c.op === "serverSideEmit") io.serverSideEmit(c.event, ...args);
  });
  io.listen(port);
  out({ type: "ready", port });
}
main().catch((e) => { console.error(e); process.exit(1); });
