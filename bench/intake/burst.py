#!/usr/bin/env python3
"""A burst of distinct jobs against a running `courier serve`, then proof that each was
delivered exactly once.

Posts N distinct `job:updated` events as fast as C connections allow; job i names hook
`h{i mod R}`, routed to its own head branch (`courier/{{ job.id }}`) of repository
`r{i mod R}.git`, so none supersedes another. Then waits for the queue to drain and checks, from the store and from git:

* every post was answered 202 with one delivery id, and the ids are distinct;
* every delivery is `delivered`, with exactly one attempt;
* the repositories have one branch per job, each exactly one commit on top of `main`.

Usage (bench/intake/burst.sh sets everything up):
  burst.py ADDR TOKEN ARTIFACT_URL DB REPOS_DIR [N] [CONNECTIONS] [R]
"""

import http.client
import json
import queue
import sqlite3
import subprocess
import sys
import threading
import time

SEED = {
    "event": "job:updated",
    "workspace": {"id": "1", "name": "Example workspace"},
    "designSystem": {"id": "2", "name": "Example Design System"},
    "designSystemVersion": {"id": "3", "name": "A version name", "version": "v0.1"},
    "exporter": {"id": "4", "name": "Example exporter"},
    "hook": {"id": "5", "name": "Example hook"},
    "job": {"id": "", "status": "Success", "logs": [], "urls": []},
}


def post_all(addr, token, artifact, n, connections, repos):
    host, port = addr.rsplit(":", 1)
    work = queue.Queue()
    for i in range(n):
        work.put(i)
    answers = {}
    failures = []
    lock = threading.Lock()

    def client():
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        while True:
            try:
                i = work.get_nowait()
            except queue.Empty:
                return
            body = dict(SEED)
            body["job"] = dict(SEED["job"], id=f"burst-{i:05d}", urls=[artifact])
            body["hook"] = dict(SEED["hook"], id=f"h{i % repos}")
            data = json.dumps(body).encode()
            headers = {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
            }
            try:
                conn.request("POST", "/webhooks/supernova", data, headers)
                response = conn.getresponse()
                text = response.read()
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=60)
                with lock:
                    failures.append(f"job {i}: {e}")
                continue
            with lock:
                if response.status != 202:
                    failures.append(f"job {i}: HTTP {response.status} {text[:200]!r}")
                else:
                    answers[i] = json.loads(text)["deliveries"]

    threads = [threading.Thread(target=client) for _ in range(connections)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers, failures, time.monotonic() - start


def queue_depth(db):
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        (left,) = conn.execute(
            "SELECT count(*) FROM deliveries WHERE state IN ('queued', 'running', 'retrying')"
        ).fetchone()
    return left


def main():
    addr, token, artifact, db, repos_dir = sys.argv[1:6]
    n = int(sys.argv[6]) if len(sys.argv) > 6 else 10_000
    connections = int(sys.argv[7]) if len(sys.argv) > 7 else 64
    repos = int(sys.argv[8]) if len(sys.argv) > 8 else 100

    started = time.monotonic()
    answers, failures, took = post_all(addr, token, artifact, n, connections, repos)
    print(f"posted {n} distinct jobs over {connections} connections in {took:.1f} s "
          f"({n / took:.0f} accepted/s); failures: {len(failures)}")
    for f in failures[:10]:
        print("  ", f)
    ids = [d for ds in answers.values() for d in ds]
    problems = []
    if len(answers) != n or len(failures) != 0:
        problems.append(f"{n - len(answers)} posts were not accepted")
    if any(len(ds) != 1 for ds in answers.values()):
        problems.append("a post was answered with other than one delivery id")
    if len(set(ids)) != len(ids):
        problems.append("delivery ids are not distinct")

    while True:
        left = queue_depth(db)
        if left == 0:
            break
        print(f"  {time.monotonic() - started:6.1f} s: {left} deliveries waiting or running",
              flush=True)
        time.sleep(5)
    drained = time.monotonic() - started
    print(f"every delivery finished {drained:.1f} s after the burst began "
          f"({n / drained:.1f} deliveries/s end to end)")

    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        states = dict(conn.execute("SELECT state, count(*) FROM deliveries GROUP BY state"))
        attempts = dict(conn.execute(
            "SELECT n, count(*) FROM (SELECT count(*) AS n FROM attempts GROUP BY delivery_id) "
            "GROUP BY n"))
        stored = {row[0] for row in conn.execute("SELECT id FROM deliveries")}
    print(f"delivery states: {states}; deliveries by attempt count: {attempts}")
    if states != {"delivered": n}:
        problems.append(f"expected {n} delivered, got {states}")
    if attempts != {1: n}:
        problems.append(f"expected one attempt each, got {attempts}")
    if stored != set(ids):
        problems.append("the store's deliveries are not the ids answered")

    # Two jobs delivered in the same second may make the very same commit (same tree,
    # parent, message and time), so commits are not expected to be distinct.
    branches = 0
    for r in range(repos):
        git = ["git", "--git-dir", f"{repos_dir}/r{r}.git"]
        base = subprocess.check_output(git + ["rev-parse", "main"], text=True).strip()
        parents = subprocess.check_output(
            git + ["for-each-ref", "--format=%(parent)", "refs/heads/courier/"], text=True
        ).splitlines()
        branches += len(parents)
        if any(parent != base for parent in parents):
            problems.append(f"a branch of r{r}.git is not exactly one commit on top of main")
    print(f"branches: {branches}")
    if branches != n:
        problems.append(f"expected {n} branches, got {branches}")

    if problems:
        print("FAILED:\n  " + "\n  ".join(problems))
        sys.exit(1)
    print(f"OK: {n} jobs accepted, each delivered exactly once")


if __name__ == "__main__":
    main()
