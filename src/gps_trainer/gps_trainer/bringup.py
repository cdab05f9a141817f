"""The project's own bringup: starts the nodes of a launch file as separate processes where
`ros2 launch` is not available (only the PyPI wheels installed: this machine, CI).

The launch file itself is evaluated (gps_trainer.launch_subset), so `ros2 launch gps_trainer
hanger.launch.py` and this command start the same executables with the same parameter files and
values by construction. Each node's output is printed with its name in front; when a node
declared with on_exit=Shutdown() exits (the trainer, at the end of its run), or on Ctrl-C, the
others get SIGINT (then SIGKILL after a grace period) and the command exits with that node's
status.

    python -m gps_trainer.bringup [--launch-file FILE] [--dry-run] [robot:=sim] [run_dir:=...]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from ament_index_python.packages import get_package_prefix, get_package_share_directory

from gps_trainer.launch_subset import LaunchFileError, ProcessSpec, load_description, resolve

GRACE_S = 10.0


def default_launch_file() -> Path:
    return Path(get_package_share_directory("gps_trainer")) / "launch" / "hanger.launch.py"


# rcl refuses "-p name:=" (no value); the YAML for an empty string is ''.
EMPTY_STRING = "''"


def command(spec: ProcessSpec) -> list[str]:
    """The command line `ros2 launch` would run for `spec`."""
    executable = Path(get_package_prefix(spec.package)) / "lib" / spec.package / spec.executable
    if not executable.is_file():
        raise LaunchFileError(f"package {spec.package} has no executable {spec.executable} "
                              f"({executable})")
    args = [str(executable), "--ros-args", "-r", f"__node:={spec.name}"]
    for params_file in spec.params_files:
        args += ["--params-file", params_file]
    for key, value in spec.params.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        args += ["-p", f"{key}:={text or EMPTY_STRING}"]
    return args


def _forward(name: str, stream) -> None:
    for line in iter(stream.readline, ""):
        sys.stdout.write(f"[{name}] {line}")
        sys.stdout.flush()


def run(specs: list[ProcessSpec]) -> int:
    """Start every process, wait for a shutdown-on-exit one (or Ctrl-C, or SIGTERM as from
    `kill` or a service manager), stop the rest. The nodes run in their own sessions, so they
    stop only through this: a bringup that died on SIGTERM would leave them running."""
    procs: list[tuple[ProcessSpec, subprocess.Popen]] = []
    ended, terminated = threading.Event(), threading.Event()

    def on_sigterm(_signum, _frame) -> None:
        terminated.set()
        ended.set()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        for spec in specs:
            proc = subprocess.Popen(command(spec), stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, bufsize=1,
                                    start_new_session=True, env=os.environ.copy())
            procs.append((spec, proc))
            threading.Thread(target=_forward, args=(spec.name, proc.stdout), daemon=True).start()
            print(f"[bringup] started {spec.name} (pid {proc.pid})", flush=True)
        watched = [p for s, p in procs if s.shutdown_on_exit] or [p for _, p in procs]
        while not ended.is_set():
            if any(p.poll() is not None for p in watched):
                break
            ended.wait(0.2)
        status = next((p.returncode for p in watched if p.returncode is not None), 0)
        if terminated.is_set():
            status = 128 + signal.SIGTERM
    except KeyboardInterrupt:
        status = 130
    finally:
        _stop(procs)
        signal.signal(signal.SIGTERM, previous)
    return status


def _stop(procs: list[tuple[ProcessSpec, subprocess.Popen]]) -> None:
    for _, proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
    for spec, proc in procs:
        try:
            proc.wait(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        print(f"[bringup] {spec.name} exited with {proc.returncode}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launch-file", type=Path, default=None)
    parser.add_argument("--dry-run", action="store_true",
                        help="print the command of each process and exit")
    parser.add_argument("arguments", nargs="*", metavar="name:=value")
    args = parser.parse_args(argv)
    try:
        pairs = dict(_argument(a) for a in args.arguments)
        specs = resolve(load_description(args.launch_file or default_launch_file()), pairs)
        commands = [command(spec) for spec in specs]
    except LaunchFileError as exc:
        print(f"bringup: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        for spec, cmd in zip(specs, commands):
            print(f"{spec.name}: {' '.join(cmd)}")
        return 0
    return run(specs)


def _argument(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":=")
    if not sep or not name:
        raise LaunchFileError(f"launch arguments are name:=value, got {text!r}")
    return name, value


if __name__ == "__main__":
    sys.exit(main())
