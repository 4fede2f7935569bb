"""The Python corpus: what a Python tool does with each grant, one command a run.

Built with componentize-py against warden's ``connector`` world (scripts/foreign.d/20-python.sh)
and run by tests/all/corpus_python.rs under the real ``warden run`` with the default
``--seccomp enforce``. It uses the standard library only, as a Python author would: ``open``,
``os.listdir``, ``os.walk``, ``hashlib``, ``os.environ``, ``sys.stdin``, ``time``,
``os.urandom``. Each command prints one result line (or a few); an ``OSError`` prints
``error: NAME`` (the errno's name) and exits 1.

    cat PATH            the text
    sha PATH            the SHA-256 of the bytes and their count
    ls DIR              entry names, sorted, one a line
    walk DIR            every file below DIR, relative, sorted
    write PATH TEXT     create or truncate, then read back
    append PATH TEXT    append, then read back
    rename A B          rename A to B
    rm PATH             remove a file
    env NAME            the variable's value, or ``unset``
    stdin               the bytes of stdin, counted
    clocks              the wall clock's year and whether the monotonic clock moved
    random              32 random bytes as hex
"""

import errno
import hashlib
import os
import sys
import time
import traceback

from componentize_py_types import Err
from wit_world import exports


def fail(e: OSError) -> int:
    print(f"error: {errno.errorcode.get(e.errno, e.errno)}")
    return 1


def main(argv: list) -> int:
    if not argv:
        print(__doc__)
        return 2
    cmd, args = argv[0], argv[1:]
    try:
        if cmd == "cat":
            with open(args[0], encoding="utf-8") as f:
                sys.stdout.write(f.read())
        elif cmd == "sha":
            h = hashlib.sha256()
            n = 0
            with open(args[0], "rb") as f:
                while chunk := f.read(65536):
                    h.update(chunk)
                    n += len(chunk)
            print(f"{h.hexdigest()} {n}")
        elif cmd == "ls":
            for name in sorted(os.listdir(args[0])):
                print(name)
        elif cmd == "walk":
            found = []
            for root, _dirs, files in os.walk(args[0]):
                for name in files:
                    found.append(os.path.relpath(os.path.join(root, name), args[0]))
            for rel in sorted(found):
                print(rel)
        elif cmd in ("write", "append"):
            with open(args[0], "w" if cmd == "write" else "a", encoding="utf-8") as f:
                f.write(args[1])
            with open(args[0], encoding="utf-8") as f:
                print(f.read())
        elif cmd == "rename":
            os.rename(args[0], args[1])
            print("renamed")
        elif cmd == "rm":
            os.remove(args[0])
            print("removed")
        elif cmd == "env":
            print(os.environ.get(args[0], "unset"))
        elif cmd == "stdin":
            data = sys.stdin.buffer.read()
            print(f"stdin {len(data)} bytes: {data.decode('utf-8', 'replace')}")
        elif cmd == "clocks":
            year = time.gmtime(time.time()).tm_year
            t0 = time.monotonic_ns()
            spin = 0
            for i in range(200_000):
                spin += i
            moved = time.monotonic_ns() > t0
            print(f"year {year} monotonic {'moves' if moved else 'frozen'}")
        elif cmd == "random":
            print(os.urandom(32).hex())
        else:
            print(f"unknown command {cmd}")
            return 2
    except OSError as e:
        return fail(e)
    return 0


class Run(exports.Run):
    """The ``wasi:cli/run`` export."""

    def run(self) -> None:
        try:
            code = main(sys.argv[1:])
        except Exception:  # noqa: BLE001 (an uncaught exception would trap the component)
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        if code:
            raise Err(None)
