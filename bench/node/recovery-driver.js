// The driver of the recovery-cost benchmark (bench/run-recovery.sh): a
// socket.io-client 4.8.1, the same for the Go and the Node server.
//   node recovery-driver.js URL [MISSED] [WARMUP] [CYCLES]   (default 1000 2 5)
// Two clients, each with a manager of its own, WebSocket transport:
// "control" (in room "ctl") and "subject" (in room "r", reconnection off:
// the driver reconnects it itself). One cycle:
//   1. control has the server emit one "ev" to room "r"; the subject
//      receives it (its offset is the newest);
//   2. the subject's Engine.IO transport is closed (s.io.engine.close():
//      "forced close" on the client, "transport close" on the server, which
//      keeps a session for it); the driver waits for the subject's
//      "disconnect" and for the server's "gone";
//   3. control has the server emit MISSED "ev" events (0..MISSED-1) to room
//      "r" and waits for the acknowledgement: they are all sent (and missed);
//   4. t0, subject.connect() (with {pid, offset}, as socket.io-client does);
//      the cycle's figures: reconnect_ms, t0 to the last missed event (the
//      cost measured), and connect_ms, t0 to the "connect" event (which
//      must say recovered). socket.io 4.8 sends the missed packets before
//      the CONNECT packet (the client buffers them and emits them just
//      before "connect"), siobridge after it: connect_ms is not comparable
//      between the two, reconnect_ms is. The missed events must all arrive,
//      in order, none twice, with the same socket id.
// WARMUP cycles first (not reported: JIT, first connections), then CYCLES.
// Prints one JSON line: {"missed", "cycles": [{reconnect_ms, connect_ms}...],
// "median_reconnect_ms", "median_connect_ms"}, or exits 1
// with the reason on stderr (no recovery, wrong or missing events, 60 s).
const { io } = require("socket.io-client");
const { performance } = require("perf_hooks");

const url = process.argv[2], missed = Number(process.argv[3] || 1000);
const warmup = Number(process.argv[4] || 2), cycles = Number(process.argv[5] || 5);
const fail = (msg) => { console.error("recovery-driver: " + msg); process.exit(1); };
setTimeout(() => fail("not done after 60 s"), 60000).unref();

const opts = { transports: ["websocket"], forceNew: true };
const control = io(url, opts);
const subject = io(url, { ...opts, reconnection: false });

// waiter: resolves the promise made by next(name) when that event comes
const waiting = {};
const next = (name) => new Promise((resolve) => { waiting[name] = resolve; });
const fire = (name, v) => { const f = waiting[name]; delete waiting[name]; if (f) f(v); };

let got = [], want = 0, tLast = 0;
subject.on("ev", (i) => {
  got.push(i);
  if (got.length === want) { tLast = performance.now(); fire("all"); }
});
subject.on("connect", () => fire("connect", performance.now()));
subject.on("disconnect", (reason) => fire("disconnect", reason));
control.on("gone", (id, reason) => fire("gone:" + id, reason));
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)]; };
const round3 = (x) => Math.round(x * 1000) / 1000;

(async () => {
  await Promise.all([new Promise((r) => control.once("connect", r)), new Promise((r) => subject.once("connect", r))]);
  await control.timeout(10000).emitWithAck("join", "ctl");
  await subject.timeout(10000).emitWithAck("join", "r");
  const sid = subject.id, out = [];
  for (let c = 0; c < warmup + cycles; c++) {
    got = []; want = 1; // 1. one event: the subject's offset is the newest
    const one = next("all");
    await control.timeout(10000).emitWithAck("burst", 1);
    await one;
    const gone = next("gone:" + sid), disc = next("disconnect"); // 2. the cut
    subject.io.engine.close();
    const [reason, serverReason] = await Promise.all([disc, gone]);
    if (reason !== "forced close" || serverReason !== "transport close") fail(`cycle ${c}: disconnect reasons ${reason} (client), ${serverReason} (server)`);
    got = []; want = missed; // 3. the missed events
    const all = next("all"), connected = next("connect");
    const n = await control.timeout(20000).emitWithAck("burst", missed);
    if (n !== missed || got.length) fail(`cycle ${c}: burst acknowledged ${n}, ${got.length} received while away`);
    const t0 = performance.now(); // 4. reconnect
    subject.connect();
    const tConnect = await connected;
    if (!subject.recovered || subject.id !== sid) fail(`cycle ${c}: not recovered (${subject.id}, was ${sid}; server saw ${serverReason})`);
    await all;
    await new Promise((r) => setTimeout(r, 100)); // none twice
    if (got.length !== missed || got.some((v, i) => v !== i)) fail(`cycle ${c}: ${got.length} events, not 0..${missed - 1} in order`);
    if (c >= warmup) out.push({ reconnect_ms: round3(tLast - t0), connect_ms: round3(tConnect - t0) });
  }
  control.close(); subject.close();
  process.stdout.write(JSON.stringify({
    missed, cycles: out,
    median_reconnect_ms: median(out.map((o) => o.reconnect_ms)),
    median_connect_ms: median(out.map((o) => o.connect_ms)),
  }) + "\n");
  process.exit(0);
})().catch((e) => fail(String(e && e.stack || e)));
