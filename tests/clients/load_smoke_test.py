"""Runs the load tool (bench/load/, authcode_load) for a few seconds in
each mode against the real server, so that it keeps building and working.

    load_smoke_test.py --authcode BIN --pg-dir DIR --build-dir BUILD
                       --source-dir SRC [--load BIN] [unittest arguments]

The server (see harness.py) sends its mail through a postmark provider
whose endpoint is the load tool's own sink, as scripts/load.sh configures
it, so the tool learns every code it issues. The load tool exits 0 only
when some call succeeded, none failed and the sink read every mail; each
case checks that, and what the tool's JSON report says it did.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ARGS = None
_TIMEOUT_SECONDS = 120

# Limits no caller of the smoke runs reaches, and mail to the sink.
_CONFIG = """
[codes]
ttl = "1h"
[limits]
issue = [{ window = "1s", limit = 1000000 }]
max_failures = 100000
[delivery]
chain = ["sink"]
[providers.sink]
type = "postmark"
server_token = "load-smoke"
endpoint = "http://127.0.0.1:%d"
"""


def _parse_args(argv):
    parser = harness.argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--load", help="the authcode_load binary (default: "
                        "BUILD/bench/authcode_load)")
    return parser.parse_known_args(argv)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoadSmokeTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.load = ARGS.load or os.path.join(ARGS.build_dir, "bench",
                                             "authcode_load")
        if not os.access(cls.load, os.X_OK):
            raise AssertionError("no load tool at %s: build the "
                                 "authcode_load target" % cls.load)
        cls.sink_port = _free_port()
        cls.server = cls.enterClassContext(harness.AuthcodeServer(
            ARGS.authcode, ARGS.pg_dir, config=_CONFIG % cls.sink_port))

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="authcode-load-smoke.")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    def run_load(self, *args):
        """Runs authcode_load --smoke with `args`; returns its JSON report
        after checking that it exited 0."""
        report = os.path.join(self.dir, "report.json")
        command = [self.load, "--smoke", "--target", self.server.address,
                   "--concurrency", "8", "--sink-port", str(self.sink_port),
                   "--pool-file", os.path.join(self.dir, "pool"),
                   "--json", report] + list(args)
        result = subprocess.run(command, capture_output=True, text=True,
                                timeout=_TIMEOUT_SECONDS, check=False)
        description = "$ %s\nexit %d\nstdout:\n%s\nstderr:\n%s" % (
            " ".join(command), result.returncode, result.stdout,
            result.stderr)
        self.assertEqual(result.returncode, 0, description
                         + "\nserver stderr:\n" + self.server.stderr())
        with open(report, encoding="utf-8") as f:
            return json.load(f), description

    def test_issue_learns_codes_from_mail(self):
        report, description = self.run_load("--mode", "issue")
        self.assertGreater(report["issue"]["ok"], 0, description)
        self.assertEqual(report["issue"]["failed"], {}, description)
        self.assertGreater(report["delivery"]["delivered_in_window"], 0,
                           description)
        self.assertEqual(report["delivery"]["refused"], 0, description)
        self.assertGreater(report["pool_size"], 0, description)

    def test_verify_guesses_right_and_wrong(self):
        report, description = self.run_load("--mode", "verify",
                                            "--min-pool", "200")
        outcomes = report["verify"]["outcomes"]
        self.assertGreater(report["prefill_requests"], 0, description)
        self.assertGreater(outcomes["right"].get("VERIFIED", 0), 0,
                           description)
        self.assertGreater(outcomes["wrong"].get("WRONG_CODE", 0), 0,
                           description)
        self.assertEqual(report["verify"]["failed"], {}, description)

    def test_mixed_stops_after_requests(self):
        report, description = self.run_load("--mode", "mixed", "--requests",
                                             "500", "--issue-share", "0.5")
        self.assertEqual(report["requests"], 500, description)
        self.assertGreater(report["issue"]["ok"], 0, description)
        self.assertGreater(report["verify"]["ok"], 0, description)


if __name__ == "__main__":
    ARGS, rest = _parse_args(sys.argv[1:])
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
