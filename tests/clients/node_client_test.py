"""Runs clients/node/example.js against the real authcode server.

Two runs of the example, each a subprocess fed the code on stdin:
  - the right code: it must print `issued ID`, `verified`, a rate limit
    with a positive delay read from RetryInfo, and the BadRequest field
    violation for "recipient", and exit 0;
  - a wrong code: it must print `rejected VERIFY_OUTCOME_WRONG_CODE` and
    exit 1.

The npm packages are installed into clients/node/node_modules with
`npm ci` when they are missing or older than package-lock.json.
"""

import os
import queue
import re
import shutil
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import AuthcodeServer, argument_parser  # noqa: E402

_RUN_TIMEOUT = 60
_SERVER_LOG_TAIL = 4000
_PROXY_VARIABLES = {"grpc_proxy", "http_proxy", "https_proxy", "all_proxy"}


class TestFailure(Exception):
    pass


def _install_packages(node_dir):
    lock = os.path.join(node_dir, "package-lock.json")
    installed = os.path.join(node_dir, "node_modules", ".package-lock.json")
    if (os.path.exists(installed)
            and os.path.getmtime(installed) >= os.path.getmtime(lock)):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise TestFailure("npm is not on PATH; install Debian's npm package")
    print("node_client_test: node_modules is missing or older than "
          "package-lock.json; running npm ci in %s" % node_dir,
          file=sys.stderr)
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
        cwd=node_dir, stdout=sys.stderr, stderr=sys.stderr, check=False)
    if result.returncode != 0:
        raise TestFailure("npm ci in %s failed with status %d"
                          % (node_dir, result.returncode))


def _example_env():
    # The server is on loopback: keep any proxy setting away from grpc-js.
    return {k: v for k, v in os.environ.items()
            if k.lower() not in _PROXY_VARIABLES}


class Example:
    """One run of example.js: its first stdout line is read as it comes,
    the code is written to its stdin, then the rest is collected."""

    def __init__(self, node_dir, target, recipient):
        node = shutil.which("node")
        if node is None:
            raise TestFailure("node is not on PATH; install Debian's nodejs")
        self.recipient = recipient
        self._stderr = ""
        self._process = subprocess.Popen(
            [node, "example.js", "--target", target,
             "--recipient", recipient],
            cwd=node_dir, env=_example_env(), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._first = queue.Queue()
        threading.Thread(target=lambda: self._first.put(
            self._process.stdout.readline()), daemon=True).start()

    def first_line(self):
        try:
            line = self._first.get(timeout=_RUN_TIMEOUT)
        except queue.Empty:
            line = ""
        if not line:
            self._fail("printed no first line")
        return line.rstrip("\n")

    def finish(self, code):
        """Types `code` and returns (remaining stdout lines, exit status)."""
        try:
            rest, self._stderr = self._process.communicate(
                code + "\n", timeout=_RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            rest, self._stderr = self._process.communicate()
            raise TestFailure("example.js for %s did not finish in %d s; "
                              "stderr:\n%s" % (self.recipient, _RUN_TIMEOUT,
                                               self._stderr))
        return rest.splitlines(), self._process.returncode

    def stderr(self):
        return self._stderr

    def _fail(self, what):
        self._process.kill()
        _, err = self._process.communicate()
        raise TestFailure("example.js for %s %s; stderr:\n%s"
                          % (self.recipient, what, err))


def _expect(condition, message, lines, example):
    if not condition:
        raise TestFailure("%s\nstdout:\n%s\nstderr:\n%s" % (
            message, "\n".join(lines), example.stderr()))


def _code_for(server, example):
    code = server.wait_for_code(example.recipient)
    if code is None:
        raise TestFailure("no console mail with a code reached %s"
                          % example.recipient)
    return code


def check_right_code(server, node_dir):
    example = Example(node_dir, server.address, "ada@example.com")
    first = example.first_line()
    rest, status = example.finish(_code_for(server, example))
    lines = [first] + rest

    _expect(re.fullmatch(r"issued \S+", first) is not None,
            "line 1 should be `issued <code_id>`", lines, example)
    _expect(len(lines) == 4,
            "expected 4 lines (issued, verified, rate limited, bad request),"
            " got %d" % len(lines), lines, example)
    _expect(lines[1] == "verified", "line 2 should be `verified`",
            lines, example)
    delay = re.fullmatch(r"rate limited, retry in ([0-9]+)s", lines[2])
    _expect(delay is not None and int(delay.group(1)) > 0,
            "line 3 should be `rate limited, retry in <N>s` with N > 0",
            lines, example)
    _expect(re.fullmatch(r"bad request: recipient: \S.*", lines[3])
            is not None,
            "line 4 should be `bad request: recipient: <description>`",
            lines, example)
    _expect(status == 0, "exit status should be 0, was %d" % status,
            lines, example)


def check_wrong_code(server, node_dir):
    example = Example(node_dir, server.address, "grace@example.com")
    first = example.first_line()
    code = _code_for(server, example)
    wrong = code[:-1] + str((int(code[-1]) + 1) % 10)
    rest, status = example.finish(wrong)
    lines = [first] + rest

    _expect(re.fullmatch(r"issued \S+", first) is not None,
            "line 1 should be `issued <code_id>`", lines, example)
    _expect(rest == ["rejected VERIFY_OUTCOME_WRONG_CODE"],
            "after a wrong code the only further line should be "
            "`rejected VERIFY_OUTCOME_WRONG_CODE`", lines, example)
    _expect(status == 1, "exit status should be 1, was %d" % status,
            lines, example)


def main():
    parser = argument_parser(__doc__.splitlines()[0])
    args = parser.parse_args()
    node_dir = os.path.join(args.source_dir, "clients", "node")

    try:
        _install_packages(node_dir)
        with AuthcodeServer(args.authcode, args.pg_dir) as server:
            for check in (check_right_code, check_wrong_code):
                try:
                    check(server, node_dir)
                except TestFailure as failure:
                    raise TestFailure("%s: %s\nserver stderr (end):\n%s" % (
                        check.__name__, failure,
                        server.stderr()[-_SERVER_LOG_TAIL:]))
                print("node_client_test: %s passed" % check.__name__)
    except TestFailure as failure:
        print("node_client_test: FAIL %s" % failure, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
