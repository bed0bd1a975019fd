"""Hostile uploads against a real web process: each bomb's seconds and the process's peak memory.

    python -m worker.tools.bench_uploads [--repeat 3]

Starts gunicorn with one worker process (so its peak is the one that counts) on a throw-away database, signs
in, then sends every file of worker/tools/upload_corpus.py to the cell upload endpoint (--repeat times),
timing each request from the first byte sent to the answer. The web process's peak resident memory is read
from /proc (VmHWM) before and after. Targets (issue 10): every bomb refused in <= 1 s, peak <= 512 MB.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

DATABASE = "malaria_bench_uploads"


def peak_mb(pid: int) -> float:
    """The highest resident memory of the process and its children (gunicorn's worker), in MB."""
    pids = [pid] + [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    peaks = []
    for one in pids:
        for line in Path(f"/proc/{one}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return max(peaks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    from worker.tools.bench_stack import running_stack
    from worker.tools.upload_corpus import hostile_uploads

    corpus = hostile_uploads()
    rows = []
    with running_stack(database=DATABASE, redis_db=12, web_workers=1, worker_concurrency=None) as stack:
        base, session = stack.base, stack.session
        patient = session.post(f"{base}/patients", json={"identifier": "BOMBS-1"}).json()
        sample = session.post(f"{base}/samples", json={"patient": patient["id"]}).json()
        url = f"{base}/samples/{sample['id']}/images"
        session.post(url, files=[("images", ("warm.png", b"not an image", "image/png"))], timeout=60)
        before = peak_mb(stack.web.pid)
        print(f"web process peak before the bombs: {before:.0f} MB", flush=True)
        for hostile in corpus:
            seconds, statuses = [], set()
            for _ in range(args.repeat):
                started = time.perf_counter()
                response = session.post(
                    url,
                    files=[(hostile.field, (hostile.filename, hostile.data, "application/octet-stream"))],
                    timeout=120,
                )
                seconds.append(time.perf_counter() - started)
                statuses.add(response.status_code)
            reason = response.json()["rejected"][0]["error"] if response.status_code == 400 else response.text[:80]
            rows.append(
                {
                    "name": hostile.name,
                    "bytes": len(hostile.data),
                    "status": sorted(statuses),
                    "max_seconds": round(max(seconds), 3),
                    "reason": reason,
                }
            )
            print(f"{hostile.name:34s} {len(hostile.data):>11,} B  {sorted(statuses)}  {max(seconds):6.3f} s  {reason}")
        after = peak_mb(stack.web.pid)
    bombs = [row for row in rows if "bomb" in row["name"] or "overlapping" in row["name"] or "WebP" in row["name"]]
    result = {
        "files": len(rows),
        "repeat": args.repeat,
        "all_refused_400": all(row["status"] == [400] for row in rows),
        "max_seconds": max(row["max_seconds"] for row in rows),
        "max_bomb_seconds": max(row["max_seconds"] for row in bombs),
        "web_peak_mb_before": round(before, 1),
        "web_peak_mb": round(after, 1),
        "rows": rows,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
