#!/usr/bin/env python3
"""Load for benchmarks/streaming.sh: fast GETs at a fixed rate (open model, a new connection
each, as a browser's first request), optionally with long streaming responses in flight.
Each request ends when its body is complete by Content-Length, as HTTP clients do, not when
the server closes. Prints one line: n= failed= p50= p90= p99= max= over50= (milliseconds)."""
import argparse, asyncio, random, sys, time


async def get(host, port, path):
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = None
        for line in head.split(b"\r\n")[1:]:
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        if length is None:
            await reader.read()
        else:
            await reader.readexactly(length)
        return status
    finally:
        writer.close()


async def streamer(targets, first, path, stop, failures):
    """Requests one stream after another (a random length each) until `stop`."""
    n = first
    while time.perf_counter() < stop:
        host, port = targets[n % len(targets)]
        n += 1
        try:
            status = await get(host, port, path.replace("SECONDS", f"{random.uniform(1, 3):.2f}"))
            if status != 200:
                failures.append(f"stream: {status}")
        except Exception as error:  # counted, and a pause so a dead target is not hammered
            failures.append(f"stream: {error!r}")
            await asyncio.sleep(0.1)


async def fast(targets, rate, duration, path, latencies, failures):
    async def one(k):
        host, port = targets[k % len(targets)]
        start = time.perf_counter()
        try:
            status = await get(host, port, path)
            if status != 200:
                failures.append(f"fast: {status}")
        except Exception as error:
            failures.append(f"fast: {error!r}")
        latencies.append((time.perf_counter() - start) * 1000)

    begin, tasks, i = time.perf_counter(), [], 0
    while i / rate < duration:
        delay = begin + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
        i += 1
    await asyncio.gather(*tasks)


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", action="append", required=True, help="host:port (repeat to round-robin)")
    parser.add_argument("--rate", type=float, default=100, help="fast requests per second")
    parser.add_argument("--duration", type=float, default=10, help="seconds of fast requests")
    parser.add_argument("--streams", type=int, default=0, help="streams kept in flight")
    parser.add_argument("--stream-path", default="/drip?duration=SECONDS&numbytes=20&delay=0")
    parser.add_argument("--fast-path", default="/get")
    args = parser.parse_args()
    targets = [(t.rsplit(":", 1)[0], int(t.rsplit(":", 1)[1])) for t in args.target]
    random.seed(7)
    stop = time.perf_counter() + args.duration + 1
    failures, latencies = [], []
    streams = [asyncio.create_task(streamer(targets, k, args.stream_path, stop, failures)) for k in range(args.streams)]
    if streams:
        await asyncio.sleep(1)  # streams under way before the measurement starts
    await fast(targets, args.rate, args.duration, args.fast_path, latencies, failures)
    for task in streams:
        task.cancel()
    for failure in failures[:5]:
        print(failure, file=sys.stderr)
    over = sum(1 for value in latencies if value > 50)
    print(f"n={len(latencies)} failed={len(failures)} p50={percentile(latencies, .5):.1f} p90={percentile(latencies, .9):.1f} "
          f"p99={percentile(latencies, .99):.1f} max={max(latencies):.1f} over50={100 * over / len(latencies):.2f}")


asyncio.run(main())
