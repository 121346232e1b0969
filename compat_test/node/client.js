// A socket.io-client 4.8 that reports everything as JSON lines.
//   node client.js URL ROOM NAMESPACE [transport]
// Lines: {"type":"connected","sid":..}, {"type":"event","event":..,"args":[..]},
// {"type":"disconnected","reason":..}. Binary arguments are {"$binary": base64}.
// The event "ask" is acknowledged with "pong:" + its first argument.
const { io } = require("socket.io-client");
const [url, room, nsp, transport] = process.argv.slice(2);

function plain(v) {
  if (v instanceof ArrayBuffer) return { $binary: Buffer.from(v).toString("base64") };
  if (Buffer.isBuffer(v) || ArrayBuffer.isView(v)) return { $binary: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64") };
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");

const socket = io(url + (nsp && nsp !== "/" ? nsp : ""), {
  query: room ? { room } : {},
  transports: [transport || "websocket"],
  reconnection: false,
});
socket.on("connect", () => out({ type: "connected", sid: socket.id }));
socket.on("disconnect", (reason) => out({ type: "disconnected", reason }));
socket.on("connect_error", (e) => out({ type: "connect_error", message: e.message }));
socket.onAny((event, ...args) => {
  let ack;
  if (args.length && typeof args[args.length - 1] === "function") ack = args.pop();
  out({ type: "event", event, args: plain(args) });
  if (ack) ack("pong:" + JSON.stringify(args[0] === undefined ? null : plain(args[0])));
});
