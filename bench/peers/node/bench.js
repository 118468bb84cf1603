// node-resque 9.7.1 bench driver (loaded with NODE_PATH pointing at bench/.cache/node/node_modules).
//
//   node bench.js enqueue N QUEUE          one by one with queue.enqueue; prints {"seconds": s}
//   node bench.js enqueue_batch N QUEUE    queue.enqueue calls in flight 1,000 at a time (no batch API)
//   node bench.js work QUEUE WORKERS TIMEOUT_MS
//                                          WORKERS Worker instances in this process until SIGTERM
//   node bench.js multiwork QUEUE N TIMEOUT_MS
//                                          one MultiWorker with min = max = N task processors, until SIGTERM
// Env: BENCH_REDIS=host:port. Jobs: noop(i), sleep(seconds), stamp() -> RPUSH resque:bench:stamps <unix s>.
const { MultiWorker, Queue, Worker } = require("node-resque");
const Redis = require("ioredis");

const [host, port] = (process.env.BENCH_REDIS || "127.0.0.1:6379").split(":");
const connection = { host, port: Number(port), namespace: "resque" };
const wallSeconds = () => (performance.timeOrigin + performance.now()) / 1000;
let stampClient = null;
const jobs = {
  noop: { perform: async () => null },
  sleep: { perform: async (s) => new Promise((r) => setTimeout(r, s * 1000)) },
  stamp: {
    perform: async () => {
      const t = wallSeconds();
      stampClient = stampClient || new Redis({ host, port: Number(port) });
      await stampClient.rpush("resque:bench:stamps", t.toFixed(6));
    },
  },
};

async function enqueue(n, queueName, inFlight) {
  const queue = new Queue({ connection }, jobs);
  queue.on("error", (e) => console.error(e));
  await queue.connect();
  const t0 = wallSeconds();
  if (inFlight <= 1) {
    for (let i = 0; i < n; i++) await queue.enqueue(queueName, "noop", [i]);
  } else {
    for (let i = 0; i < n; i += inFlight) {
      const batch = [];
      for (let j = i; j < Math.min(n, i + inFlight); j++) batch.push(queue.enqueue(queueName, "noop", [j]));
      await Promise.all(batch);
    }
  }
  const seconds = wallSeconds() - t0;
  console.log(JSON.stringify({ seconds }));
  await queue.end();
}

async function work(queueName, count, timeout) {
  const workers = [];
  for (let i = 0; i < count; i++) {
    const w = new Worker({ connection, queues: [queueName], timeout, name: count > 1 ? `${require("os").hostname()}:${process.pid}-${i}` : undefined }, jobs);
    w.on("error", (e) => console.error("error", e));
    await w.connect();
    workers.push(w);
  }
  workers.forEach((w) => w.start());
  const stop = async () => {
    await Promise.all(workers.map((w) => w.end()));
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

async function multiwork(queueName, n, timeout) {
  // min = max: no shrinking while every job sleeps; checkTimeout 10 ms: it adds one Worker per
  // check while the event loop is not blocked, so all N are there within seconds.
  const multi = new MultiWorker(
    { connection, queues: [queueName], timeout, minTaskProcessors: n, maxTaskProcessors: n, checkTimeout: 10 },
    jobs,
  );
  multi.on("error", (e) => console.error("error", e));
  multi.start();
  const stop = async () => {
    await multi.end();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

(async () => {
  const [cmd, ...a] = process.argv.slice(2);
  if (cmd === "enqueue") await enqueue(Number(a[0]), a[1], 1);
  else if (cmd === "enqueue_batch") await enqueue(Number(a[0]), a[1], 1000);
  else if (cmd === "work") await work(a[0], Number(a[1] || 1), Number(a[2] || 5000));
  else if (cmd === "multiwork") await multiwork(a[0], Number(a[1]), Number(a[2] || 5000));
  else { console.error(`unknown command ${cmd}`); process.exit(2); }
  if (cmd !== "work" && cmd !== "multiwork") process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
