#!/usr/bin/env python3
"""The dashboard with a long history: how long `courier serve` takes over its pages when
the store holds DELIVERIES deliveries, on SQLite and on PostgreSQL.

For each backend:

1. `courier serve` starts on an empty store (which migrates it) with 20 targets under 5
   hook entries, and stops.
2. The store is filled directly (SQLite: Python's sqlite3; PostgreSQL: psql COPY) with
   DELIVERIES / 4 jobs of 4 deliveries each, created over the last 100 days (about 1,000 a
   day), in a production-like mix of states: mostly delivered, some up to date, no
   changes, superseded, failed or diverged, and a few waiting to be retried next week (so
   no worker picks them up). The statistics are left as a fresh install leaves them.
3. `courier serve` starts again; the benchmark signs in, then asks for each page RUNS
   times after a few warm-up requests, and reads the server's own time from the
   `Server-Timing` header (the network and the client are not in it). Reported: median
   and 95th percentile, in milliseconds.

Usage: bench.py --courier target/release/courier [--deliveries 100000] [--runs 30]
"""

import argparse
import csv
import io
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "replicas"))
from driver import Postgres, free_port, log  # noqa: E402  (the same throw-away server)

ADMIN = "bench-admin-token-0123456789"
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
HOOKS, TARGETS_PER_HOOK = 5, 4
DAY_MS = 24 * 3600 * 1000
# State, share of deliveries.
MIX = [("delivered", 0.85), ("up_to_date", 0.05), ("no_changes", 0.03),
       ("superseded", 0.03), ("failed", 0.02), ("branch_diverged", 0.01),
       ("skipped", 0.01)]


def ulid(millis):
    """A Courier id: 48 bits of milliseconds, 80 random bits, Crockford base 32."""
    value = (millis << 80) | random.getrandbits(80)
    return "".join(ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(26)))


def targets():
    for h in range(HOOKS):
        for t in range(TARGETS_PER_HOOK):
            yield h, f"forge:https://git.example.com/team/repo{t}.git@main:tokens/h{h}"


def config(work, store):
    lines = [
        f"listen: 127.0.0.1:{free_port()}",
        f"data_dir: {work}/data",
        "workers: 1",
        f"admin: {{ tokens: [\"{ADMIN}\"] }}",
    ]
    if store:
        lines.append(f"store: \"{store}\"")
    lines += ["connections:", "  forge: { kind: git }", "hooks:"]
    for h in range(HOOKS):
        lines += [f"  - name: \"Hook {h}\"", f"    match: {{ hook_id: \"h{h}\" }}",
                  "    targets:"]
        for t in range(TARGETS_PER_HOOK):
            lines += ["      - connection: forge",
                      f"        repository: https://git.example.com/team/repo{t}.git",
                      "        branch: main",
                      f"        relative_path: tokens/h{h}"]
    path = os.path.join(work, "courier.yaml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path, int(lines[0].rsplit(":", 1)[1])


def rows(deliveries):
    """(jobs, deliveries) rows in column order, oldest first."""
    random.seed(15)
    now = int(time.time() * 1000)
    jobs, out = [], []
    per_job = TARGETS_PER_HOOK
    count = deliveries // per_job
    all_targets = list(targets())
    states = [s for s, _ in MIX]
    weights = [w for _, w in MIX]
    for j in range(count):
        created = now - 100 * DAY_MS + (100 * DAY_MS * j) // count
        h = j % HOOKS
        job_ref = ulid(created)
        jobs.append((job_ref, "ws1", f"job-{j}", f"h{h}", "ds1", "Success", 0, "routed", None,
                     None, created, created, "Acme design system", f"Release {j // 100} v1.{j}",
                     "Tokens to CSS"))
        for t in range(per_job):
            key = all_targets[h * TARGETS_PER_HOOK + t][1]
            state = random.choices(states, weights)[0]
            finished = created + 20_000
            error = {"failed": "the push was refused: permission denied",
                     "branch_diverged": "someone else committed to the branch",
                     "superseded": "superseded"}.get(state)
            repo = f"https://git.example.com/team/repo{t}.git"
            branch = f"courier/h{h}/main-tokens-{t}"
            out.append((ulid(created + t), job_ref, key, f"h{h}", repo, branch,
                        f"{repo}\n{branch}", state, 1, 0, None, None, None, error,
                        f"https://git.example.com/team/repo{t}/pull/{j}"
                        if state == "delivered" else None,
                        None, 1, 2, 0, "[]", created, created + 1000, finished, "forge"))
    # A few waiting for next week's retry: the queue is never empty in life.
    for d in random.sample(range(len(out)), 50):
        row = list(out[d])
        row[7], row[10], row[22] = "retrying", now + 7 * DAY_MS, None
        out[d] = tuple(row)
    return jobs, out


JOB_COLUMNS = ("id, workspace_id, job_id, hook_id, design_system_id, status, ignored, "
               "routing, routing_reason, body, received_at, updated_at, design_system_name, "
               "version_name, exporter_name")
DELIVERY_COLUMNS = ("id, job_ref, target_key, hook_id, repository, head_branch, serial_key, "
                    "state, attempts, run_base, next_attempt_at, lease_owner, "
                    "lease_expires_at, last_error, pr_url, pushed_commit, files_added, "
                    "files_modified, files_deleted, warnings, created_at, started_at, "
                    "finished_at, connection")


def fill_sqlite(path, jobs, deliveries):
    db = sqlite3.connect(path)
    with db:
        db.executemany(f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES ({', '.join('?' * 15)})", jobs)
        db.executemany(f"INSERT INTO deliveries ({DELIVERY_COLUMNS}) "
                       f"VALUES ({', '.join('?' * 24)})", deliveries)
    db.close()


def fill_postgres(pg, db, jobs, deliveries):
    for table, columns, data in (("jobs", JOB_COLUMNS, jobs),
                                 ("deliveries", DELIVERY_COLUMNS, deliveries)):
        buf = io.StringIO()
        writer = csv.writer(buf)
        for row in data:
            writer.writerow(["\\N" if v is None else v for v in row])
        subprocess.run(
            [os.path.join(pg.bin, "psql"), "-h", "127.0.0.1", "-p", str(pg.port), "-U",
             "courier", "-d", db, "-c",
             f"\\copy {table} ({columns}) FROM STDIN WITH (FORMAT csv, NULL '\\N')"],
            input=buf.getvalue(), text=True, check=True, capture_output=True)


class Serve:
    def __init__(self, courier, config_path, port, log_path):
        self.port = port
        self.log = open(log_path, "a")
        self.proc = subprocess.Popen([courier, "serve", "--config", config_path],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1)
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        raise SystemExit(f"courier serve did not start; see {log_path}")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args):
        return None


def sign_in(port):
    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/ui/sign-in", data=f"token={ADMIN}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        opener.open(request)
    except urllib.error.HTTPError as answer:
        cookie = answer.headers["Set-Cookie"].split(";")[0]
        return cookie
    raise SystemExit("signing in did not redirect")


def server_ms(port, cookie, path):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                     headers={"Cookie": cookie})
    with urllib.request.urlopen(request) as answer:
        answer.read()
        timing = answer.headers["Server-Timing"]
    return float(timing.split("dur=")[1])


def measure(port, runs, pages):
    cookie = sign_in(port)
    # The stored history is what the pages read: every target has a newest delivery.
    request = urllib.request.Request(f"http://127.0.0.1:{port}/ui/routes",
                                     headers={"Cookie": cookie})
    routes = urllib.request.urlopen(request).read().decode()
    if "none yet" in routes or "state-" not in routes:
        raise SystemExit("the routes page does not show the stored deliveries")
    results = []
    for name, path in pages:
        for _ in range(3):
            server_ms(port, cookie, path)
        times = sorted(server_ms(port, cookie, path) for _ in range(runs))
        p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
        results.append((name, statistics.median(times), p95))
    return results


def pages(jobs, deliveries):
    a_failed = next(d for d in deliveries if d[7] == "failed")
    middle = jobs[len(jobs) // 2][2]
    return [
        ("deliveries, first page", "/ui/"),
        ("deliveries, page 1,000 deep", f"/ui/?after={deliveries[len(deliveries) // 2][0]}"),
        ("state = failed", "/ui/?state=failed"),
        ("hook", "/ui/?hook=h3"),
        ("repository", "/ui/?repository=" + urllib.parse.quote(deliveries[0][4], safe="")),
        ("connection", "/ui/?connection=forge"),
        ("job id", f"/ui/?job={middle}"),
        ("search, common text", "/ui/?q=repo3"),
        ("search, rare text", f"/ui/?q={urllib.parse.quote(middle + ' ')}"),
        ("routes (20 targets)", "/ui/routes"),
        ("a delivery", f"/ui/deliveries/{a_failed[0]}"),
    ]


def run_backend(args, backend, work):
    pg = None
    store = None
    if backend == "postgres":
        pg = Postgres(work)
        pg.psql("postgres", "CREATE DATABASE dashboard")
        store = pg.url("dashboard")
    try:
        path, port = config(work, store)
        log_path = os.path.join(work, f"serve-{backend}.log")
        Serve(args.courier, path, port, log_path).stop()  # migrates the empty store
        jobs, deliveries = rows(args.deliveries)
        started = time.time()
        if pg:
            fill_postgres(pg, "dashboard", jobs, deliveries)
        else:
            fill_sqlite(os.path.join(work, "data", "courier.db"), jobs, deliveries)
        log(f"{backend}: {len(deliveries)} deliveries stored in {time.time() - started:.1f} s")
        serve = Serve(args.courier, path, port, log_path)
        try:
            return measure(port, args.runs, pages(jobs, deliveries))
        finally:
            serve.stop()
    finally:
        if pg:
            pg.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--courier", required=True)
    parser.add_argument("--deliveries", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    results = {}
    for backend in args.backends.split(","):
        work = tempfile.mkdtemp(prefix=f"courier-dashboard-{backend}-")
        if os.geteuid() == 0:
            os.chmod(work, 0o755)
        try:
            results[backend] = run_backend(args, backend, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    backends = list(results)
    print(f"\n{args.deliveries:,} deliveries; server time in ms, median / p95 of "
          f"{args.runs} requests\n")
    print("| page | " + " | ".join(backends) + " |")
    print("| --- | " + " | ".join("---:" for _ in backends) + " |")
    for i, (name, _, _) in enumerate(results[backends[0]]):
        cells = [f"{results[b][i][1]:.1f} / {results[b][i][2]:.1f}" for b in backends]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
