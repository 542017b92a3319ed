"""One writer per run folder: an exclusive lock held by the process that trains in it; and the check, before any
work, that a result can be written where it goes (``check_writable``).

    with RunLock(run_dir):      # refused (RunBusyError, exit 2) while another process holds it
        ...                     # train, write checkpoints, logs, metrics

The lock is ``fcntl.flock`` on ``<run_dir>/.lock``, which holds the holder's PID and command line. The kernel
releases a flock when its process ends, however it ends (an exception, SIGTERM, SIGKILL, a crash),
so a lock left by a crash is stale and the next writer takes it. On release the file is removed; a taker checks
that the file it locked is still the one at the path (a release may remove it in between), so two processes
never both hold it. Where ``fcntl`` does not exist (Windows) the lock is a no-op.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ssync_lib.errors import RunBusyError, RunFolderError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK_NAME = ".lock"


def command_line() -> str:
    """This process's command as typed: ``python -m ssync_lib train ...`` (``sys.argv[0]`` is the path of the
    package's ``__main__.py`` under ``-m``)."""
    argv = list(sys.argv) or [""]
    script = Path(argv[0])
    if script.name == "__main__.py":
        package = [script.parent.name]
        for folder in script.parent.parents:
            if not (folder / "__init__.py").exists():
                break
            package.insert(0, folder.name)
        argv[0:1] = ["-m", ".".join(package)]
    return " ".join([Path(sys.executable).name, *argv])


def holder(run_dir: str | Path) -> str:
    """The PID and command written in ``run_dir``'s lock file ("unknown" when it holds none)."""
    try:
        text = (Path(run_dir) / LOCK_NAME).read_text().strip()
    except OSError:
        text = ""
    return text or "unknown (the holder has not written its PID yet)"


def check_not_busy(run_dir: str | Path, what: str, writes_own: str = "metrics.json",
                   elsewhere: str = "--out PATH") -> None:
    """Refuse (``RunBusyError``) to write ``what`` into ``run_dir`` while another process holds its lock (a training
    in progress, which writes its own ``writes_own`` at the end); a free or absent lock passes. Takes no lock and
    writes nothing."""
    path = Path(run_dir) / LOCK_NAME
    if fcntl is None or not path.exists():
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise RunBusyError(f"cannot write {what}: run folder {run_dir} is in use by another process: "
                           f"{holder(run_dir)}", fix=f"wait until it ends (its training writes its own {writes_own}), "
                                                      f"or write elsewhere ({elsewhere})") from None
    finally:
        os.close(fd)  # closing drops the shared lock if it was taken


class RunLock:
    """Exclusive lock of a run folder (module docstring). ``acquire`` creates the folder if needed; ``release``
    removes the lock file, and the folder too when this lock created it and nothing else was written there
    (a refused or failed start leaves no half-made run folder)."""

    def __init__(self, run_dir: str | Path, command: str | None = None):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.command = command if command is not None else command_line()
        self.fd: int | None = None
        self.created = False

    def acquire(self) -> "RunLock":
        if fcntl is None:
            return self
        self.created = not self.run_dir.exists()
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise RunFolderError(f"cannot write in the run folder {self.run_dir}: {type(err).__name__}: "
                                 f"{err.strerror or err}", fix=f"make it writable (chmod u+w {self.run_dir}) or "
                                                           f"give another train.run_root") from None
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise RunBusyError(f"run folder {self.run_dir} is in use by another process: {holder(self.run_dir)}",
                                   fix=f"wait until it ends (or stop it: kill <PID>), then --resume; or choose "
                                       f"another name (--name)") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:  # released and removed between our open and our lock
                same = False
            if same:
                break
            os.close(fd)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        os.ftruncate(fd, 0)
        os.write(fd, f"PID {os.getpid()}: {self.command}\n".encode())
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        self.path.unlink(missing_ok=True)  # while still held: a taker of the old file sees it is gone
        os.close(self.fd)
        self.fd = None
        if self.created and self.run_dir.is_dir() and not any(self.run_dir.iterdir()):
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def writer_lock(run_dir: str | Path) -> RunLock | None:
    """The lock of ``run_dir`` for the process that writes there: rank 0 under ``torchrun`` (``RANK``), the only
    process otherwise; ``None`` for the other ranks, which write nothing. Not yet acquired."""
    return RunLock(run_dir) if int(os.environ.get("RANK", "0")) == 0 else None


def check_writable(path: Path, need_bytes: int = 1 << 20, elsewhere: str = "--out PATH") -> None:
    """Refuse, before any work, to write ``path`` where the nearest existing folder above it is not writable or
    its disk has less than ``need_bytes`` free; ``elsewhere`` is how the command writes to another place."""
    folder = next((p for p in [path.parent, *path.parent.parents] if p.exists()), Path("/"))
    if not folder.is_dir():
        raise RunFolderError(f"cannot write {path}: {folder} is a file, not a folder", fix=f"use {elsewhere}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise RunFolderError(f"cannot write {path}: the folder {folder} is read-only (or not this user's)",
                             fix=f"make it writable (chmod u+w {folder}) or write elsewhere ({elsewhere})")
    free = shutil.disk_usage(folder).free
    if free < need_bytes:
        raise RunFolderError(f"cannot write {path}: the disk of {folder} is full ({free / 2**20:.1f} MiB free, "
                             f"{need_bytes / 2**20:.1f} MiB needed)",
                             fix=f"free some space or write elsewhere ({elsewhere})")
