// A socket.io-client 4.8 for the connection state recovery test.
//   node recovery-client.js URL
// It connects over WebSocket; stdin commands (JSON lines):
//   {"cut": true}   closes its Engine.IO transport (socket.io.engine.close()):
//                   the manager reconnects by itself after 1 s, with {pid, offset}
//   {"cut": true, "hold": true}  the same, but it stays away until
//   {"reconnect": URL}           it connects again, to URL (another node
//                                of the cluster), with {pid, offset}
//   {"close": true} disconnects (socket.disconnect(): no session kept)
// Output (JSON lines):
//   {"type": "connect", "sid", "recovered"}     on every connection
//   {"type": "disconnect", "reason"}
//   {"type": "event", "event": "ev", "args": [value], "offset"}  per "ev" event,
//     the offset (its last argument) apart
//   {"type": "event", "event": "end", "ms"}  on "end": ms since the last connect
const readline = require("readline");
const { io } = require("socket.io-client");
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");

const s = io(process.argv[2], {
  transports: ["websocket"],
  reconnectionDelay: 1000,
  reconnectionDelayMax: 1000,
  randomizationFactor: 0,
});
let connectedAt = 0;
s.on("connect", () => {
  connectedAt = Date.now();
  out({ type: "connect", sid: s.id, recovered: s.recovered });
});
s.on("disconnect", (reason) => out({ type: "disconnect", reason }));
s.on("ev", (...args) => {
  const offset = args.pop();
  out({ type: "event", event: "ev", args, offset });
});
s.on("end", () => out({ type: "event", event: "end", ms: Date.now() - connectedAt }));
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const cmd = JSON.parse(line);
  if (cmd.cut) {
    if (cmd.hold) s.io.reconnection(false);
    s.io.engine.close();
  }
  if (cmd.close) s.disconnect();
  if (cmd.reconnect) {
    s.io.uri = cmd.reconnect;
    s.io.reconnection(true);
    s.connect();
  }
});
