"""Runs clients/python/example.py against the real authcode server.

    python_client_test.py --authcode BIN --pg-dir DIR --build-dir BUILD
                          --source-dir SRC

The server (see harness.py) mails codes through the console provider; the
test reads each code from there and types it into the example, then checks
every line the example prints and its exit status. The stubs come from
BUILD/clients/python/gen (the authcode_python_stubs target).
"""

import collections
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ARGS = None
_TIMEOUT_SECONDS = 30

# One run of the example: its exit status, its stdout lines, and both its
# outputs as text for failure messages.
Run = collections.namedtuple("Run", "status lines report")


def _parse_args(argv):
    parser = harness.argument_parser(__doc__.splitlines()[0])
    return parser.parse_known_args(argv)


class PythonClientTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.stubs = os.path.join(ARGS.build_dir, "clients", "python", "gen")
        if not os.path.isfile(os.path.join(cls.stubs, "authcode", "v1",
                                           "authcode_pb2.py")):
            raise AssertionError("no Python stubs in %s: build the "
                                 "authcode_python_stubs target" % cls.stubs)
        cls.server = cls.enterClassContext(
            harness.AuthcodeServer(ARGS.authcode, ARGS.pg_dir))

    def run_example(self, recipient, wrong_code=False):
        """Runs the example for `recipient` and types in the mailed code, or
        that code with its last digit changed. Returns a Run."""
        example = os.path.join(ARGS.source_dir, "clients", "python",
                               "example.py")
        process = subprocess.Popen(
            [sys.executable, example, "--target", self.server.address,
             "--recipient", recipient, "--stubs", self.stubs],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)

        code = self.server.wait_for_code(recipient)
        if code is None:
            process.kill()
            out, err = process.communicate()
            self.fail("no code was mailed to %s.\nexample stdout:\n%s\n"
                      "example stderr:\n%s\nserver stderr:\n%s"
                      % (recipient, out, err, self.server.stderr()))
        if wrong_code:
            code = code[:-1] + str((int(code[-1]) + 1) % 10)

        try:
            out, err = process.communicate(code + "\n",
                                           timeout=_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            self.fail("example.py did not finish in %ds.\nstdout:\n%s\n"
                      "stderr:\n%s" % (_TIMEOUT_SECONDS, out, err))
        report = "example stdout:\n%s\nexample stderr:\n%s" % (out, err)
        self.assertIn("code: ", err, "the prompt belongs on stderr.\n"
                      + report)
        return Run(process.returncode, out.splitlines(), report)

    def assert_lines(self, run, second):
        """Checks the four lines of `run`, whose second one is `second`."""
        lines = run.lines
        self.assertEqual(len(lines), 4, "expected 4 lines.\n" + run.report)
        self.assertRegex(lines[0], r"^issued \S+$", run.report)
        self.assertEqual(lines[1], second, run.report)

        delay = re.fullmatch(r"rate limited, retry in ([0-9]+)s", lines[2])
        self.assertIsNotNone(delay, "third line.\n" + run.report)
        self.assertGreater(int(delay.group(1)), 0,
                           "the retry delay must be positive.\n" + run.report)

        self.assertRegex(lines[3], r"^bad request: recipient: \S",
                         "the violation must name the field recipient.\n"
                         + run.report)

    def test_verifies_mailed_code(self):
        run = self.run_example("ada@example.com")
        self.assert_lines(run, "verified")
        self.assertEqual(run.status, 0, "exit status.\n" + run.report)

    def test_rejects_wrong_code(self):
        run = self.run_example("grace@example.com", wrong_code=True)
        self.assert_lines(run, "rejected VERIFY_OUTCOME_WRONG_CODE")
        self.assertEqual(run.status, 1, "a rejected code exits 1.\n"
                         + run.report)


if __name__ == "__main__":
    ARGS, rest = _parse_args(sys.argv[1:])
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
