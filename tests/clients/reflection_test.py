"""Checks that the server describes itself over gRPC server reflection.

    reflection_test.py --authcode BIN --pg-dir DIR --build-dir BUILD
                       --source-dir SRC

Talks grpc.reflection.v1alpha on one ServerReflectionInfo stream, as grpcurl
would: lists the services, fetches the file that defines
authcode.v1.AuthCodeService and every file it imports, loads them into a
fresh descriptor pool, and resolves the API from there. Uses the reflection
stubs in BUILD/clients/python/gen (the authcode_python_stubs target), and
harness.py for the server.
"""

import os
import queue
import sys
import unittest

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ARGS = None
_TIMEOUT_SECONDS = 10
_SERVICE = "authcode.v1.AuthCodeService"


def _parse_args(argv):
    parser = harness.argument_parser(__doc__.splitlines()[0])
    return parser.parse_known_args(argv)


class ReflectionStream:
    """One ServerReflectionInfo call: each ask() sends a request and waits
    for its response, so later requests can depend on earlier answers."""

    def __init__(self, channel):
        self._requests = queue.Queue()
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        self._call = stub.ServerReflectionInfo(
            iter(self._requests.get, None), timeout=_TIMEOUT_SECONDS)

    def ask(self, **fields):
        self._requests.put(reflection_pb2.ServerReflectionRequest(**fields))
        return next(self._call)

    def close(self):
        self._requests.put(None)
        self._call.cancel()


class ReflectionTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = cls.enterClassContext(
            harness.AuthcodeServer(ARGS.authcode, ARGS.pg_dir))

    def setUp(self):
        channel = grpc.insecure_channel(self.server.address)
        self.addCleanup(channel.close)
        self.stream = ReflectionStream(channel)
        self.addCleanup(self.stream.close)

    def fetch_files(self, symbol):
        """The FileDescriptorProtos that define `symbol` and everything it
        imports, by file name; imports the server did not send along are
        asked for by file name."""
        files = {}
        response = self.stream.ask(file_containing_symbol=symbol)
        pending = list(self.file_protos(response, symbol))
        while pending:
            proto = pending.pop()
            if proto.name in files:
                continue
            files[proto.name] = proto
            for name in proto.dependency:
                if name not in files:
                    response = self.stream.ask(file_by_filename=name)
                    pending.extend(self.file_protos(response, name))
        return files

    def file_protos(self, response, asked):
        self.assertFalse(response.HasField("error_response"),
                         "asked for %s: %s" % (asked, response.error_response))
        blobs = response.file_descriptor_response.file_descriptor_proto
        self.assertTrue(blobs, "no file descriptors for %s" % asked)
        return [descriptor_pb2.FileDescriptorProto.FromString(blob)
                for blob in blobs]

    @staticmethod
    def load(files):
        """A fresh pool holding `files`, each added after its imports."""
        pool = descriptor_pool.DescriptorPool()
        added = set()

        def add(name):
            if name in added:
                return
            for dependency in files[name].dependency:
                add(dependency)
            pool.Add(files[name])
            added.add(name)

        for name in sorted(files):
            add(name)
        return pool

    def test_lists_services(self):
        response = self.stream.ask(list_services="*")
        names = {s.name for s in response.list_services_response.service}
        for expected in (_SERVICE, "grpc.health.v1.Health",
                         "grpc.reflection.v1alpha.ServerReflection"):
            self.assertIn(expected, names, "list_services")

    def test_describes_api(self):
        files = self.fetch_files(_SERVICE)
        self.assertIn("authcode/v1/authcode.proto", files)
        self.assertIn("google/protobuf/timestamp.proto", files,
                      "imports must be fetched too")
        pool = self.load(files)

        service = pool.FindServiceByName(_SERVICE)
        methods = {m.name: (m.input_type.full_name, m.output_type.full_name)
                   for m in service.methods}
        self.assertEqual(methods, {
            name: ("authcode.v1.%sRequest" % name,
                   "authcode.v1.%sResponse" % name)
            for name in ("IssueCode", "VerifyCode", "GetDelivery")})

        issue = pool.FindMessageTypeByName("authcode.v1.IssueCodeRequest")
        fields = [f.name for f in issue.fields]
        self.assertEqual(fields[:2], ["recipient", "purpose"])
        for name in ("locale", "template_values", "client_ip",
                     "idempotency_key"):
            self.assertIn(name, fields, "IssueCodeRequest")
        expires = pool.FindMessageTypeByName(
            "authcode.v1.IssueCodeResponse").fields_by_name["expires_at"]
        self.assertEqual(expires.message_type.full_name,
                         "google.protobuf.Timestamp")

        outcome = pool.FindEnumTypeByName("authcode.v1.VerifyOutcome")
        for name in ("VERIFY_OUTCOME_VERIFIED", "VERIFY_OUTCOME_WRONG_CODE",
                     "VERIFY_OUTCOME_EXPIRED", "VERIFY_OUTCOME_NO_ACTIVE_CODE",
                     "VERIFY_OUTCOME_TOO_MANY_ATTEMPTS"):
            self.assertIn(name, outcome.values_by_name, "VerifyOutcome")
        self.assertEqual(
            pool.FindMessageTypeByName("authcode.v1.VerifyCodeResponse")
            .fields_by_name["outcome"].enum_type.full_name,
            "authcode.v1.VerifyOutcome")

    def test_finds_file_by_name(self):
        # The server sends imports along with a file, so fetch_files rarely
        # needs this request; check it on its own.
        name = "google/protobuf/timestamp.proto"
        protos = self.file_protos(self.stream.ask(file_by_filename=name),
                                  name)
        self.assertEqual(protos[0].name, name)
        self.assertEqual(protos[0].message_type[0].name, "Timestamp")

    def test_unknown_symbol_is_not_found(self):
        response = self.stream.ask(file_containing_symbol="authcode.v1.Nope")
        self.assertEqual(response.error_response.error_code,
                         grpc.StatusCode.NOT_FOUND.value[0])


if __name__ == "__main__":
    ARGS, rest = _parse_args(sys.argv[1:])
    stubs = os.path.join(ARGS.build_dir, "clients", "python", "gen")
    sys.path.insert(0, stubs)
    try:
        from grpc_reflection.v1alpha import (reflection_pb2,
                                             reflection_pb2_grpc)
    except ImportError as error:
        sys.exit("reflection_test: no reflection stubs in %s (%s): build "
                 "the authcode_python_stubs target" % (stubs, error))
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
