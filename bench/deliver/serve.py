#!/usr/bin/env python3
"""One delivery through `courier serve`, timed from the webhook to the branch on the
server, for the delivery benchmark (run.sh). Prints `wall_s rss_kb`.

  serve.py COURIER CACHE GIT_URL HEAD ZIP SEED JOB REPO_DIR

Writes CACHE.serve.yaml (data directory CACHE, the same target as `courier deliver` in
run.sh), serves ZIP over HTTP on 127.0.0.1, starts the server (not timed), then posts
the seed's job JOB pointing at ZIP and watches the served repository's HEAD ref on disk
(REPO_DIR, the bare repository behind GIT_URL) until it moves (timed). Watching a file
costs next to nothing, where polling the API every few milliseconds took CPU from the
delivery it measured. Then (not timed) the deliveries API must say `delivered`. Peak
RSS is the server's (VmHWM), which includes its start.
"""
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request

HOOK = "bench-webhook-token-0123456789"
ADMIN = "bench-admin-token-abcdef012345"
SEED_URL = ("https://example.supernova.io/codegen/job-results/2/"
            "example-01234567-89ab-cdef/result.zip")


def read_ref(repo_dir, ref):
    """Where `ref` points in the bare repository: its loose file, else packed-refs (a
    `git gc --auto` after a push may have packed it)."""
    try:
        with open(os.path.join(repo_dir, ref)) as f:
            return f.read().strip() or None
    except FileNotFoundError:
        pass
    try:
        with open(os.path.join(repo_dir, "packed-refs")) as f:
            for line in f:
                if line.rstrip("\n").endswith(" " + ref):
                    return line.split()[0]
    except FileNotFoundError:
        pass
    return None


def main():
    courier, cache, git_url, head, zip_path, seed, job, repo_dir = sys.argv[1:]
    ref = "refs/heads/" + head
    with open(zip_path, "rb") as f:
        body = f.read()

    class Artifact(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    artifacts = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Artifact)
    threading.Thread(target=artifacts.serve_forever, daemon=True).start()
    os.makedirs(cache, exist_ok=True)
    config = cache + ".serve.yaml"
    with open(config, "w") as f:
        f.write(f"""data_dir: {cache}
webhook: {{ tokens: ["{HOOK}"] }}
admin: {{ tokens: ["{ADMIN}"] }}
platform:
  download_hosts: ["127.0.0.1"]
  insecure_hosts: ["127.0.0.1"]
connections:
  bench: {{ kind: git, token: "${{BENCH_GIT_TOKEN}}" }}
hooks:
  - match: any
    targets:
      - connection: bench
        repository: {git_url}
        branch: main
        relative_path: design/tokens
        purge_directory: true
        head_branch: "{head}"
        commit_message: "Benchmark delivery"
""")
    out = open(cache + ".serve.out", "w+")
    err = open(cache + ".serve.log", "w")
    proc = subprocess.Popen([courier, "serve", "--config", config, "--listen", "127.0.0.1:0"],
                            stdout=out, stderr=err)
    try:
        addr = None
        deadline = time.time() + 60
        while addr is None and time.time() < deadline:
            out.seek(0)
            for line in out.read().splitlines():
                if line.startswith("listening on "):
                    addr = line.removeprefix("listening on ")
            if proc.poll() is not None:
                sys.exit("courier serve exited: " + open(err.name).read())
            time.sleep(0.02)
        if addr is None:
            sys.exit("courier serve printed no address")
        with open(seed) as f:
            text = f.read()
        port = artifacts.server_address[1]
        event = (text.replace(SEED_URL, f"http://127.0.0.1:{port}/result.zip")
                 .replace('"id": "6"', f'"id": "{job}"')).encode()
        before = read_ref(repo_dir, ref)
        started = time.monotonic()
        req = urllib.request.Request(f"http://{addr}/webhooks/supernova", data=event,
                                     headers={"Authorization": f"Bearer {HOOK}"})
        answer = json.load(urllib.request.urlopen(req))
        delivery = answer["deliveries"][0]
        deadline = started + 600
        while read_ref(repo_dir, ref) in (None, before) and time.monotonic() < deadline:
            time.sleep(0.002)
        wall = time.monotonic() - started
        get = urllib.request.Request(f"http://{addr}/api/deliveries/{delivery}",
                                     headers={"Authorization": f"Bearer {ADMIN}"})
        while True:
            detail = json.load(urllib.request.urlopen(get))
            state = detail["delivery"]["state"]
            if state not in ("queued", "running", "retrying"):
                break
            time.sleep(0.05)
        # The server's own account of where the time went, next to courier.json's.
        with open(cache + ".serve.timings", "a") as f:
            f.write(json.dumps(detail["delivery"]["timings"]) + "\n")
        if state != "delivered":
            sys.exit(f"delivery ended {state}: " + open(err.name).read()[-2000:])
        with open(f"/proc/{proc.pid}/status") as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
        print(f"{wall:.3f} {rss}")
    finally:
        proc.terminate()
        proc.wait(30)
        artifacts.shutdown()


if __name__ == "__main__":
    main()
