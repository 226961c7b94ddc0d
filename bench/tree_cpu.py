"""Benchmark helper: the CPU-seconds a command and every process it starts use, and its wall time.

``/usr/bin/time`` counts only the children a process waits for: the test suite's forked services and
mlflow servers run in their own sessions, and are reaped by others or not at all, so it misses them
(511 CPU-s where the suite used 708). On a machine shared with other work the wall time says little,
and the CPU-seconds say what the suite costs. This runs the command in its own cpuacct control group
(cgroup v1, as root): the kernel counts every process in it, however far it left the tree. The MariaDB
server's share is not in it (it is the machine's).

    sudo uv run python bench/tree_cpu.py -- make test
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

CPUACCT = Path("/sys/fs/cgroup/cpuacct")
USER_HZ = os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    command = parser.parse_args().command
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        parser.error("name a command after --")
    if not CPUACCT.is_dir() or os.geteuid() != 0:
        parser.error(f"needs root and cgroup v1's cpuacct at {CPUACCT}")
    group = CPUACCT / f"tree-cpu-{uuid.uuid4().hex[:8]}"
    group.mkdir()
    started = time.monotonic()
    # The child joins the group before it runs the command: everything it starts is counted.
    process = subprocess.Popen(
        command, preexec_fn=lambda: (group / "cgroup.procs").write_text(str(os.getpid()))
    )
    code = process.wait()
    wall_s = time.monotonic() - started
    stat = dict(line.split() for line in (group / "cpuacct.stat").read_text().splitlines())
    cpu_s = int((group / "cpuacct.usage").read_text()) / 1e9
    print(
        f"{' '.join(command)}: exit {code}, wall {wall_s:.0f} s, {cpu_s:.0f} CPU-s "
        f"(user {int(stat['user']) / USER_HZ:.0f}, system {int(stat['system']) / USER_HZ:.0f})",
        file=sys.stderr,
    )
    leftover = (group / "cgroup.procs").read_text().split()
    if not leftover:
        group.rmdir()
    else:
        print(f"{len(leftover)} processes outlived the command: {group} is kept", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
