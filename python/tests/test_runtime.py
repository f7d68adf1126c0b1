"""Threads, Ctrl-C, fork and logging: what the extension does around each blocking call."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import ko
from conftest import fake_go


def test_two_builds_in_threads_while_python_runs(app: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # Each `go build` first sleeps 2 s and records when it ran, so the builds are long enough to
    # see the GIL released and their overlap proves they ran at the same time.
    spans = tmp_path / "spans"
    go = fake_go(tmp_path, f'start=$(date +%s.%N); sleep 2; echo "$start $(date +%s.%N)" >> {spans}')
    monkeypatch.setenv("KO_GO_PATH", str(go))

    counter = 0
    stop = threading.Event()

    def count() -> None:
        nonlocal counter
        while not stop.is_set():
            counter += 1

    results: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def build(path: str) -> None:
        try:
            results[path] = ko.build(path, push=False, docker_repo="127.0.0.1:1/threads",
                                     working_dir=app)
        except BaseException as e:  # reported by the assertion below
            errors.append(e)

    counter_thread = threading.Thread(target=count)
    counter_thread.start()
    builders = [threading.Thread(target=build, args=(p,)) for p in ("./cmd/hello", "./cmd/second")]
    before = counter
    started = time.monotonic()
    for t in builders:
        t.start()
    for t in builders:
        t.join(timeout=120)
    elapsed = time.monotonic() - started
    during = counter - before
    stop.set()
    counter_thread.join()

    assert not errors, errors
    assert results["./cmd/hello"][0].startswith("127.0.0.1:1/threads/hello-")
    assert results["./cmd/second"][0].startswith("127.0.0.1:1/threads/second-")
    assert elapsed >= 2
    # A Python thread that shared the GIL with a blocked call would barely move.
    assert during > 100_000, f"the counter thread only advanced {during} times in {elapsed:.1f}s"
    (a_start, a_end), (b_start, b_end) = (map(float, line.split()) for line in spans.read_text().splitlines())
    assert a_start < b_end and b_start < a_end, "the two go builds did not overlap"


INTERRUPTED = textwrap.dedent("""
    import json, os, sys, time
    import ko
    app, pidfile = sys.argv[1], sys.argv[2]
    try:
        ko.build("./cmd/hello", push=False, docker_repo="127.0.0.1:1/x", working_dir=app)
        print(json.dumps({"outcome": "finished"}))
    except KeyboardInterrupt:
        caught = time.time()
        pid = int(open(pidfile).read())
        # The go child was killed when the build was dropped: gone, or a zombie about to be reaped.
        deadline = time.time() + 2
        alive = True
        while alive and time.time() < deadline:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    alive = f.read().split(")")[-1].split()[0] != "Z"
            except FileNotFoundError:
                alive = False
            if alive:
                time.sleep(0.05)
        print(json.dumps({"outcome": "interrupted", "caught": caught, "go_alive": alive}))
""")


def test_ctrl_c_cancels_a_running_build(app: Path, tmp_path: Path) -> None:
    pidfile = tmp_path / "go.pid"
    go = fake_go(tmp_path, f"echo $$ > {pidfile}.tmp && mv {pidfile}.tmp {pidfile}; exec sleep 60")
    env = dict(os.environ, KO_GO_PATH=str(go))
    script = tmp_path / "interrupted.py"
    script.write_text(INTERRUPTED)
    proc = subprocess.Popen([sys.executable, str(script), str(app), str(pidfile)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not pidfile.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "go build never started"
            time.sleep(0.05)
        time.sleep(1)  # well inside `go build`
        sent = time.time()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    import json

    result = json.loads(out.strip().splitlines()[-1])
    assert result["outcome"] == "interrupted", (out, err)
    assert result["caught"] - sent < 1.0, "KeyboardInterrupt took too long"
    assert result["go_alive"] is False, "the go child outlived the interrupted build"


def test_works_after_fork(app: Path) -> None:
    options = dict(push=False, docker_repo="127.0.0.1:1/fork", working_dir=app)
    [parent_ref] = ko.build("./cmd/second", **options)  # the runtime exists before the fork
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            os.close(read_end)
            [ref] = ko.build("./cmd/second", **options)
            os.write(write_end, ref.encode())
            code = 0
        except BaseException as e:
            os.write(write_end, repr(e).encode())
        finally:
            os._exit(code)
    os.close(write_end)
    deadline = time.monotonic() + 120
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("ko.build hung in a forked child")
        time.sleep(0.05)
    with os.fdopen(read_end, "rb") as r:
        child_said = r.read().decode()
    assert os.waitstatus_to_exitcode(status) == 0, child_said
    assert child_said == parent_ref
    # And the parent's runtime still works.
    assert ko.build("./cmd/second", **options) == [parent_ref]


def test_logs_go_to_the_ko_logger(app: Path, caplog: pytest.LogCaptureFixture,
                                  capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.INFO, logger="ko")
    ko.build("./cmd/hello", push=False, docker_repo="127.0.0.1:1/logs", working_dir=app)
    records = [r for r in caplog.records if r.name == "ko"]
    building = [r for r in records if r.getMessage() == "Building example.com/app/cmd/hello for linux/amd64"]
    assert building and building[0].levelno == logging.INFO
    assert getattr(building[0], "ko_target").startswith("ko_core")
    assert any(r.getMessage().startswith("Using base ") for r in records)
    assert "Building" not in capfd.readouterr().err  # nothing printed behind logging's back


def test_logger_level_is_respected(app: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ko")
    ko.build("./cmd/hello", push=False, docker_repo="127.0.0.1:1/logs", working_dir=app)
    assert not [r for r in caplog.records if r.name == "ko" and r.levelno < logging.WARNING]
