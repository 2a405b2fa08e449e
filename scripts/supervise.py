"""Runs the Procfile's processes for ``make run`` with a readable foreground.

Each process writes to its own log file under the log folder; only the demo's
own output (its timeline and the webhooks it receives) reaches the terminal.
When a process other than the demo stops, the output says which one, shows the
last lines of its log and where the whole log is, and everything is stopped.
Ctrl-C (or SIGTERM) stops every process: SIGTERM to its process group, then
SIGKILL after a grace period (a faust worker whose broker vanished can ignore
SIGTERM).

Usage: supervise.py PROCFILE LOG_DIR [FOREGROUND_NAME]
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

GRACE_S = 5.0
TAIL_LINES = 15


def read_procfile(path: Path) -> list[tuple[str, str]]:
    entries = []
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            entries.append((name.strip(), command.strip()))
    return entries


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text.splitlines()[-lines:]) or "    (empty)"


def stop(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    for popen in processes.values():
        if popen.poll() is None:
            _signal(popen, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    for popen in processes.values():
        try:
            popen.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            _signal(popen, signal.SIGKILL)
            popen.wait(timeout=10)


def _signal(popen: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(popen.pid, signum)


def main() -> int:
    procfile, log_dir = Path(sys.argv[1]), Path(sys.argv[2])
    foreground = sys.argv[3] if len(sys.argv) > 3 else "demo"
    log_dir.mkdir(parents=True, exist_ok=True)
    processes: dict[str, subprocess.Popen[bytes]] = {}
    logs: dict[str, Path] = {}
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    for name, command in read_procfile(procfile):
        logs[name] = log_dir / f"{name}.log"
        log = logs[name].open("ab")
        processes[name] = subprocess.Popen(
            ["bash", "-c", command],
            # The demo's stdout is the show; its library logs (stderr) are not.
            stdout=None if name == foreground else log,
            stderr=log,
            start_new_session=True,  # its own group: Ctrl-C reaches it only through us
        )
    pids = log_dir.parent / "pids"  # for whoever wants to stop one on purpose
    pids.mkdir(exist_ok=True)
    for name, popen in processes.items():
        (pids / f"{name}.pid").write_text(f"{popen.pid}\n")
    names = ", ".join(f"{name} ({logs[name]})" for name in processes)
    print(f"== started {names}", flush=True)

    code = 0
    while not stopping:
        for name, popen in processes.items():
            status = popen.poll()
            if status is None or (name == foreground and status == 0):
                continue
            how = f"exit code {status}" if status >= 0 else f"signal {-status}"
            print(
                f"\n== {name} stopped ({how}); the last lines of its log:\n"
                f"{tail(logs[name])}\n"
                f"== the whole log: {logs[name]}\n== stopping everything",
                file=sys.stderr,
                flush=True,
            )
            stopping = True
            code = 1
            break
        time.sleep(0.2)
    stop(processes)
    print(f"== stopped; logs are in {log_dir}/", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
