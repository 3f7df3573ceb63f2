"""Runs the Go example (clients/go/example) against the real server.

The example issues a code, reads it on stdin, verifies it, then provokes a
rate limit and a bad request, printing one line per step; this test feeds it
the code from the console mail and checks every line. A second run, for
another recipient, types a wrong code and expects the rejection and exit
status 1.

Exit status 0 when all checks pass, 1 otherwise.
"""

import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import AuthcodeServer, argument_parser  # noqa: E402

EXAMPLE_TIMEOUT_S = 60


class Failure(Exception):
    pass


def parse_args():
    parser = argument_parser(__doc__.splitlines()[0])
    return parser.parse_args()


def example_binary(args):
    path = os.path.join(args.build_dir, "clients", "go", "authcode-example")
    if not os.access(path, os.X_OK):
        raise Failure(
            "the Go client was not built: %s is missing. Build the CMake "
            "target authcode_go_example; CMake skips it, with a message at "
            "configure time, when go, protoc-gen-go, protoc-gen-go-grpc or "
            "Debian's Go libraries are missing (see %s)." %
            (path, os.path.join(args.source_dir, "clients", "go",
                                "README.md")))
    return path


def run_example(binary, server, recipient, typed):
    """Starts the example, waits for the code mailed to `recipient`, types
    typed(code) and returns (exit status, stdout, stderr)."""
    process = subprocess.Popen(
        [binary, "-target", server.address, "-recipient", recipient],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    code = server.wait_for_code(recipient)
    if code is None:
        process.kill()
        out, err = process.communicate()
        raise Failure("no console mail with a code reached %s\n%s" %
                      (recipient, transcript(out, err, server)))
    try:
        out, err = process.communicate(typed(code) + "\n",
                                       timeout=EXAMPLE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise Failure("the example did not finish within %ds\n%s" %
                      (EXAMPLE_TIMEOUT_S, transcript(out, err, server)))
    return process.returncode, out, err


def transcript(out, err, server):
    return ("--- example stdout ---\n%s--- example stderr ---\n%s\n"
            "--- server stderr ---\n%s" % (out, err, server.stderr()))


def expect(condition, message, out, err, server):
    if not condition:
        raise Failure("%s\n%s" % (message, transcript(out, err, server)))


def check_happy_path(binary, server):
    status, out, err = run_example(binary, server, "ada@example.com",
                                   lambda code: code)
    lines = out.splitlines()
    expect(status == 0, "expected exit status 0, got %d" % status,
           out, err, server)
    expect(len(lines) == 4, "expected 4 lines on stdout, got %d" % len(lines),
           out, err, server)

    expect(re.fullmatch(r"issued \S+", lines[0]),
           "line 1: expected 'issued <code_id>', got %r" % lines[0],
           out, err, server)
    expect(lines[1] == "verified",
           "line 2: expected 'verified', got %r" % lines[1], out, err, server)
    retry = re.fullmatch(r"rate limited, retry in ([0-9]+)s", lines[2])
    expect(retry and int(retry.group(1)) > 0,
           "line 3: expected 'rate limited, retry in <seconds>s' with a "
           "positive delay, got %r" % lines[2], out, err, server)
    expect(re.fullmatch(r"bad request: recipient: \S.*", lines[3]),
           "line 4: expected 'bad request: recipient: <description>', got %r"
           % lines[3], out, err, server)


def check_wrong_code(binary, server):
    def wrong(code):
        return code[:-1] + str((int(code[-1]) + 1) % 10)

    status, out, err = run_example(binary, server, "grace@example.com", wrong)
    lines = out.splitlines()
    expect(status == 1, "wrong code: expected exit status 1, got %d" % status,
           out, err, server)
    expect(len(lines) == 2 and re.fullmatch(r"issued \S+", lines[0]) and
           lines[1] == "rejected VERIFY_OUTCOME_WRONG_CODE",
           "wrong code: expected 'issued <code_id>' then "
           "'rejected VERIFY_OUTCOME_WRONG_CODE', got %r" % lines,
           out, err, server)


def main():
    args = parse_args()
    try:
        binary = example_binary(args)
        with AuthcodeServer(args.authcode, args.pg_dir) as server:
            check_happy_path(binary, server)
            check_wrong_code(binary, server)
    except Failure as failure:
        print("go_client_test: FAILED: %s" % failure, file=sys.stderr)
        return 1
    print("go_client_test: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
