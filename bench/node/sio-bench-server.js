// The Node side of the fan-out benchmark, identical to examples/bench:
// socket.io 4.8, WebSocket transport.   node sio-bench-server.js PORT
// "join" is acknowledged when the client asks (as examples/bench does).
const { Server } = require("socket.io");
const io = new Server(Number(process.argv[2] || 3000), { transports: ["websocket"] });
io.on("connection", (socket) => {
  socket.on("join", (room, ack) => {
    socket.join(room);
    if (typeof ack === "function") ack();
  });
  socket.on("fanout", (arg) => io.to("bench").emit("tick", arg));
});
process.stdout.write("listening\n");
