#!/usr/bin/env python3
"""Deterministic fixtures for the delivery benchmark (standard library + git CLI only).

  fixtures.py repo  BARE_PATH NFILES   a bare repository with NFILES files on `main`
                                       (two commits of history), 30 of them under
                                       design/tokens/ (the delivery path)
  fixtures.py zip   ZIP_PATH NFILES TOTAL_BYTES
                                       a result archive: NFILES text files (JSON/CSS/SVG
                                       like an exporter's), about TOTAL_BYTES in all
  fixtures.py advance BARE_PATH N      N small commits on `main` (the base moves on),
                                       made with git plumbing, outside design/tokens/
  fixtures.py held SRC DST ZIP         DST: a copy of the bare repository SRC whose
                                       design/tokens/ holds an earlier version of ZIP's
                                       export: 10% of its files differ, 2% are missing
                                       (new in the export), 2% more exist (gone from it)
"""
import os
import random
import subprocess
import sys
import tempfile
import time
import zipfile

# gc.auto=0: a commit of 100,000 files would start `git gc --auto` in the background,
# still writing into the work tree's objects/ while its temporary directory is removed.
ENV = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null",
           GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="gc.auto", GIT_CONFIG_VALUE_0="0",
           GIT_AUTHOR_NAME="Bench", GIT_AUTHOR_EMAIL="bench@example.invalid",
           GIT_COMMITTER_NAME="Bench", GIT_COMMITTER_EMAIL="bench@example.invalid")
WORDS = ("color primary secondary surface spacing radius shadow font weight size "
         "line height border opacity motion duration easing brand neutral accent").split()


def git(*args, cwd=None, env=None, data=None):
    out = subprocess.run(("git",) + args, cwd=cwd, env=env or ENV, input=data,
                         stdout=subprocess.PIPE, check=True)
    return out.stdout.decode().strip()


def text(rng, size):
    parts = []
    n = 0
    while n < size:
        w = "%s-%s: %d;\n" % (rng.choice(WORDS), rng.choice(WORDS), rng.randrange(1000))
        parts.append(w)
        n += len(w)
    return "".join(parts)[:size]


def make_repo(bare, nfiles):
    rng = random.Random(nfiles)
    with tempfile.TemporaryDirectory() as tmp:
        wt = os.path.join(tmp, "wt")
        git("init", "-q", "--initial-branch", "main", wt)
        for i in range(nfiles - 30):
            d = os.path.join(wt, "src", "m%03d" % (i // 200), "p%02d" % (i % 200 // 20))
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "f%05d.ts" % i), "w") as f:
                f.write(text(rng, rng.randrange(200, 4000)))
        tokens = os.path.join(wt, "design", "tokens")
        os.makedirs(tokens, exist_ok=True)
        for i in range(30):
            with open(os.path.join(tokens, "old%02d.json" % i), "w") as f:
                f.write(text(rng, 1500))
        git("add", "-A", cwd=wt)
        git("commit", "-q", "-m", "initial", cwd=wt)
        with open(os.path.join(wt, "README.md"), "w") as f:
            f.write("# bench repository, %d files\n" % nfiles)
        git("add", "-A", cwd=wt)
        git("commit", "-q", "-m", "readme", cwd=wt)
        git("clone", "-q", "--bare", wt, bare)
    git("config", "uploadpack.allowFilter", "true", cwd=bare)
    git("config", "uploadpack.allowAnySHA1InWant", "true", cwd=bare)
    git("gc", "-q", cwd=bare)


def make_zip(path, nfiles, total):
    rng = random.Random(nfiles * 7 + 1)
    per = max(total // nfiles, 16)
    kinds = (("json", "tokens"), ("css", "styles"), ("svg", "icons"))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(nfiles):
            ext, folder = kinds[i % 3]
            name = "%s/g%03d/item%05d.%s" % (folder, i // 100, i, ext)
            size = max(1, int(per * rng.uniform(0.5, 1.5)))
            z.writestr(name, text(rng, size))


def advance(bare, n):
    for i in range(n):
        with tempfile.NamedTemporaryFile(delete=False) as idx:
            index = idx.name
        try:
            env = dict(ENV, GIT_INDEX_FILE=index)
            stamp = "%d-%d" % (time.time_ns(), i)
            blob = git("hash-object", "-w", "--stdin", cwd=bare, data=("bump %s\n" % stamp).encode())
            git("read-tree", "main", cwd=bare, env=env)
            git("update-index", "--add", "--cacheinfo", "100644,%s,notes/bump-%s.txt" % (blob, stamp),
                cwd=bare, env=env)
            tree = git("write-tree", cwd=bare, env=env)
            commit = git("commit-tree", tree, "-p", "main", "-m", "bump %s" % stamp, cwd=bare)
            git("update-ref", "refs/heads/main", commit, cwd=bare)
        finally:
            os.unlink(index)


def make_held(src, dst, zip_path):
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        wt = os.path.join(tmp, "wt")
        git("clone", "-q", src, wt)
        tokens = os.path.join(wt, "design", "tokens")
        git("rm", "-q", "-r", "design/tokens", cwd=wt)
        with zipfile.ZipFile(zip_path) as z:
            names = [n for n in z.namelist() if not n.endswith("/")]
            for i, name in enumerate(names):
                if i % 50 == 7:
                    continue  # new in the export
                data = z.read(name)
                if i % 10 == 3:
                    data = data[: len(data) // 2] + text(rng, 40).encode()  # changed since
                path = os.path.join(tokens, name)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as f:
                    f.write(data)
            for k in range(len(names) // 50):  # gone from the export
                path = os.path.join(tokens, "retired", "old%05d.json" % k)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w") as f:
                    f.write(text(rng, 400))
        git("add", "-A", cwd=wt)
        git("commit", "-q", "-m", "the previous export", cwd=wt)
        git("clone", "-q", "--bare", wt, dst)
    git("config", "uploadpack.allowFilter", "true", cwd=dst)
    git("config", "uploadpack.allowAnySHA1InWant", "true", cwd=dst)
    git("gc", "-q", cwd=dst)


def main():
    cmd = sys.argv[1]
    if cmd == "repo":
        make_repo(sys.argv[2], int(sys.argv[3]))
    elif cmd == "zip":
        make_zip(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "advance":
        advance(sys.argv[2], int(sys.argv[3]))
    elif cmd == "held":
        make_held(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
