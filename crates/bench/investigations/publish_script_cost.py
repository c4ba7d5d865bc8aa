"""Where Redis's time per event goes inside the publish script (BENCHMARKS.md, finding 6).

Starts its own `redis-server` on a free loopback port, and calls the bus's publish script
(read from `crates/agent-assist-core/src/bus/redis_store/scripts.rs`, so it is the one the
services run) with batches of 64 events of about 1.4 KB over 100 conversations, half of them
with a subscriber, as a pulled batch arrives. Then the same calls with cut-down scripts: an
empty loop over the same arguments, and the script's steps added one at a time. Prints Redis's
CPU per event (`used_cpu_user + used_cpu_sys` from `INFO cpu`, which includes reading the
request) and its time per event inside the script (`INFO commandstats`), the best of three
runs of each, since this shared machine's noise is about 15 %.

    pip install redis   # the client library
    python3 crates/bench/investigations/publish_script_cost.py
    BATCH=256 python3 crates/bench/investigations/publish_script_cost.py   # 256 events per call
    BOUNDS=1 BATCH=9 python3 crates/bench/investigations/publish_script_cost.py

BOUNDS=1 measures the real script against copies of it with one part taken out (what each
part costs at most), alternated, four runs each. BATCH=9 is the push scenario's call size.

Bounded: 64,000 events per run, 3 runs per variant (4 with BOUNDS=1), loopback only.
"""

import json
import os
import pathlib
import random
import re
import socket
import subprocess
import threading
import time

import redis

ROOT = pathlib.Path(__file__).resolve().parents[3]
SCRIPTS = ROOT / "crates/agent-assist-core/src/bus/redis_store/scripts.rs"
BATCH = int(os.environ.get("BATCH", "64"))  # events per script call
CALLS, RUNS = 64_000 // BATCH, 3

HEAD = "local offsets = {}\nfor i = 0, (#ARGV - 6) / 3 - 1 do\n  local k, a = 3 * i, 7 + 3 * i\n"
TAIL = "  offsets[i + 1] = 1\nend\nreturn offsets\n"
STEPS = [
    ("+ HINCRBY (the offset)", "  local offset = redis.call('HINCRBY', KEYS[k + 1], 'last', 1)\n"),
    ("+ the payload with its offset", "  local payload = ARGV[a] .. ',\"offset\":' .. string.format('%.0f', offset) .. '}'\n"),
    ("+ RPUSH (history)", "  redis.call('RPUSH', KEYS[k + 2], payload)\n"),
    ("+ PUBLISH", "  redis.call('PUBLISH', ARGV[a + 1], payload)\n"),
    ("+ EXISTS, SET EX (redelivery mark)", "  redis.call('EXISTS', KEYS[k + 3])\n  redis.call('SET', KEYS[k + 3], '1', 'EX', 600)\n"),
]


def publish_script():
    """The bus's publish script, as the services run it."""
    return re.findall(r'r#"(.*?)"#', SCRIPTS.read_text(), re.S)[0]


def variants():
    """(name, script): the empty loop, each cumulative step, then the real script."""
    yield "empty loop over the arguments", HEAD + TAIL
    body = ""
    for name, step in STEPS:
        body += step
        yield name, HEAD + body + TAIL
    yield "the publish script (main)", publish_script()


def bounds():
    """(name, script): the real script, then copies without one of its parts."""
    script = publish_script()
    payload = "local payload = ARGV[a] .. ',\"offset\":' .. string.format('%.0f', offset) .. '}'"
    ttl = "redis.call('EXPIRE', seq, ARGV[2])\n  redis.call('EXPIRE', history, ARGV[2])"
    marked = "local marked = ARGV[a + 2] == '1'"
    for part in (payload, ttl, marked):
        assert part in script, f"the publish script no longer has: {part}"
    yield "the publish script (main)", script
    yield "without the payload copy (the raw event stored and published)", script.replace(payload, "local payload = ARGV[a]")
    yield "without the TTL refresh", script.replace(ttl, "")
    yield "without the redelivery mark", script.replace(marked, "local marked = false")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def calls(run):
    conversations = [f"projects/p/conversations/c{i}" for i in range(100)]
    body = json.dumps({"conversation_name": "c", "data": "y" * 1350, "data_type": "new-message-event"})[:-1]
    out = []
    for n in range(CALLS):
        keys, args = [], [10_000, 3_600, 600, 1_250, "PUBLISH", 3]
        for j in range(BATCH):
            c = random.choice(conversations)
            keys += [f"aa:{{{c}}}:seq", f"aa:{{{c}}}:history", f"aa:{{{c}}}:dedup:m:{run}-{n}-{j}"]
            args += [body, f"aa:{{{c}}}:events", "1"]
        out.append((keys, args))
    return out, [f"aa:{{{c}}}:events" for c in conversations[:50]]


def measure(script, run):
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(host="127.0.0.1", port=port)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        sha = client.script_load(script)
        batches, channels = calls(run)
        subscriber = redis.Redis(host="127.0.0.1", port=port).pubsub()
        subscriber.subscribe(*channels)
        stop = threading.Event()

        def read_published():
            while not stop.is_set():
                subscriber.get_message(timeout=0.1)

        reader = threading.Thread(target=read_published)
        reader.start()
        client.config_resetstat()
        before = client.info("cpu")
        for i in range(0, CALLS, 4):
            pipe = client.pipeline(transaction=False)
            for keys, args in batches[i : i + 4]:
                pipe.evalsha(sha, len(keys), *keys, *args)
            pipe.execute()
        after = client.info("cpu")
        inside = client.info("commandstats")["cmdstat_evalsha"]["usec_per_call"] / BATCH
        stop.set()
        reader.join()
        cpu = sum(after[f] - before[f] for f in ("used_cpu_user", "used_cpu_sys"))
        return cpu * 1e6 / (BATCH * CALLS), inside
    finally:
        server.terminate()
        server.wait()


def main():
    print(f"| script ({BATCH} events per call) | Redis CPU per event | inside the script per event |")
    print("|---|---|---|")
    if os.environ.get("BOUNDS") == "1":
        scripts = list(bounds())
        runs = {name: [] for name, _ in scripts}
        for run in range(4):
            for name, script in scripts:
                runs[name].append(measure(script, run))
        for name, results in runs.items():
            cpu = ", ".join(f"{c:.1f}" for c, _ in sorted(results))
            inside = ", ".join(f"{i:.1f}" for i in sorted(i for _, i in results))
            print(f"| {name} | {cpu} µs | {inside} µs |", flush=True)
        return
    for name, script in variants():
        cpu, inside = min(measure(script, run) for run in range(RUNS))
        print(f"| {name} | {cpu:.1f} µs | {inside:.1f} µs |", flush=True)


if __name__ == "__main__":
    main()
