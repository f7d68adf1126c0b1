#!/usr/bin/env python3
"""Benchmarks ko (this project) against upstream ko and against the floor, `go build` alone.

Both ko binaries build the same app (examples/hello) on the same base image, held in a local
docker-registry, with SBOMs off; each scenario runs N times after a warm-up and the median wall
time and the ko process's peak RSS are printed, with ratios. Not a test: nothing is asserted.

Usage: python3 bench/bench.py [--runs N] [--upstream PATH]
Needs: go, docker-registry, a release build of ko (built here if missing), and upstream ko
(installed with `go install github.com/google/ko@v0.19.1` into ~/.cache/ko-bench if missing).
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


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_registry(workdir):
    port = free_port()
    config = workdir / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {workdir / 'registry'}\nhttp:\n  addr: 127.0.0.1:{port}\n"
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
    binary = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "ko"
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "ko-cli"], cwd=ROOT, check=True)
    return binary


def upstream_binary(explicit):
    if explicit:
        return Path(explicit)
    gobin = Path.home() / ".cache" / "ko-bench" / UPSTREAM_VERSION
    binary = gobin / "ko"
    if not binary.exists():
        env = dict(os.environ, GOBIN=str(gobin), CGO_ENABLED="0")
        subprocess.run(["go", "install", f"github.com/google/ko@{UPSTREAM_VERSION}"], env=env, check=True)
    return binary


def measure(argv, cwd, env):
    """Runs argv once; returns (seconds, peak RSS of that process itself in MiB).

    The peak is the kernel's VmHWM for the process, read until it exits (rusage would add the
    `go` processes it waited for, which dominate and are the same for both ko's)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
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
    return elapsed, peak_kib / 1024


def series_of(run_once, runs):
    """Median seconds and peak MiB over `runs` runs, after one warm-up run."""
    run_once()
    samples = [run_once() for _ in range(runs)]
    return statistics.median(s[0] for s in samples), max(s[1] for s in samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--upstream", help="path to an upstream ko binary")
    args = parser.parse_args()

    ours, upstream = ours_binary(), upstream_binary(args.upstream)
    work = Path(tempfile.mkdtemp(prefix="ko-bench-"))
    registry, host = start_registry(work)
    try:
        app = work / "hello"
        shutil.copytree(ROOT / "examples" / "hello", app)
        (app / "deploy.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: hello}\n"
                                         "spec:\n  containers:\n  - name: hello\n"
                                         "    image: ko://example.com/hello\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KO_", "GO"))}
        env["PATH"] = os.environ["PATH"]
        env["DOCKER_CONFIG"] = str(work / "docker-config")
        # The same base for both: this app's image on the built-in base, pushed once.
        subprocess.run([ours, "build", "--bare", "-t", "v1", "."], cwd=app, check=True,
                       env=dict(env, KO_DOCKER_REPO=f"{host}/base"), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        env["KO_DEFAULTBASEIMAGE"] = f"{host}/base:v1"

        # The floor links a new binary each time, as ko does (an unchanged -o target is not relinked).
        floor_env = dict(env, CGO_ENABLED="0", GOOS="linux", GOARCH="amd64")
        outputs = (str(work / f"out-{i}") for i in range(10**6))
        floor = series_of(lambda: measure(["go", "build", "-trimpath", "-o", next(outputs), "."], app, floor_env), args.runs)

        counter = iter(range(10**6))
        scenarios = {
            "build, no push": lambda ko, tag: (["build", "--sbom=none", "--push=false", "."], f"{host}/nopush"),
            "publish, unchanged": lambda ko, tag: (["build", "--sbom=none", "."], f"{host}/same-{tag}"),
            "publish to a new repo": lambda ko, tag: (["build", "--sbom=none", "."], f"{host}/new-{tag}-{next(counter)}"),
            "resolve one ref": lambda ko, tag: (["resolve", "--sbom=none", "-f", "deploy.yaml"], f"{host}/resolve-{tag}"),
        }
        rows = []
        for name, make in scenarios.items():
            results = {}
            for tag, ko in (("ours", ours), ("upstream", upstream)):
                def one(ko=ko, tag=tag, make=make):
                    argv, repo = make(ko, tag)
                    return measure([str(ko), *argv], app, dict(env, KO_DOCKER_REPO=repo))
                results[tag] = series_of(one, args.runs)
            rows.append((name, results["ours"], results["upstream"]))

        print(f"ko bench: examples/hello, {args.runs} runs (median wall time, peak RSS of the ko process itself), "
              f"upstream ko {UPSTREAM_VERSION}, floor = go build alone {floor[0]:.3f}s")
        print(f"{'scenario':24} {'ours':>8} {'upstream':>9} {'ours/floor':>11} {'ours/upstream':>14} "
              f"{'RSS ours':>9} {'RSS upstr.':>11}")
        for name, (t, rss), (ut, urss) in rows:
            print(f"{name:24} {t:7.3f}s {ut:8.3f}s {t / floor[0]:10.2f}x {t / ut:13.2f}x "
                  f"{rss:7.1f}MB {urss:9.1f}MB")
    finally:
        registry.kill()
        registry.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
