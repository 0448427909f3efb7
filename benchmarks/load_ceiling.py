"""The load generator's own ceiling vs the built-in pipeline's throughput on this machine (target: >= 50x).

A trivial endpoint (an asyncio HTTP/1.1 responder in a child process, keep-alive, fixed 2-byte answer) is
driven by ``profkit load``'s closed-loop Locust users (one ``profkit.load.worker`` child, or with ``--workers N``
Locust's master and N worker children) at a fixed user count; the answered requests per second are the
generator's ceiling here (a lower bound: the endpoint shares the cores). The built-in tiny pipeline (64x64,
2 steps) is timed in another child, images per second.

    python benchmarks/load_ceiling.py                    # 32 users, 3 s, 1 worker process
    python benchmarks/load_ceiling.py --workers 2 --check   # Locust master + 2 workers; exit 1 below 50x
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time

ENDPOINT = r"""
import asyncio, sys
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nServer-Timing: total;dur=0\r\n\r\nok"
async def serve(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if length:
                await reader.readexactly(length)
            writer.write(ANSWER)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", int(sys.argv[1]), backlog=1024)
    async with server:
        await server.serve_forever()
asyncio.run(main())
"""

PIPELINE = r"""
import time, torch
from profkit.pipelines.builtin import build_tiny_sd
torch.set_num_threads(2)
pipe = build_tiny_sd()
call = lambda: pipe("a photo of a cat", num_inference_steps=2, height=64, width=64, output_type="np")
call()
n, t0 = 0, time.perf_counter()
while n < 20 and time.perf_counter() - t0 < 10:
    call(); n += 1
print(n / (time.perf_counter() - t0))
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def generator_ceiling(users: int, duration_s: float, workers: int) -> float:
    from profkit.load.runner import LoadSettings, run_level

    port = _free_port()
    server = subprocess.Popen([sys.executable, "-c", ENDPOINT, str(port)])
    try:
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        template = {"method": "POST", "headers": {"Content-Type": "application/json"}, "body": {"n": 1}}
        settings = LoadSettings(url=f"http://127.0.0.1:{port}/", duration_s=duration_s, workers=workers,
                                template=template)  # fmt: skip
        level = run_level(settings, users=users)
        if level.error_rate:
            print(f"warning: {level.error_rate:.1%} errors against the trivial endpoint: {level.errors}")
        return level.rps
    finally:
        server.terminate()
        server.wait(timeout=10)


def pipeline_throughput() -> float:
    run = subprocess.run([sys.executable, "-c", PIPELINE], capture_output=True, text=True, timeout=600, check=True)
    return float(run.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--check", action="store_true", help="exit 1 when the ratio is below 50")
    args = parser.parse_args()
    ceiling = generator_ceiling(args.users, args.duration, args.workers)
    pipeline = pipeline_throughput()
    ratio = ceiling / pipeline if pipeline else float("inf")
    print(f"load generator ceiling: {ceiling:,.0f} req/s ({args.users} users, {args.workers} worker process(es))")
    print(f"built-in pipeline (tiny-sd, 64x64, 2 steps): {pipeline:,.2f} images/s")
    print(f"ratio: {ratio:,.0f}x (target >= 50x)")
    return 1 if args.check and ratio < 50 else 0


if __name__ == "__main__":
    sys.exit(main())
