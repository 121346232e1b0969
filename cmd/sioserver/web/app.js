// The page of sioserver: connects to the server it came from, joins rooms
// (those of ?rooms=a,b, else the server's default), and lists every event
// it receives with its arguments and arrival time. ?ns=/chat picks the
// namespace; ?token=JWT is sent in the auth payload (servers started with
// --auth-secret / --auth-jwks). The state is mirrored in <body data-status data-joined
// data-reason data-reconnecting data-events> for scripts and tests.
(() => {
  "use strict";
  const MAX_ROWS = 500; // older events are dropped from the list
  const MAX_ARGS_CHARS = 4000; // longer arguments are cut in the list
  const $ = (id) => document.getElementById(id);
  const body = document.body;
  const params = new URLSearchParams(location.search);
  const ns = params.get("ns") || body.dataset.namespace || "/";
  const initial = (params.get("rooms") ?? body.dataset.rooms ?? "").split(",").map((r) => r.trim()).filter(Boolean);
  const rooms = new Map(); // name -> "joining" | "joined" | "refused: ..."
  let received = 0;

  $("server").textContent = location.host;
  $("namespace").textContent = ns;

  const token = params.get("token");
  const socket = io(ns === "/" ? undefined : ns, token ? { auth: { token } } : {});

  function setStatus(status, text) {
    body.dataset.status = status;
    $("status").textContent = text;
  }

  function renderRooms() {
    const ul = $("rooms");
    ul.replaceChildren();
    for (const [name, state] of rooms) {
      const li = document.createElement("li");
      li.dataset.room = name;
      const label = document.createElement("span");
      label.textContent = name;
      const st = document.createElement("span");
      st.className = "state" + (state.startsWith("refused") ? " refused" : "");
      st.textContent = state;
      label.append(st);
      const leave = document.createElement("button");
      leave.textContent = "Leave";
      leave.addEventListener("click", () => leaveRoom(name));
      li.append(label, leave);
      ul.append(li);
    }
    body.dataset.joined = [...rooms].filter(([, s]) => s === "joined").map(([n]) => n).join(" ");
  }

  function refusal(res) {
    if (res && typeof res === "object" && "error" in res) return String(res.error);
    return "unexpected answer " + JSON.stringify(res);
  }

  function joinRoom(name) {
    rooms.set(name, "joining");
    renderRooms();
    if (!socket.connected) return; // joined on connect
    socket.timeout(10000).emit("join", name, (err, res) => {
      if (!rooms.has(name)) return;
      rooms.set(name, err ? "no answer" : res === true ? "joined" : "refused: " + refusal(res));
      renderRooms();
    });
  }

  function leaveRoom(name) {
    if (!socket.connected) {
      rooms.delete(name);
      renderRooms();
      return;
    }
    rooms.set(name, "leaving");
    renderRooms();
    // gone from the list once the server has taken it out of the room
    socket.timeout(10000).emit("leave", name, () => {
      if (rooms.get(name) !== "leaving") return; // joined again meanwhile
      rooms.delete(name);
      renderRooms();
    });
  }

  function describe(v) {
    return JSON.stringify(v, (k, x) => {
      if (x instanceof ArrayBuffer) return "<binary " + x.byteLength + " bytes>";
      if (ArrayBuffer.isView(x)) return "<binary " + x.byteLength + " bytes>";
      if (typeof Blob !== "undefined" && x instanceof Blob) return "<binary " + x.size + " bytes>";
      return x;
    });
  }

  function pad(n, w) {
    return String(n).padStart(w, "0");
  }

  function addEvent(event, args) {
    const now = new Date();
    const tr = document.createElement("tr");
    tr.className = "new";
    tr.dataset.event = event;
    const time = document.createElement("td");
    time.className = "time";
    time.title = now.toISOString();
    time.textContent = pad(now.getHours(), 2) + ":" + pad(now.getMinutes(), 2) + ":" + pad(now.getSeconds(), 2) + "." + pad(now.getMilliseconds(), 3);
    const name = document.createElement("td");
    name.className = "event";
    name.textContent = event;
    const a = document.createElement("td");
    a.className = "args";
    let text = args.map(describe).join(", ");
    if (text.length > MAX_ARGS_CHARS) text = text.slice(0, MAX_ARGS_CHARS) + "…";
    a.textContent = text;
    tr.append(time, name, a);
    const tbody = $("events");
    tbody.prepend(tr);
    while (tbody.rows.length > MAX_ROWS) tbody.deleteRow(-1);
    received++;
    $("count").textContent = String(received);
    $("empty").hidden = true;
    body.dataset.events = String(received);
  }

  async function refreshHealth() {
    try {
      const r = await fetch("/healthz", { cache: "no-store" });
      const h = await r.json();
      $("bus").textContent = h.bus === null ? "none (--no-broker)" : h.bus.connected ? "connected" : "down";
      $("clients").textContent = String(h.clients);
      $("uptime").textContent = Math.round(h.uptime_seconds) + " s";
    } catch (e) {
      $("bus").textContent = "server unreachable";
    }
  }

  socket.on("connect", () => {
    setStatus("connected", "connected");
    body.dataset.reason = "";
    $("sid").textContent = socket.id;
    const engine = socket.io.engine;
    $("transport").textContent = engine.transport.name;
    engine.once("upgrade", (t) => ($("transport").textContent = t.name));
    for (const name of rooms.keys()) joinRoom(name); // a new connection has no room yet
    setTimeout(refreshHealth, 1100); // after /healthz's count of the clients (once a second) includes this one
  });
  socket.on("disconnect", (reason) => {
    body.dataset.reason = reason;
    body.dataset.reconnecting = socket.active ? "yes" : "no";
    $("sid").textContent = "–";
    $("transport").textContent = "–";
    const again = socket.active ? ", reconnecting…" : "";
    setStatus("disconnected", "disconnected (" + reason + ")" + again);
    for (const name of rooms.keys()) rooms.set(name, "joining");
    renderRooms();
  });
  socket.on("connect_error", (err) => {
    setStatus("disconnected", "cannot connect (" + err.message + ")" + (socket.active ? ", retrying…" : ""));
  });
  socket.onAny((event, ...args) => addEvent(event, args));

  $("join-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const name = $("room").value.trim();
    if (name) joinRoom(name);
    $("room").value = "";
  });

  for (const name of initial) joinRoom(name);
  refreshHealth();
  setInterval(refreshHealth, 10000);
})();
