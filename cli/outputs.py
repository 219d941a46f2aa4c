"""``--out``: checked before any work, with the same wording in every command, and locked.

Every command checks its output before it loads a model or reads a dataset:
:func:`check_out_folder` for a folder, :func:`check_out_file` for a file.  Neither
creates anything: both probe the folder (or the existing folder it would be created in)
by creating and removing a file there, so a read-only folder, a read-only file system or
a missing permission fails at once (``os.access`` would not: it says yes to root).  The
messages, with the path first:

* ``--out must name a folder, but this is a file`` / ``--out must name a file, but this is a folder``
* ``--out must end in .npz``
* ``cannot create the --out folder: <path> is a file``
* ``the --out folder is not writable (<OS reason>)`` / ``the --out folder cannot be created (<OS reason>)``

(for a file, "the folder of --out" in place of "the --out folder").

Commands that resume from their output folder (sweep, train, finetune) hold
:func:`output_lock` while they run: a second process writing the same folder stops at
once naming the holder, or waits for it with ``--wait``.  The lock is an OS file lock on
``<folder>/.squeezelens.lock``, released by the OS when its holder dies, so the lock of a
killed run is taken over.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from squeezelens.engine.errors import InputError

LOCK_NAME = ".squeezelens.lock"
POLL_S = 0.5


def _nearest_existing(path: Path) -> Path:
    """``path`` itself when it exists, else its nearest existing ancestor."""
    return next((p for p in (path, *path.parents) if p.exists()), Path.cwd())


def _writable_folder(folder: Path, what: str, named: Path) -> None:
    """Check that ``folder`` is, or can be created as, a folder that takes new files: probe
    it (or the existing folder it would be created in) with a temporary file.  Nothing is
    created.  InputError naming ``named``."""
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        raise InputError(f"cannot create {what}: {existing} is a file", named)
    try:
        fd, probe = tempfile.mkstemp(prefix=".squeezelens-probe-", dir=existing)
    except OSError as exc:
        problem = "is not writable" if existing == folder else "cannot be created"
        raise InputError(f"{what} {problem} ({exc.strerror or exc})", named) from None
    os.close(fd)
    os.unlink(probe)


def check_out_folder(path: str | os.PathLike, flag: str = "--out") -> Path:
    """Check an output folder before any work (nothing is created); returns it as a Path."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{flag} must name a folder, but this is a file", path)
    _writable_folder(path, f"the {flag} folder", path)
    return path


def check_out_file(
    path: str | os.PathLike, flag: str = "--out", suffixes: tuple[str, ...] = ()
) -> Path:
    """Check an output file before any work: its suffix, that it is not a folder, and that
    its folder takes new files (nothing is created); returns it as a Path.  The file is
    replaced atomically later, so its own permissions do not matter."""
    path = Path(path)
    if suffixes and path.suffix.lower() not in suffixes:
        raise InputError(f"{flag} must end in {' or '.join(suffixes)}", path)
    if path.is_dir():
        raise InputError(f"{flag} must name a file, but this is a folder", path)
    _writable_folder(path.parent, f"the folder of {flag}", path)
    return path


# --------------------------------------------------------------------------- the lock
def _try_lock(fd: int) -> bool:
    """Take the OS lock of an open file without blocking; False when another process has it."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder(path: Path) -> dict:
    try:
        record = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _written_holder(path: Path, patience: float = 1.0) -> dict:
    """The holder's record, given a moment to be written: a holder writes it just after it
    takes the lock, so a reader that came in between would find it empty."""
    deadline = time.monotonic() + patience
    record = _holder(path)
    while not record.get("pid") and time.monotonic() < deadline:
        time.sleep(0.05)
        record = _holder(path)
    return record


def describe_holder(record: dict) -> str:
    """``process 1234 (squeezelens sweep, since 2025-01-02 10:11:12)`` from a lock record."""
    if not record.get("pid"):
        return "another process"
    return (
        f"process {record['pid']} ({record.get('command', '?')}, since {record.get('since', '?')})"
    )


def _acquire(path: Path, wait: bool, say: Callable[[str], None]) -> int:
    """An open descriptor of the lock file, locked by this process (a lock file that was
    replaced while we waited is opened again)."""
    announced = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if _try_lock(fd):
            try:
                same = os.path.exists(path) and os.stat(path).st_ino == os.fstat(fd).st_ino
            except OSError:
                same = False
            if same:
                return fd
        os.close(fd)
        if not os.path.exists(path):
            continue  # the holder just removed it: try again at once
        holder = describe_holder(_written_holder(path))
        if not wait:
            raise InputError(
                f"{holder} is writing to this folder; wait for it to finish, or pass --wait",
                path.parent,
            )
        if not announced:
            say(f"waiting for {holder} to finish with {path.parent} ...")
            announced = True
        time.sleep(POLL_S)


@contextmanager
def output_lock(
    folder: str | os.PathLike,
    command: str,
    wait: bool = False,
    say: Callable[[str], None] | None = None,
) -> Iterator[Path]:
    """Hold ``folder``'s lock while the block runs (see the module docstring).

    command: what the lock record names (``squeezelens sweep``).  Another live holder:
    InputError naming it, or with ``wait`` poll until it is gone.  A record left by a dead
    process is taken over, and said so.
    """
    say = say or (lambda message: print(message, file=sys.stderr))
    path = Path(folder) / LOCK_NAME
    fd = _acquire(path, wait, say)
    try:
        stale = _holder(path)
        if stale.get("pid") and stale.get("pid") != os.getpid():
            say(f"taking over the lock of {describe_holder(stale)}, which is no longer running")
        record = {"pid": os.getpid(), "command": command,
                  "since": datetime.now().isoformat(sep=" ", timespec="seconds")}  # fmt: skip
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(record).encode())
        yield path
    finally:
        _release(fd, path)


def _release(fd: int, path: Path) -> None:
    """Remove the lock file, then close it (which releases the OS lock).  Removed while still
    locked, so no other process can hold a lock on a file that is gone; Windows cannot remove
    an open file, so there it is closed first."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        return
    try:
        os.unlink(path)
    finally:
        os.close(fd)


def add_wait_argument(parser) -> None:
    """``--wait``: wait for another process writing the same --out folder instead of stopping."""
    parser.add_argument("--wait", action="store_true",
                        help="if another squeezelens process is writing to --out, wait for it "
                             "to finish (default: stop at once, naming it)")  # fmt: skip


def locked_out_folder(run: Callable) -> Callable:
    """Decorate a command's ``run(args)``: check ``args.out`` as a folder and hold its lock
    (the folder is created for the lock, and removed again if the command left it empty)."""

    @functools.wraps(run)
    def locked(args) -> int:
        folder = check_out_folder(args.out)
        created = not folder.exists()
        folder.mkdir(parents=True, exist_ok=True)
        try:
            with output_lock(folder, f"squeezelens {args.command}", getattr(args, "wait", False)):
                return run(args)
        finally:
            if created:
                with contextlib.suppress(OSError):  # not empty: the command wrote there
                    folder.rmdir()

    return locked
