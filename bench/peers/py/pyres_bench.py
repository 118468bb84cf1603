"""pyres enqueue driver (runs in the bench's own venv with pyres installed).

    python pyres_bench.py enqueue N QUEUE
        one by one with ResQ.enqueue (the queue is Noop.queue); prints {"seconds": s}

The workers are pyres's own CLIs (pyres_manager, pyres_worker), started by the harness.
Env: BENCH_REDIS=host:port.
"""

import json
import os
import sys
import time

from peer_jobs import Noop
from pyres import ResQ

command, args = sys.argv[1], sys.argv[2:]
if command != "enqueue":
    sys.exit(f"unknown command {command}")
resq = ResQ(server=os.environ.get("BENCH_REDIS", "127.0.0.1:6379"))
n = int(args[0])
t0 = time.perf_counter()
for i in range(n):
    resq.enqueue(Noop, i)
print(json.dumps({"seconds": time.perf_counter() - t0}))
