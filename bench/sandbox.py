"""Benchmark: a small autograd submission through the warm sandbox vs a cold ``python -c``.

    .venv/bin/python bench/sandbox.py [--warm 60] [--cold 8] [--burst 200]

Both are measured in the same run on the same machine: the warm path end to end as the bot sees it
(``Sandbox.evaluate``: request, fork of a warm worker, run, checks, cleanup, validated reply), the
cold path as a fresh interpreter that imports torch and runs the same code and check. Then the
throughput of the default pool (one worker per core) under a burst of concurrent submissions
(with a queue long enough to hold the burst), what the default bounded queue does with the same
burst (how many run, how many are answered "busy", how long the accepted ones waited), and the
memory one hostile run can take from the machine (peak drop of MemAvailable while it runs), for
the attack that used to take 3.3 GB. The last line is the p50 ratio. A benchmark, not a test: it
asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.sandbox import Sandbox, SandboxConfig
from dialogs.evaluation import CheckSpec

SUBMISSION = """\
import torch
x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
w = torch.tensor(0.5, requires_grad=True)
loss = ((w * x - 1.0) ** 2).mean()
loss.backward()
print("loss", round(loss.item(), 4))
"""
CHECK = CheckSpec("grads", "assert x.grad is not None and abs(w.grad.item() - 2 / 3) < 1e-6, w.grad")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def describe(name: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return (
        f"{name:<6} n={len(ms):<4} p50 {percentile(ms, 50):8.1f} ms   p95 {percentile(ms, 95):8.1f} ms   "
        f"mean {statistics.fmean(ms):8.1f} ms"
    )


def cold_runs(count: int) -> list[float]:
    program = SUBMISSION + CHECK.code + "\n"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "OMP_NUM_THREADS": "1"}
    times = []
    for _ in range(count):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", program], capture_output=True, env=env, check=False)
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"the cold run failed: {done.stderr.decode(errors='replace')}")
    return times


async def warm_runs(sandbox: Sandbox, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        outcome = await sandbox.evaluate(SUBMISSION, [CHECK])
        times.append(time.perf_counter() - started)
        if not outcome.passed:
            raise SystemExit(f"the warm run failed: {outcome}")
    return times


async def burst(sandbox: Sandbox, count: int) -> float:
    started = time.perf_counter()
    outcomes = await asyncio.gather(*(sandbox.evaluate(SUBMISSION, [CHECK]) for _ in range(count)))
    elapsed = time.perf_counter() - started
    if not all(o.passed for o in outcomes):
        raise SystemExit(f"a burst run failed: {next(o for o in outcomes if not o.passed)}")
    return count / elapsed


async def bounded_queue(count: int) -> str:
    """The default queue under the same burst: accepted, refused, the accepted ones' waits."""
    config = SandboxConfig()
    async with Sandbox(config) as sandbox:
        outcomes = await asyncio.gather(*(sandbox.evaluate(SUBMISSION, [CHECK]) for _ in range(count)))
    ran = [o for o in outcomes if o.status != "busy"]
    waits = [float(o.extra.get("queued_ms", 0)) for o in ran]
    return (
        f"bounded queue (default: {config.queue_limit} waiting, {config.queue_seconds:g} s): burst of {count}: "
        f"{len(ran)} ran, {count - len(ran)} answered busy at once; queued p50 {percentile(waits, 50):.0f} ms, "
        f"max {max(waits):.0f} ms"
    )


HOG = """\
import os, threading
def touch():
    try:
        block = bytearray(900 << 20)
        for i in range(0, len(block), 4096):
            block[i] = 1
    except MemoryError:
        pass
forked = 0
for _ in range(4):  # the issue's attack: four children each touching 900 MiB
    try:
        if os.fork() == 0:
            touch()
            os._exit(0)
        forked += 1
    except OSError:
        pass
threads = [threading.Thread(target=touch) for _ in range(4)]  # and the same with threads
for t in threads:
    t.start()
for t in threads:
    t.join()
print("forked", forked)
"""


def mem_available() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) << 10
    return 0


async def hostile_memory() -> str:
    config = SandboxConfig(workers=1)
    async with Sandbox(config) as sandbox:
        await sandbox.evaluate("x = 1", [])
        baseline = mem_available()
        lowest = baseline
        run = asyncio.create_task(sandbox.evaluate(HOG, []))
        while not run.done():
            lowest = min(lowest, mem_available())
            await asyncio.sleep(0.005)
        outcome = run.result()
    taken = (baseline - lowest) >> 20
    return (
        f"one hostile run (4 forks + 4 threads, each touching 900 MiB; limit {config.memory_mb} MiB): "
        f"took at most {taken} MiB from the machine; status {outcome.status}, {outcome.stdout.strip() or '-'}, "
        f"the run's max RSS {outcome.extra.get('max_rss_kb', 0) >> 10} MiB"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warm", type=int, default=60, help="sequential warm submissions")
    parser.add_argument("--cold", type=int, default=8, help="sequential cold python -c runs")
    parser.add_argument("--burst", type=int, default=200, help="concurrent submissions for the throughput")
    args = parser.parse_args()

    config = SandboxConfig(queue_limit=max(args.burst, 1))  # the throughput burst must not be refused
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}; pool of {config.workers} workers")
    started = time.perf_counter()
    async with Sandbox(config) as sandbox:
        print(
            f"start-up of the pool (torch imported in each worker): {time.perf_counter() - started:.2f} s; "
            f"isolation: {sandbox.isolation}"
        )
        await warm_runs(sandbox, 3)  # first touches of the page cache
        warm = await warm_runs(sandbox, args.warm)
        rate = await burst(sandbox, args.burst)
    queue = await bounded_queue(args.burst)
    memory = await hostile_memory()
    cold = cold_runs(args.cold)
    print(queue)
    print(memory)
    print(describe("warm", warm))
    print(describe("cold", cold))
    print(
        f"throughput: {rate:.1f} submissions/s with the default pool ({config.workers} workers, burst of {args.burst})"
    )
    ratio = percentile(cold, 50) / percentile(warm, 50)
    print(
        f"warm p50 {percentile(warm, 50) * 1000:.1f} ms vs cold p50 {percentile(cold, 50) * 1000:.0f} ms: "
        f"{ratio:.0f}x faster"
    )


if __name__ == "__main__":
    asyncio.run(main())
