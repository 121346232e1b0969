// A socket.io-client 4.8 driven through stdin, for testing siobridge's
// server.   node sio-client.js URL TRANSPORTS(comma separated) [AUTH_JSON]
// Commands (one JSON object per stdin line):
//   {"emit": EVENT, "args": [...], "ack": bool, "ns": "/"}
//   {"connect": NS, "auth": {...}}
// Output: JSON lines {"type": "connect"|"connect_error"|"disconnect"|"upgrade"|"event"|"ack", ...}.
// Binary values are {"$binary": base64} both ways. The server event "question"
// is acknowledged with ("answer", <binary 09>). With SIO_PARSER=msgpack in the
// environment it uses socket.io-msgpack-parser instead of the default parser.
const readline = require("readline");
const { io } = require("socket.io-client");
const { plain, unplain } = require("./common");
const [url, transports, authJSON] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");

const sockets = {};
function open(ns, auth) {
  const s = io(url + (ns === "/" ? "" : ns), {
    transports: transports.split(","),
    auth: auth || {},
    reconnectionDelay: 100,
    reconnectionDelayMax: 300,
    forceNew: ns === "/",
    ...(process.env.SIO_PARSER === "msgpack" ? { parser: require("socket.io-msgpack-parser") } : {}),
  });
  sockets[ns] = s;
  let upgraded = false;
  const upgrade = (name) => {
    if (!upgraded) out({ type: "upgrade", ns, transport: name });
    upgraded = true;
  };
  s.io.on("open", () => s.io.engine.once("upgrade", (t) => upgrade(t.name)));
  s.on("connect", () => {
    const name = s.io.engine.transport.name;
    out({ type: "connect", ns, sid: s.id, transport: name });
    if (name === "websocket" && transports.startsWith("polling")) upgrade(name); // upgraded before the connect event
  });
  s.on("connect_error", (e) => out({ type: "connect_error", ns, message: e.message, data: e.data }));
  s.on("disconnect", (reason) => out({ type: "disconnect", ns, reason }));
  s.on("question", (...args) => {
    const cb = args.pop();
    out({ type: "event", ns, event: "question", args: plain(args) });
    cb("answer", Buffer.from([9]));
  });
  s.onAny((event, ...args) => {
    if (event === "question") return;
    out({ type: "event", ns, event, args: plain(args) });
  });
  return s;
}

open("/", authJSON ? JSON.parse(authJSON) : {});
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const cmd = JSON.parse(line);
  if (cmd.connect) {
    open(cmd.connect, cmd.auth);
    return;
  }
  const s = sockets[cmd.ns || "/"];
  const args = unplain(cmd.args || []);
  if (cmd.ack) {
    s.timeout(5000).emit(cmd.emit, ...args, (err, ...res) => {
      out({ type: "ack", event: cmd.emit, error: err ? err.message : null, args: plain(res) });
    });
  } else {
    s.emit(cmd.emit, ...args);
  }
});
