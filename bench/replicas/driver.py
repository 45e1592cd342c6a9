#!/usr/bin/env python3
"""Throughput of N `courier serve` replicas sharing one PostgreSQL.

For each replica count (default 1, 2, 3), on a fresh database:

1. Intake: for SECONDS, one `wrk` per replica (CONNECTIONS split evenly between them)
   posts distinct jobs routed to a build-only hook (`targets: []`). Every job is a
   durable insert and nothing is delivered, so this measures webhook intake alone.
   Reported: jobs committed (counted in the database) per second, and the worst p99
   latency among the wrk processes.
2. Deliveries: TARGETS jobs, one per target (a bare repository each, reached over
   file://), posted round-robin at once; each replica runs WORKERS workers. Every job
   is delivered (no supersede, since no target gets two jobs): download the export
   from a local HTTP server, fetch into the replica's cache, commit, push. Reported:
   deliveries finished per second, from the first post to the last finish, read from
   the store.

Each replica has its own data directory (and so its own repository cache), as in
production. PostgreSQL runs from a temporary directory with fsync off, like the test
harness; the figures are for comparing replica counts on one machine, not absolutes.
"""

import argparse
import concurrent.futures
import http.client
import http.server
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile

TOKEN = "bench-webhook-token-0123456789"
SEED_URL = ("https://example.supernova.io/codegen/job-results/2/"
            "example-01234567-89ab-cdef/result.zip")
WAIT = 300  # bound on any wait, seconds


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def pg_bin():
    if os.environ.get("COURIER_PG_BIN"):
        return os.environ["COURIER_PG_BIN"]
    versions = sorted(int(v) for v in os.listdir("/usr/lib/postgresql") if v.isdigit())
    return f"/usr/lib/postgresql/{versions[-1]}/bin"


class Postgres:
    """A throw-away server on a free port, run as `postgres` when we are root."""

    def __init__(self, work):
        self.bin = pg_bin()
        self.dir = os.path.join(work, "pg")
        os.makedirs(self.dir)
        self.root = os.geteuid() == 0
        if self.root:
            run(["chown", "-R", "postgres:postgres", self.dir])
        self.data = os.path.join(self.dir, "data")
        self.as_user(["initdb", "-D", self.data, "-U", "courier", "--auth=trust",
                      "-E", "UTF8", "--no-sync"])
        self.port = free_port()
        self.as_user(["pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "log"), "-w",
                      "-o", f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} "
                            "-c fsync=off -c synchronous_commit=off "
                            "-c full_page_writes=off -c max_connections=300",
                      "start"])

    def as_user(self, cmd):
        cmd = [os.path.join(self.bin, cmd[0])] + cmd[1:]
        if self.root:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        return run(cmd)

    def url(self, db):
        return f"postgres://courier@127.0.0.1:{self.port}/{db}"

    def psql(self, db, sql):
        return run([os.path.join(self.bin, "psql"), "-h", "127.0.0.1", "-p", str(self.port),
                    "-U", "courier", "-d", db, "-Atc", sql]).strip()

    def stop(self):
        try:
            self.as_user(["pg_ctl", "-D", self.data, "-m", "immediate", "stop"])
        except subprocess.CalledProcessError:
            pass


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def export_zip(job):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("colors.css", f":root {{ --job: {job}; }}\n")
        z.writestr("nested/typography.css", ":root { --body: 16px; }\n")
    return buf.getvalue()


class Artifacts(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        name = self.path.rsplit("/", 1)[-1]
        try:
            body = export_zip(int(name.removesuffix(".zip")))
        except ValueError:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def payload(seed, artifacts, job, design_system):
    assert seed.count('"id": "6"') == 1 and seed.count('"id": "2"') == 1
    return (seed.replace(SEED_URL, f"http://{artifacts}/zips/{job}.zip")
            .replace('"id": "2"', f'"id": "{design_system}"')
            .replace('"id": "6"', f'"id": "{job}"'))


def start_replica(courier, home, name, env):
    out = open(os.path.join(home, "stdout"), "w+")
    err = open(os.path.join(home, "serve.log"), "w")
    proc = subprocess.Popen(
        [courier, "serve", "--config", os.path.join(home, "courier.yaml"),
         "--listen", "127.0.0.1:0", "--replica-id", name],
        cwd=home, stdout=out, stderr=err, env=env)
    deadline = time.time() + 60
    while time.time() < deadline:
        out.seek(0)
        for line in out.read().splitlines():
            if line.startswith("listening on "):
                host, port = line.removeprefix("listening on ").rsplit(":", 1)
                return proc, (host, int(port))
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited: {open(err.name).read()}")
        time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"{name} printed no address")


def post_all(addrs, bodies, clients):
    """Posts each body once, round-robin over the replicas, with `clients` threads each
    keeping a connection per replica. Returns (seconds, statuses)."""
    statuses = {}
    lock = threading.Lock()
    chunks = [list(range(i, len(bodies), clients)) for i in range(clients)]

    def client(indices):
        conns = {}
        for i in indices:
            addr = addrs[i % len(addrs)]
            # A kept-alive connection the server has just closed fails the next request;
            # re-sending is safe (a duplicate is answered 200 and counted below).
            for attempt in range(4):
                conn = conns.get(addr) or http.client.HTTPConnection(*addr, timeout=30)
                conns[addr] = conn
                try:
                    conn.request("POST", "/webhooks/supernova", body=bodies[i], headers={
                        "Authorization": f"Bearer {TOKEN}",
                        "Content-Type": "application/json"})
                    resp = conn.getresponse()
                    resp.read()
                    break
                except (http.client.HTTPException, OSError) as e:
                    conn.close()
                    conns.pop(addr)
                    log(f"post to {addr[1]} failed ({e!r}), attempt {attempt + 1}")
                    if attempt == 3:
                        raise
                    time.sleep(0.2 * (attempt + 1))
            with lock:
                statuses[resp.status] = statuses.get(resp.status, 0) + 1

    started = time.time()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        for f in [pool.submit(client, c) for c in chunks]:
            f.result()
    return time.time() - started, statuses


def intake(args, pg, db, addrs, run_no):
    """Runs one wrk per replica at once; returns (jobs committed per second, worst p99 ms)."""
    per = max(1, args.connections // len(addrs))
    env = dict(os.environ, BENCH_TOKEN=TOKEN)
    procs = []
    started = time.time()
    for r, (host, port) in enumerate(addrs):
        procs.append(subprocess.Popen(
            ["wrk", "-t1", f"-c{per}", f"-d{args.intake_seconds}s", "--latency", "-s",
             args.lua, f"http://{host}:{port}/webhooks/supernova"],
            env=dict(env, BENCH_PREFIX=f"run{run_no}-r{r}"), stdout=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=args.intake_seconds + 60)[0] for p in procs]
    secs = time.time() - started
    worst = 0.0
    for out in outs:
        if "Non-2xx" in out:
            raise SystemExit(f"intake answered errors:\n{out}")
        for line in out.splitlines():
            parts = line.split()
            if parts[:1] == ["99%"]:
                value = parts[1]
                ms = (float(value[:-2]) if value.endswith("ms") else
                      float(value[:-2]) / 1000 if value.endswith("us") else
                      float(value[:-1]) * 1000)
                worst = max(worst, ms)
    jobs = int(pg.psql(db, "SELECT count(*) FROM jobs"))
    return jobs / secs, round(worst, 1)


def bench(args, pg, work, seed, artifacts, replicas, run_no):
    db = f"bench_{run_no}"
    pg.psql("postgres", f"CREATE DATABASE {db}")
    repos = os.path.join(work, "repos")
    hooks = [f"""  - match: {{ design_system_id: "intake" }}
    targets: []"""]
    for t in range(args.targets):
        hooks.append(f"""  - match: {{ design_system_id: "t{t:03}" }}
    targets:
      - connection: git
        repository: file://{repos}/r{t:03}.git
        branch: main
        head_branch: courier/bench-{run_no}
        relative_path: tokens""")
    procs, addrs = [], []
    env = dict(os.environ, COURIER_LOG="warn", GIT_CONFIG_NOSYSTEM="1")
    try:
        for r in range(replicas):
            home = os.path.join(work, f"run{run_no}-r{r}")
            os.makedirs(home)
            with open(os.path.join(home, "courier.yaml"), "w") as f:
                f.write(f"""data_dir: ./data
store: {pg.url(db)}
workers: {args.workers}
webhook: {{ tokens: ["{TOKEN}"] }}
platform:
  insecure_hosts: ["127.0.0.1"]
connections:
  git: {{ kind: git }}
hooks:
""" + "\n".join(hooks) + "\n")
            proc, addr = start_replica(args.courier, home, f"r{r}", dict(env, HOME=home))
            procs.append(proc)
            addrs.append(addr)

        base = run_no * 1_000_000
        intake_rate, p99 = intake(args, pg, db, addrs, run_no)

        bodies = [payload(seed, artifacts, base + 500_000 + t, f"t{t:03}")
                  for t in range(args.targets)]
        started = time.time()
        _, statuses = post_all(addrs, bodies, min(args.clients, args.targets))
        assert statuses.get(202) == args.targets and set(statuses) <= {200, 202}, statuses
        deadline = started + WAIT
        while True:
            done, open_ = pg.psql(db, "SELECT count(*) FILTER (WHERE state NOT IN "
                                      "('queued','running','retrying')), count(*) FILTER "
                                      "(WHERE state IN ('queued','running','retrying')) "
                                      "FROM deliveries").split("|")
            if int(open_) == 0 and int(done) == args.targets:
                break
            if time.time() > deadline:
                raise SystemExit(f"{replicas} replicas: {done} done, {open_} open after {WAIT} s")
            time.sleep(0.1)
        first, last = pg.psql(db, "SELECT min(created_at), max(finished_at) FROM deliveries"
                              ).split("|")
        states = pg.psql(db, "SELECT string_agg(state || '=' || n, ' ') FROM "
                             "(SELECT state, count(*) n FROM deliveries GROUP BY state) s")
        by_replica = pg.psql(db, "SELECT string_agg(o || '=' || n, ' ') FROM (SELECT "
                                 "split_part(owner, '-', 1) o, count(*) n FROM attempts "
                                 "GROUP BY 1 ORDER BY 1) s")
        span = (int(last) - int(first)) / 1000
        return {"replicas": replicas, "workers_per_replica": args.workers,
                "intake_per_s": round(intake_rate), "intake_p99_ms": p99,
                "deliveries": args.targets, "delivery_seconds": round(span, 2),
                "deliveries_per_s": round(args.targets / span, 1),
                "states": states, "attempts_by_replica": by_replica}
    except BaseException:
        for r, p in enumerate(procs):
            log(f"--- r{r} exit={p.poll()}")
            with open(os.path.join(work, f"run{run_no}-r{r}", "serve.log")) as f:
                log("".join(f.readlines()[-20:]))
        raise
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--courier", required=True)
    ap.add_argument("--seed", required=True)
    ap.add_argument("--replicas", default="1,2,3,3,2,1",
                    help="replica counts, run in this order (repeat to see the noise)")
    ap.add_argument("--intake-seconds", type=int, default=10, help="length of the intake phase")
    ap.add_argument("--connections", type=int, default=32,
                    help="webhook connections in the intake phase, over all replicas")
    ap.add_argument("--targets", type=int, default=300, help="jobs delivered (one per target)")
    ap.add_argument("--workers", type=int, default=4, help="workers per replica")
    ap.add_argument("--clients", type=int, default=16,
                    help="concurrent clients posting the delivery jobs")
    args = ap.parse_args()
    args.lua = os.path.join(os.path.dirname(os.path.abspath(__file__)), "post.lua")
    seed = open(args.seed).read()
    work = tempfile.mkdtemp(prefix="courier-bench-replicas-")
    if os.geteuid() == 0:
        os.chmod(work, 0o755)
    pg = None
    try:
        pg = Postgres(work)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Artifacts)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        artifacts = f"127.0.0.1:{server.server_address[1]}"
        # One repository per target, copied from a template; every run of a replica
        # count pushes its own head branch, so runs do not see each other's work.
        repos = os.path.join(work, "repos")
        os.makedirs(repos)
        tpl = os.path.join(work, "template")
        run(["git", "init", "-q", "--initial-branch", "main", tpl])
        with open(os.path.join(tpl, "README.md"), "w") as f:
            f.write("# tokens\n")
        run(["git", "-C", tpl, "add", "-A"])
        run(["git", "-C", tpl, "-c", "user.name=bench", "-c", "user.email=b@x",
             "commit", "-qm", "initial"])
        run(["git", "clone", "-q", "--bare", tpl, os.path.join(repos, "r000.git")])
        for t in range(1, args.targets):
            shutil.copytree(os.path.join(repos, "r000.git"), os.path.join(repos, f"r{t:03}.git"))
        results = []
        for run_no, n in enumerate(int(x) for x in args.replicas.split(",")):
            result = bench(args, pg, work, seed, artifacts, n, run_no)
            log(json.dumps(result))
            results.append(result)
        print(f"{'replicas':>8} {'workers':>7} {'intake jobs/s':>13} {'p99 ms':>7} "
              f"{'deliveries/s':>12} {'delivery s':>10}  attempts by replica")
        for r in results:
            print(f"{r['replicas']:>8} {r['replicas'] * r['workers_per_replica']:>7} "
                  f"{r['intake_per_s']:>13} {r['intake_p99_ms']:>7} {r['deliveries_per_s']:>12} "
                  f"{r['delivery_seconds']:>10}  {r['attempts_by_replica']}")
    finally:
        if pg:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
