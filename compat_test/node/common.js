// Helpers shared by the Node peers of the compat tests.
const { createClient } = require("redis");

// plain turns binary values into {"$binary": base64} (and Sets into arrays)
// for JSON lines.
function plain(v) {
  if (v instanceof ArrayBuffer) return { $binary: Buffer.from(v).toString("base64") };
  if (Buffer.isBuffer(v) || ArrayBuffer.isView(v)) return { $binary: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64") };
  if (v instanceof Set) return [...v].map(plain);
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

// unplain is the reverse of plain: {"$binary": base64} becomes a Buffer.
function unplain(v) {
  if (Array.isArray(v)) return v.map(unplain);
  if (v && typeof v === "object") {
    if (typeof v.$binary === "string" && Object.keys(v).length === 1) return Buffer.from(v.$binary, "base64");
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unplain(x)]));
  }
  return v;
}

// redisPair connects the publishing and subscribing clients of the Redis
// adapter (REDIS_URL, default the local Redis).
async function redisPair() {
  const pub = createClient({ url: process.env.REDIS_URL || "redis://127.0.0.1:6379" });
  const sub = pub.duplicate();
  pub.on("error", (e) => console.error("redis pub", e.message));
  sub.on("error", (e) => console.error("redis sub", e.message));
  await Promise.all([pub.connect(), sub.connect()]);
  return { pub, sub };
}

// answerPing prints the "ping" events other servers send with
// serverSideEmit as {"type":"server-side","event":"ping","args":[..]}
// lines; when the sender waits for acknowledgements it answers
// "node pong " + JSON of the args.
function answerPing(io) {
  io.on("ping", (...args) => {
    let cb;
    if (args.length && typeof args[args.length - 1] === "function") cb = args.pop();
    process.stdout.write(JSON.stringify({ type: "server-side", event: "ping", args: plain(args) }) + "\n");
    if (cb) cb("node pong " + JSON.stringify(plain(args)));
  });
}

module.exports = { plain, unplain, redisPair, answerPing };
