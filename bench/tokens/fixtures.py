#!/usr/bin/env python3
"""Deterministic fixtures for the token-diff benchmark (standard library + git CLI only).

  fixtures.py repo BARE NFILES       a bare repository whose `main` holds NFILES token files
                                     under design/tokens/ (JSON in the W3C format, CSS custom
                                     properties, SCSS and TypeScript, 60 tokens each) and a
                                     README
  fixtures.py zip ZIP NFILES SHAPE   the export of the next version of those files:
                                     SHAPE `usual`: 10% of the files change 6 of their
                                     tokens, 2% are new, 2% are gone;
                                     SHAPE `all`: every file changes every token
"""
import io
import os
import random
import subprocess
import sys
import zipfile

ENV = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null")
GROUPS = ("color", "space", "radius", "shadow", "font", "line", "border", "opacity")
TOKENS = 60


def name(i, j):
    return "%s-%02d-%02d" % (GROUPS[j % len(GROUPS)], i % 100, j)


def value(rng, j):
    if GROUPS[j % len(GROUPS)] == "color":
        return "#%06x" % rng.randrange(1 << 24)
    return "%dpx" % rng.randrange(1, 400)


def render(i, values):
    kind = ("json", "css", "scss", "ts")[i % 4]
    path = "f%05d.%s" % (i, kind)
    names = [name(i, j) for j in range(len(values))]
    if kind == "json":
        body = "{\n" + ",\n".join(
            '  "%s": { "$type": "dimension", "$value": "%s" }' % (n, v)
            for n, v in zip(names, values)) + "\n}\n"
    elif kind == "css":
        body = ":root {\n" + "".join("  --%s: %s;\n" % (n, v) for n, v in zip(names, values)) + "}\n"
    elif kind == "scss":
        body = "".join("$%s: %s;\n" % (n, v) for n, v in zip(names, values))
    else:
        body = "".join('export const %s = "%s";\n' % (n.replace("-", "_"), v)
                       for n, v in zip(names, values))
    return path, body.encode()


def base_values(i):
    rng = random.Random(i)
    return [value(rng, j) for j in range(TOKENS)]


def make_repo(bare, nfiles):
    # fast-import: one commit with every file, without a work tree.
    out = io.BytesIO()
    for i in range(nfiles):
        path, body = render(i, base_values(i))
        out.write(b"blob\nmark :%d\ndata %d\n" % (i + 1, len(body)) + body + b"\n")
    readme = b"# tokens\n"
    out.write(b"commit refs/heads/main\ncommitter Bench <bench@example.invalid> 0 +0000\n"
              b"data 8\ninitial\n")
    out.write(b"M 100644 inline README.md\ndata %d\n" % len(readme) + readme + b"\n")
    for i in range(nfiles):
        path, _ = render(i, [])
        out.write(b"M 100644 :%d design/tokens/%s\n" % (i + 1, path.encode()))
    subprocess.run(["git", "init", "-q", "--bare", "--initial-branch", "main", bare],
                   env=ENV, check=True)
    subprocess.run(["git", "-C", bare, "fast-import", "--quiet"], input=out.getvalue(),
                   env=ENV, check=True)


def make_zip(path, nfiles, shape):
    rng = random.Random(nfiles * 7 + len(shape))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        gone = set(range(0, nfiles, 50)) if shape == "usual" else set()
        for i in range(nfiles):
            if i in gone:
                continue
            values = base_values(i)
            if shape == "all":
                values = [value(rng, j) for j in range(TOKENS)]
            elif i % 10 == 1:
                for j in rng.sample(range(TOKENS), 6):
                    values[j] = value(rng, j)
            name_, body = render(i, values)
            z.writestr(name_, body)
        if shape == "usual":
            for k in range(nfiles // 50):
                i = nfiles + k
                name_, body = render(i, base_values(i))
                z.writestr(name_, body)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "repo":
        make_repo(sys.argv[2], int(sys.argv[3]))
    elif cmd == "zip":
        make_zip(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit(__doc__)
