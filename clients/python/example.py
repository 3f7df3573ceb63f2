#!/usr/bin/python3
"""Issues and verifies a code with authcode, and shows how errors look.

    example.py --target HOST:PORT --recipient ADDR [--purpose login]

Steps, one line of output each:
  1. IssueCode for the recipient:              issued <code_id>
  2. reads the code from stdin (prompt "code: " on stderr)
  3. VerifyCode:                               verified
                                               or rejected <OUTCOME_NAME>
  4. IssueCode again at once; the server refuses with RESOURCE_EXHAUSTED and
     a google.rpc.RetryInfo:                   rate limited, retry in <N>s
  5. IssueCode for "not an address"; INVALID_ARGUMENT with a
     google.rpc.BadRequest:                    bad request: <field>: <why>

Steps 4 and 5 run whatever 1-3 gave. The exit status is 0 when the code
verified and steps 4 and 5 failed as described, 1 otherwise (a rejected
code included), 2 for bad usage.

The generated stubs (see README.md) are found in the folder named by
--stubs, else by the AUTHCODE_PY_STUBS environment variable, else in
../../build/clients/python/gen relative to this script.
"""

import argparse
import math
import os
import sys

import grpc

_DEFAULT_STUBS = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              "..", "..", "build", "clients", "python", "gen")
_STUBS_HELP = ("folder of the generated Python stubs (default: "
               "$AUTHCODE_PY_STUBS, else ../../build/clients/python/gen "
               "relative to this script)")


def _stubs_dir():
    """The --stubs folder, read before the main parser so that the stubs
    can be imported at the top of the module like any other."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--stubs", default=os.environ.get(
        "AUTHCODE_PY_STUBS", _DEFAULT_STUBS))
    return parser.parse_known_args()[0].stubs


_STUBS = _stubs_dir()
sys.path.insert(0, _STUBS)
try:
    from authcode.v1 import authcode_pb2, authcode_pb2_grpc
    from google.rpc import error_details_pb2, status_pb2
except ImportError as error:
    sys.exit("example.py: cannot import the generated stubs from %s (%s); "
             "build the authcode_python_stubs target or pass --stubs"
             % (_STUBS, error))

# Every call gets a deadline, so a stuck server fails the example instead of
# hanging it.
_TIMEOUT_SECONDS = 10


def rich_status(error):
    """The google.rpc.Status that a failed call carries in its trailing
    metadata ("grpc-status-details-bin"), or None when it has none.

    This is what grpcio-status's rpc_status.from_call() does; that package
    is not in Debian, and the few lines below are all it takes.
    """
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            return status_pb2.Status.FromString(value)
    return None


def unpack_details(error, message_type):
    """The details of `error` that are of `message_type` (a google.rpc
    message class such as RetryInfo), unpacked from their Any wrappers."""
    status = rich_status(error)
    found = []
    for detail in status.details if status else ():
        if detail.Is(message_type.DESCRIPTOR):
            message = message_type()
            detail.Unpack(message)
            found.append(message)
    return found


def issue(stub, recipient, purpose):
    """Step 1: asks for a code to be mailed. True on success."""
    try:
        response = stub.IssueCode(
            authcode_pb2.IssueCodeRequest(recipient=recipient,
                                          purpose=purpose),
            timeout=_TIMEOUT_SECONDS)
    except grpc.RpcError as error:
        return _unexpected("IssueCode", error)
    print("issued", response.code_id, flush=True)
    return True


def verify(stub, recipient, purpose):
    """Steps 2 and 3: checks the code the user types. True if it verified.
    A wrong code is an answer, not an error: it comes back as an outcome."""
    sys.stderr.write("code: ")
    sys.stderr.flush()
    code = sys.stdin.readline().strip()
    if not code:
        print("example.py: no code on stdin", file=sys.stderr)
        return False

    try:
        response = stub.VerifyCode(
            authcode_pb2.VerifyCodeRequest(recipient=recipient,
                                           purpose=purpose, code=code),
            timeout=_TIMEOUT_SECONDS)
    except grpc.RpcError as error:
        return _unexpected("VerifyCode", error)
    if response.outcome == authcode_pb2.VERIFY_OUTCOME_VERIFIED:
        print("verified")
        return True
    print("rejected", authcode_pb2.VerifyOutcome.Name(response.outcome))
    return False


def issue_too_soon(stub, recipient, purpose):
    """Step 4: a second IssueCode right away hits the rate limit. True if
    the server said when to retry."""
    try:
        stub.IssueCode(
            authcode_pb2.IssueCodeRequest(recipient=recipient,
                                          purpose=purpose),
            timeout=_TIMEOUT_SECONDS)
    except grpc.RpcError as error:
        infos = unpack_details(error, error_details_pb2.RetryInfo)
        if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or not infos:
            return _unexpected("IssueCode (again)", error)
        delay = infos[0].retry_delay.ToTimedelta().total_seconds()
        print("rate limited, retry in %ds" % math.ceil(delay))
        return True
    print("example.py: a second IssueCode at once was accepted; expected "
          "RESOURCE_EXHAUSTED", file=sys.stderr)
    return False


def issue_to_bad_address(stub, purpose):
    """Step 5: a malformed recipient. True if the server named the field."""
    try:
        stub.IssueCode(
            authcode_pb2.IssueCodeRequest(recipient="not an address",
                                          purpose=purpose),
            timeout=_TIMEOUT_SECONDS)
    except grpc.RpcError as error:
        requests = unpack_details(error, error_details_pb2.BadRequest)
        if error.code() != grpc.StatusCode.INVALID_ARGUMENT or not requests:
            return _unexpected("IssueCode (bad address)", error)
        for violation in requests[0].field_violations:
            print("bad request: %s: %s"
                  % (violation.field, violation.description))
        return True
    print("example.py: IssueCode for \"not an address\" was accepted; "
          "expected INVALID_ARGUMENT", file=sys.stderr)
    return False


def _unexpected(call, error):
    print("example.py: %s failed: %s: %s"
          % (call, error.code().name, error.details()), file=sys.stderr)
    return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True,
                        help="the server, HOST:PORT")
    parser.add_argument("--recipient", required=True,
                        help="the email address to send the code to")
    parser.add_argument("--purpose", default="login",
                        help="what the code is for (default: login)")
    parser.add_argument("--stubs", help=_STUBS_HELP)
    args = parser.parse_args()

    # Plain text on the wire: fine on loopback. Elsewhere use
    # grpc.secure_channel with grpc.ssl_channel_credentials().
    with grpc.insecure_channel(args.target) as channel:
        stub = authcode_pb2_grpc.AuthCodeServiceStub(channel)
        results = [
            issue(stub, args.recipient, args.purpose)
            and verify(stub, args.recipient, args.purpose),
            issue_too_soon(stub, args.recipient, args.purpose),
            issue_to_bad_address(stub, args.purpose),
        ]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
