#!/usr/bin/env python3
"""Benchmarks ko (this project) against upstream ko and against the floor (`go build` alone).

Six scenarios, run side by side in interleaved rounds (floor, ours, upstream, in rotating order),
on apps this script writes, publishing to a local docker-registry, both ko's on the same registry
base image with SBOMs off and upstream with KOCACHE set (its fastest mode):

  P1  rebuild after a one-line change       target: (ours - floor) <= 1/4 (upstream - floor)
  P2  rebuild with nothing changed           target: ours <= floor + 100 ms, no blob uploaded
  P3  resolve 10 services that all changed   target: (ours - floor) <= 1/4 (upstream - floor),
                                             floor = ONE `go build -o DIR/ ./cmd/...`
  P4  a 200 MB binary (half random) changed  target: (ours - floor) <= 1/2 (upstream - floor)
  P5  peak RSS of the ko process itself in P4 target: < 64 MB (VmHWM of ko, not of go)
  P6  YAML-only resolve of 20 MB              target: >= 100 MB/s (one reference in every document)

plus the gzip scaling of `bench/compress.rs` (target: >= 0.8 x cores times one core). Medians
are printed with each ratio against its target. Not a test: nothing is asserted.

Usage: python3 bench/bench.py [--runs N] [--upstream PATH] [--only P1,P2,...]
Needs: go, docker-registry, cargo (builds ko --release), and upstream ko (installed with
`go install github.com/google/ko@v0.19.1` into ~/.cache/ko-bench if missing).
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UPSTREAM_VERSION = "v0.19.1"
TOOLS = ("floor", "ours", "upstream")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_registry(workdir):
    port = free_port()
    config = workdir / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {workdir / 'registry'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen(["docker-registry", "serve", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
            return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit("docker-registry did not start")


def ours_binary():
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "ko-cli"], cwd=ROOT, check=True)
    return target / "release" / "ko"


def upstream_binary(explicit):
    if explicit:
        return Path(explicit)
    gobin = Path.home() / ".cache" / "ko-bench" / UPSTREAM_VERSION
    binary = gobin / "ko"
    if not binary.exists():
        env = dict(os.environ, GOBIN=str(gobin), CGO_ENABLED="0")
        subprocess.run(["go", "install", f"github.com/google/ko@{UPSTREAM_VERSION}"], env=env, check=True)
    return binary


def measure(argv, cwd, env, stdout=subprocess.DEVNULL):
    """Runs argv once; returns (seconds, peak RSS of that process itself in MiB, stderr).

    The peak is the kernel's VmHWM for the process, read until it exits (rusage would add the
    `go` processes it waited for, which dominate and are the same for both ko's)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=stdout, stderr=subprocess.PIPE)
    peak_kib = 0
    status_file = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        try:
            for line in status_file.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak_kib = max(peak_kib, int(line.split()[1]))
        except (OSError, ValueError):
            pass
        time.sleep(0.002)
    elapsed = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, argv))}\n{err}")
    return elapsed, peak_kib / 1024, err


# ---------------------------------------------------------------------------------------------
# The apps

HELLO = """package main

import "fmt"

var change = "0"

func main() { fmt.Println("hello", change) }
"""

SERVICE = """package main

import (
\t"fmt"

\t"example.com/svcs/internal/shared"
)

func main() {{ fmt.Println("service {i}", shared.Version) }}
"""

BIG = """package main

import (
\t_ "embed"
\t"fmt"
)

//go:embed random.bin
var random []byte

//go:embed text.bin
var text []byte

var change = "0"

func main() { fmt.Println(len(random), len(text), change) }
"""


def write_module(root, name, files):
    root.mkdir(parents=True, exist_ok=True)
    (root / "go.mod").write_text(f"module {name}\n\ngo 1.22\n")
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)


def make_apps(work):
    hello = work / "hello"
    write_module(hello, "example.com/hello", {"main.go": HELLO})
    (hello / "deploy.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: hello}\n"
                                       "spec:\n  containers:\n  - name: hello\n"
                                       "    image: ko://example.com/hello\n")
    svcs = work / "svcs"
    files = {f"cmd/svc{i}/main.go": SERVICE.format(i=i) for i in range(10)}
    files["internal/shared/shared.go"] = 'package shared\n\nvar Version = "0"\n'
    write_module(svcs, "example.com/svcs", files)
    docs = [f"apiVersion: v1\nkind: Pod\nmetadata: {{name: svc{i}}}\nspec:\n  containers:\n"
            f"  - name: svc{i}\n    image: ko://example.com/svcs/cmd/svc{i}\n" for i in range(10)]
    (svcs / "deploy.yaml").write_text("---\n".join(docs))
    big = work / "big"
    text = b"".join(f"line {i} of a large embedded asset that compresses well\n".encode() for i in range(1_900_000))
    write_module(big, "example.com/big", {"main.go": BIG, "random.bin": os.urandom(100 << 20), "text.bin": text[:100 << 20]})
    # P6: 20 MB of YAML, the same reference in every document.
    doc = ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels: {app: web}\n"
           "spec:\n  template:\n    spec:\n      containers:\n      - name: web\n"
           "        image: ko://example.com/hello   # the one reference\n"
           "        args: [\"--port=8080\", \"--verbose\"]\n")
    copies = (20 << 20) // len(doc)
    (hello / "big.yaml").write_text("---\n".join([doc] * copies))
    # Upstream re-encodes every document (minutes for 20 MB): it gets 1 MB, and its rate from that.
    (hello / "big-upstream.yaml").write_text("---\n".join([doc] * (copies // 20)))
    (hello / "one.yaml").write_text(doc)
    return hello, svcs, big


def set_change(app, rel, value):
    path = app / rel
    text = path.read_text()
    start = text.index('"', text.index("= ")) + 1
    end = text.index('"', start)
    path.write_text(text[:start] + value + text[end:])


# ---------------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--upstream", help="path to an upstream ko binary")
    parser.add_argument("--only", help="comma-separated scenarios (P1,...,P6,scaling)")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    wanted = lambda name: only is None or name in only  # noqa: E731

    ours, upstream = ours_binary(), upstream_binary(args.upstream)
    work = Path(tempfile.mkdtemp(prefix="ko-bench-"))
    registry, host = start_registry(work)
    try:
        hello, svcs, big = make_apps(work)
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(("KO_", "GO", "CGO_"))}
        base_env["DOCKER_CONFIG"] = str(work / "docker-config")
        # The same registry base for both ko's: hello on ko's built-in base, pushed once.
        subprocess.run([ours, "build", "--bare", "-t", "v1", "."], cwd=hello, check=True,
                       env=dict(base_env, KO_DOCKER_REPO=f"{host}/base", KOCACHE="off"),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        env = {
            "ours": dict(base_env, KO_DEFAULTBASEIMAGE=f"{host}/base:v1", KOCACHE=str(work / "cache-ours")),
            "upstream": dict(base_env, KO_DEFAULTBASEIMAGE=f"{host}/base:v1", KOCACHE=str(work / "cache-upstream")),
            "floor": dict(base_env, CGO_ENABLED="0", GOOS="linux", GOARCH="amd64"),
        }
        binary = {"ours": ours, "upstream": upstream}
        counter = iter(range(1, 10**6))
        samples = {}

        def record(scenario, tool, result):
            samples.setdefault(scenario, {}).setdefault(tool, []).append(result)

        def ko(tool, argv, cwd, repo):
            return measure([str(binary[tool]), *argv], cwd, dict(env[tool], KO_DOCKER_REPO=repo))

        for rnd in range(args.runs + 1):  # round 0 warms up and is not recorded
            order = TOOLS[rnd % 3:] + TOOLS[:rnd % 3]
            keep = rnd > 0
            for tool in order:
                if wanted("P1") or wanted("P2"):
                    # P1: a one-line change (a value of its own, so no tool profits from another's
                    # build cache); P2: the same build again.
                    set_change(hello, "main.go", f"{tool}-{next(counter)}")
                    for scenario in ("P1", "P2"):
                        if tool == "floor":
                            r = measure(["go", "build", "-trimpath", "-o", str(work / "floor-hello"), "."], hello, env["floor"])
                        else:
                            r = ko(tool, ["build", "--sbom=none", "."], hello, f"{host}/{tool}")
                        if keep and wanted(scenario):
                            record(scenario, tool, r)
                if wanted("P3"):
                    set_change(svcs, "internal/shared/shared.go", f"{tool}-{next(counter)}")
                    if tool == "floor":
                        r = measure(["go", "build", "-trimpath", "-o", str(work / "floor-svcs") + "/", "./cmd/..."], svcs, env["floor"])
                    else:
                        r = ko(tool, ["resolve", "--sbom=none", "-f", "deploy.yaml"], svcs, f"{host}/svcs-{tool}")
                    if keep:
                        record("P3", tool, r)
                if wanted("P4") or wanted("P5"):
                    set_change(big, "main.go", f"{tool}-{next(counter)}")
                    if tool == "floor":
                        r = measure(["go", "build", "-trimpath", "-o", str(work / "floor-big"), "."], big, env["floor"])
                    else:
                        r = ko(tool, ["build", "--sbom=none", "."], big, f"{host}/big-{tool}")
                    if keep:
                        record("P4", tool, r)
                if wanted("P6") and tool != "floor":
                    yaml = "big.yaml" if tool == "ours" else "big-upstream.yaml"
                    small = ko(tool, ["resolve", "--sbom=none", "-f", "one.yaml"], hello, f"{host}/{tool}")
                    large = ko(tool, ["resolve", "--sbom=none", "-f", yaml], hello, f"{host}/{tool}")
                    if keep:
                        size = (hello / yaml).stat().st_size / 1e6
                        record("P6", tool, (size / max(large[0] - small[0], 1e-3), large[1], ""))

        median = lambda scenario, tool: statistics.median(r[0] for r in samples[scenario][tool])  # noqa: E731
        print(f"ko bench: {args.runs} interleaved rounds, medians; upstream ko {UPSTREAM_VERSION} "
              f"(KOCACHE set); {os.cpu_count()} cores")
        print(f"{'scenario':42} {'floor':>8} {'ours':>8} {'upstream':>9}  result")
        rows = [("P1", "rebuild after a one-line change", 0.25), ("P3", "resolve 10 services, all changed", 0.25),
                ("P4", "a 200 MB binary, changed", 0.5)]
        for key, name, share in rows:
            if key not in samples:
                continue
            f, o, u = (median(key, t) for t in TOOLS)
            ratio = (o - f) / (u - f) if u > f else float("inf")
            verdict = "met" if ratio <= share else "missed"
            print(f"{key} {name:39} {f:7.3f}s {o:7.3f}s {u:8.3f}s  (ours-floor)/(upstream-floor) = {ratio:.2f} "
                  f"(target <= {share:.2f}): {verdict}")
        if "P2" in samples:
            f, o, u = (median("P2", t) for t in TOOLS)
            # P2's second half: the unchanged rebuilds measured above upload nothing (ours' logs).
            uploads = sum(r[2].count("pushed blob") for r in samples["P2"]["ours"])
            verdict = "met" if o <= f + 0.1 and uploads == 0 else "missed"
            print(f"P2 {'rebuild with nothing changed':39} {f:7.3f}s {o:7.3f}s {u:8.3f}s  ours - floor = "
                  f"{(o - f) * 1000:.0f} ms (target <= 100 ms), blobs uploaded: {uploads} (target 0): {verdict}")
        if "P4" in samples:
            rss = {t: max(r[1] for r in samples["P4"][t]) for t in ("ours", "upstream")}
            verdict = "met" if rss["ours"] < 64 else "missed"
            print(f"P5 {'peak RSS of ko itself in P4':39} {'':8} {rss['ours']:6.1f}MB {rss['upstream']:7.1f}MB  "
                  f"(target < 64 MB): {verdict}")
        if "P6" in samples:
            rate = {t: median("P6", t) for t in ("ours", "upstream")}
            verdict = "met" if rate["ours"] >= 100 else "missed"
            print(f"P6 {'YAML-only resolve (20 MB; upstream 1 MB)':39} {'':8} {rate['ours']:5.0f}MB/s {rate['upstream']:6.1f}MB/s  "
                  f"(target >= 100 MB/s): {verdict}")
        if wanted("scaling"):
            out = subprocess.run(["cargo", "run", "--release", "--quiet", "-p", "ko-core", "--example", "compress"],
                                 cwd=ROOT, check=True, capture_output=True, text=True).stdout
            for line in out.strip().splitlines():
                print(f"scaling: {line}")
    finally:
        registry.kill()
        registry.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
