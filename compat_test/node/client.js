// A socket.io-client 4.8 that reports everything as JSON lines.
//   node client.js URL ROOM NAMESPACE [transport]
// Lines: {"type":"connected","sid":..}, {"type":"event","event":..,"args":[..]},
// {"type":"disconnected","reason":..}. Binary arguments are {"$binary": base64}.
// The event "ask" is acknowledged with "pong:" + its first argument.
const { io } = require("socket.io-client");
const { plain } = require("./common");
const [url, room, nsp, transport] = process.argv.slice(2);

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
