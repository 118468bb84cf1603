// Interop driver for node-resque.
//
//   node peer.js COMMAND ARGS...
//
// Env: PEER_REDIS=host:port (default 127.0.0.1:6379), PEER_NAMESPACE (default "resque"),
//      VERBOSE=1 for worker events on stderr, PEER_TITLE to set the process title of `worker`,
//      PEER_CLUSTER=host:port,host:port: a Redis Cluster instead of PEER_REDIS (ioredis's Cluster).
//      Each command prints one JSON line on stdout.
"use strict";
const { Queue, Worker, Scheduler } = require("node-resque");

const [host, port] = (process.env.PEER_REDIS || "127.0.0.1:6379").split(":");
const namespace = process.env.PEER_NAMESPACE || "resque";
const connection = process.env.PEER_CLUSTER
  ? { redis: clusterClient(process.env.PEER_CLUSTER), namespace }
  : { host, port: Number(port), namespace };

function clusterClient(nodes) {
  const IORedis = require("ioredis");
  return new IORedis.Cluster(nodes.split(",").map((node) => ({ host: node.split(":")[0], port: Number(node.split(":")[1]) })));
}

function echoJob(name) {
  return {
    perform: async function (...args) {
      // `this` is the worker; job ids only exist on payloads from other implementations.
      const record = { by: "node", class: name, args, id: this.job.id === undefined ? null : this.job.id };
      await this.connection.redis.rpush(this.connection.key("interop:results"), JSON.stringify(record));
    },
  };
}

const failJob = {
  perform: async () => {
    throw new Error("interop failure");
  },
};

const jobs = {
  "Interop::Echo": echoJob("Interop::Echo"),
  Interop_Echo: echoJob("Interop_Echo"),
  echo: echoJob("echo"),
  "Interop::Fail": failJob,
  Interop_Fail: failJob,
};

const out = (value) => process.stdout.write(JSON.stringify(value) + "\n");
const log = (...parts) => process.env.VERBOSE && console.error(...parts);

function jsonArgs(text) {
  const args = JSON.parse(text === undefined ? "[]" : text);
  return Array.isArray(args) ? args : [args];
}

function queueList(text) {
  if (!text) throw new Error("QUEUES required");
  return text.split(",");
}

async function withQueue(fn) {
  const queue = new Queue({ connection }, jobs);
  await queue.connect();
  try {
    return await fn(queue);
  } finally {
    await queue.end();
  }
}

// Runs a real node-resque Worker. With drain=true it stops at the first empty poll.
async function runWorker(queues, drain) {
  if (process.env.PEER_TITLE) process.title = process.env.PEER_TITLE;
  const worker = new Worker({ connection, queues: queueList(queues), timeout: 100 }, jobs);
  const counts = { processed: 0, failed: 0 }; // "processed" includes failures, as Resque's stat:processed does
  worker.on("success", (q, job) => {
    counts.processed += 1;
    log("success", q, JSON.stringify(job));
  });
  worker.on("failure", (q, job, err) => {
    counts.processed += 1;
    counts.failed += 1;
    log("failure", q, JSON.stringify(job), String(err));
  });
  worker.on("error", (err) => console.error("worker error:", err));
  await worker.connect();
  const id = `${worker.name}:${worker.stringQueues()}`;
  const stopped = new Promise((resolve) => {
    if (drain) {
      worker.on("pause", () => resolve());
    } else {
      for (const signal of ["SIGQUIT", "SIGTERM", "SIGINT"]) process.once(signal, () => resolve());
    }
  });
  await worker.start();
  if (!drain) out({ worker: id, pid: process.pid });
  await stopped;
  await worker.end(); // waits for a running job
  out(drain ? { worker: id, ...counts } : { stopped: id });
}

async function main([command, ...argv]) {
  switch (command) {
    case "enqueue": // QUEUE CLASS ARGS_JSON
      return out({ ok: await withQueue((q) => q.enqueue(argv[0], argv[1], jsonArgs(argv[2]))) });
    case "enqueue_many": // JOBS_JSON: [[QUEUE, CLASS, ARGS], ...] in one process
      return out({
        ok: await withQueue(async (q) => {
          const done = [];
          for (const [queue, klass, args] of JSON.parse(argv[0] || "[]")) done.push(await q.enqueue(queue, klass, args));
          return done;
        }),
      });
    case "failures": // every entry of the failed list, as node-resque's queue.failed reads them
      return out(await withQueue((q) => q.failed(0, -1)));
    case "retry_failure": // I: queue.retryAndRemoveFailed on entry I (needs node's re-encoding to match the bytes)
      return out({
        ok: await withQueue(async (q) => {
          const [entry] = await q.failed(Number(argv[0]), Number(argv[0]));
          if (!entry) throw new Error(`no failure at ${argv[0]}`);
          return q.retryAndRemoveFailed(entry);
        }),
      });
    case "del_by_class": // QUEUE CLASS: queue.delByFunction
      return out({ removed: await withQueue((q) => q.delByFunction(argv[0], argv[1])) });
    case "stats":
      return out(await withQueue((q) => q.stats()));
    case "workers":
      return out(await withQueue((q) => q.workers()));
    case "enqueue_at": // TS(seconds) QUEUE CLASS ARGS_JSON
      await withQueue((q) => q.enqueueAt(Number(argv[0]) * 1000, argv[1], argv[2], jsonArgs(argv[3])));
      return out({ ok: true });
    case "work": // QUEUES: drain, then exit
      return runWorker(argv[0], true);
    case "worker": // QUEUES: long-running, stop with SIGQUIT
      return runWorker(argv[0], false);
    case "scheduler_once": { // move due delayed items to their queues, once, as the leader
      const scheduler = new Scheduler({ connection }, jobs);
      await scheduler.connect();
      await scheduler.poll(); // not started, so it does not reschedule itself
      const leader = scheduler.leader;
      const left = await scheduler.connection.redis.zcard(scheduler.connection.key("delayed_queue_schedule"));
      await scheduler.end(); // releases the leader lock
      return out({ leader, delayed_left: left });
    }
    default:
      out({ error: `unknown command ${JSON.stringify(command)}` });
      process.exitCode = 64;
  }
}

main(process.argv.slice(2)).then(
  () => process.exit(),
  (err) => {
    out({ error: String(err && err.message ? err.message : err) });
    process.exit(1);
  }
);
