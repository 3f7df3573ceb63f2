"""Runs the real authcode server for the client tests.

The client tests (one per language, tests/clients/*_test.py) drive the
examples in clients/ against a server started here: the binary CMake built,
a fresh database in the test cluster (scripts/pg-tmp.sh, started by the
CTest fixture), made-up keys, and the console provider, whose output is
where the tests read the codes from.

    with AuthcodeServer(binary, pg_dir) as server:
        server.address                      # "127.0.0.1:PORT"
        code = server.wait_for_code("ada@example.com")

Only the standard library and Debian's psql are used.
"""

import argparse
import base64
import os
import re
import secrets
import subprocess
import tempfile
import threading
import time
import urllib.parse

_STARTED = re.compile(r"event=server\.started .*port=([0-9]+)")
_MAIL = re.compile(
    r"----- authcode console mail (\S+) -----\n(.*?)"
    r"----- end authcode console mail \1 -----\n", re.S)
# What AddressSanitizer, LeakSanitizer and UBSan print when they find
# something (scripts/test.sh runs the suite on a sanitized build).
_SANITIZER_REPORT = re.compile(
    r"ERROR: (AddressSanitizer|LeakSanitizer)|: runtime error: ")
# The sanitizer settings passed on to the server (scripts/test.sh sets
# them), so that it reports and stops the way the test binaries do.
_SANITIZER_SETTINGS = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")


def argument_parser(description):
    """The flags every client test takes from tests/CMakeLists.txt."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--authcode", required=True,
                        help="the authcode server binary")
    parser.add_argument("--pg-dir", required=True,
                        help="the test cluster's folder (scripts/pg-tmp.sh)")
    parser.add_argument("--build-dir", required=True,
                        help="the CMake build tree")
    parser.add_argument("--source-dir", required=True,
                        help="the source tree")
    return parser


def _key_ring(key_id):
    return "%s:%s" % (key_id, base64.b64encode(secrets.token_bytes(32))
                      .decode())


def _with_database(url, name):
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


class AuthcodeServer:
    """The authcode binary on a free loopback port and a fresh database."""

    def __init__(self, binary, pg_dir, config="", env=None):
        self.binary = binary
        with open(os.path.join(pg_dir, "url"), encoding="utf-8") as f:
            self._cluster_url = f.read().strip()
        self._database = "authcode_client_%d_%s" % (os.getpid(),
                                                    secrets.token_hex(4))
        self._dir = tempfile.mkdtemp(prefix="authcode-client-test.")
        self._config_path = os.path.join(self._dir, "authcode.toml")
        with open(self._config_path, "w", encoding="utf-8") as f:
            f.write(config)
        self._extra_env = dict(env or {})
        self._out = []
        self._err = []
        self._lock = threading.Lock()
        self._process = None
        self._drains = []
        self.port = None

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def __enter__(self):
        self._psql("CREATE DATABASE %s" % self._database)
        env = {
            "PATH": "/usr/bin:/bin",
            "AUTHCODE_DATABASE_URL": _with_database(self._cluster_url,
                                                    self._database),
            "AUTHCODE_HASHING_KEYS": _key_ring("h1"),
            "AUTHCODE_OUTBOX_KEYS": _key_ring("o1"),
            "AUTHCODE_LISTEN": "127.0.0.1:0",
        }
        env.update({name: os.environ[name] for name in _SANITIZER_SETTINGS
                    if name in os.environ})
        env.update(self._extra_env)
        self._keep_inputs(env)
        self._process = subprocess.Popen(
            [self.binary, "--config", self._config_path],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL)
        for stream, into in ((self._process.stdout, self._out),
                             (self._process.stderr, self._err)):
            drain = threading.Thread(target=self._drain, args=(stream, into),
                                     daemon=True)
            drain.start()
            self._drains.append(drain)
        match = self._wait(lambda: _STARTED.search(self.stderr()), 30)
        if match is None:
            self.__exit__(None, None, None)
            raise RuntimeError("authcode did not start:\n" + self.stderr())
        self.port = int(match.group(1))
        return self

    def __exit__(self, *exc):
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        for drain in self._drains:
            drain.join(timeout=10)
        self._keep_outputs()
        self._psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % self._database)
        subprocess.run(["rm", "-rf", self._dir], check=False)
        if _SANITIZER_REPORT.search(self.stderr()):
            raise AssertionError("authcode reported a sanitizer finding:\n"
                                 + self.stderr())
        return False

    def stdout(self):
        with self._lock:
            return "".join(self._out)

    def stderr(self):
        with self._lock:
            return "".join(self._err)

    def wait_for_code(self, recipient, after=0, timeout=20):
        """The code in the first console mail to `recipient` past the
        first `after` ones, or None after `timeout` seconds."""
        def find():
            mails = [m.group(2) for m in _MAIL.finditer(self.stdout())
                     if ("\nTo: %s\n" % recipient) in "\n" + m.group(2)]
            if len(mails) <= after:
                return None
            code = re.search(r"\b([0-9]{6,10})\b",
                             mails[after].split("----- text/plain -----")[1])
            return code.group(1) if code else None
        return self._wait(find, timeout)

    # With AUTHCODE_TEST_LOG_DIR set, the server's environment, config,
    # stdout and stderr are kept there for tests/e2e/log_scan.py.
    def _kept(self, suffix):
        log_dir = os.environ.get("AUTHCODE_TEST_LOG_DIR")
        if not log_dir:
            return None
        return os.path.join(log_dir, "client-%d-%s%s" % (
            os.getpid(), self._database, suffix))

    def _keep_inputs(self, env):
        if self._kept("") is None:
            return
        with open(self._kept(".env"), "w") as f:
            f.writelines("%s=%s\n" % item for item in env.items())
        with open(self._config_path) as src, \
                open(self._kept(".config"), "w") as dst:
            dst.write(src.read())

    def _keep_outputs(self):
        if self._kept("") is None or self._process is None:
            return
        with open(self._kept(".out"), "w") as f:
            f.write(self.stdout())
        with open(self._kept(".err"), "w") as f:
            f.write(self.stderr())

    def _drain(self, stream, into):
        for line in iter(stream.readline, b""):
            with self._lock:
                into.append(line.decode("utf-8", "replace"))

    @staticmethod
    def _wait(probe, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = probe()
            if result:
                return result
            time.sleep(0.05)
        return None

    def _psql(self, statement):
        subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1",
                        self._cluster_url, "-c", statement],
                       check=True, stdout=subprocess.DEVNULL)
