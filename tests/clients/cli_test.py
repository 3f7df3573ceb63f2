"""Drives authcode-cli (clients/cli/) against the real server.

One server (tests/clients/harness.py, console provider) serves every case;
each case uses its own recipient, so rate limits never cross cases. The
cases check what scripts rely on: the exit codes, the one JSON object on
stdout with --json, and the line on stderr for every failure. TLS is
checked through a TLS-terminating proxy started here, with certificates
made by the openssl command.

    /usr/bin/python3 tests/clients/cli_test.py --authcode BIN --pg-dir DIR \\
        --build-dir BUILD --source-dir SRC [unittest arguments]
"""

import datetime
import hashlib
import json
import os
import re
import secrets
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

from harness import AuthcodeServer, argument_parser

ARGS = None  # the parsed command line, set in main()
SERVER = None  # the AuthcodeServer shared by every case

EXIT_OK, EXIT_REJECTED, EXIT_USAGE, EXIT_CALL_FAILED, EXIT_BACK_OFF = range(5)


def cli_binary():
    return os.path.join(ARGS.build_dir, "clients", "cli", "authcode-cli")


def run_cli(*args, target=True, env=None, timeout=30):
    """Runs authcode-cli with `args`, after --target SERVER unless `target`
    is False; AUTHCODE_TARGET comes only from `env`."""
    command = [cli_binary()]
    if target:
        command += ["--target", SERVER.address]
    command += list(args)
    full_env = {k: v for k, v in os.environ.items() if k != "AUTHCODE_TARGET"}
    full_env.update(env or {})
    return subprocess.run(command, env=full_env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def describe(result):
    return "\n$ %s\nexit %d\nstdout: %r\nstderr: %r" % (
        " ".join(result.args), result.returncode, result.stdout,
        result.stderr)


def parse_rfc3339(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def free_port():
    """A loopback port that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_pki(directory):
    """Writes a CA, a server certificate for 127.0.0.1 and a client
    certificate, with their keys, into `directory`; returns the paths by
    name ("ca.pem", "server.key", ...)."""
    path = {name: os.path.join(directory, name) for name in (
        "ca.pem", "ca.key", "server.pem", "server.key", "client.pem",
        "client.key")}

    def openssl(*args):
        subprocess.run(["openssl"] + list(args), check=True,
                       capture_output=True)

    new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
               "-nodes"]
    openssl("req", "-x509", *new_key, "-keyout", path["ca.key"], "-out",
            path["ca.pem"], "-subj", "/CN=authcode-cli test CA", "-days",
            "1")
    for serial, (name, extension) in enumerate(
            [("server", "subjectAltName=IP:127.0.0.1"),
             ("client", "extendedKeyUsage=clientAuth")], start=2):
        request = os.path.join(directory, name + ".csr")
        extensions = os.path.join(directory, name + ".ext")
        with open(extensions, "w", encoding="utf-8") as f:
            f.write(extension + "\n")
        openssl("req", *new_key, "-keyout", path[name + ".key"], "-out",
                request, "-subj", "/CN=" + name)
        openssl("x509", "-req", "-in", request, "-CA", path["ca.pem"],
                "-CAkey", path["ca.key"], "-set_serial", str(serial),
                "-days", "1", "-extfile", extensions, "-out",
                path[name + ".pem"])
    return path


class TlsProxy:
    """A TLS-terminating proxy in front of the plaintext server, as the
    server's docs ask for in production. It demands a client certificate
    signed by the CA (mutual TLS)."""

    def __init__(self, pki, upstream):
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(pki["server.pem"], pki["server.key"])
        self._context.load_verify_locations(pki["ca.pem"])
        self._context.verify_mode = ssl.CERT_REQUIRED
        self._context.set_alpn_protocols(["h2"])
        host, port = upstream.rsplit(":", 1)
        self._upstream = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self._listener.close()

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(client,),
                             daemon=True).start()

    def _serve(self, client):
        try:
            tls = self._context.wrap_socket(client, server_side=True)
        except (OSError, ssl.SSLError):
            client.close()  # a failed handshake is the client's to report
            return
        with tls, socket.create_connection(self._upstream) as upstream:
            back = threading.Thread(target=self._pump, args=(upstream, tls),
                                    daemon=True)
            back.start()
            self._pump(tls, upstream)  # ends both ways when one side ends
            back.join(timeout=5)

    @staticmethod
    def _pump(source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except (OSError, ValueError):
                    pass


class CliTestCase(unittest.TestCase):

    def assertExit(self, result, code):
        self.assertEqual(result.returncode, code,
                         "wrong exit code" + describe(result))

    def assertJsonObject(self, result):
        """The one JSON object on stdout."""
        lines = result.stdout.splitlines()
        self.assertEqual(len(lines), 1,
                         "want exactly one line of JSON" + describe(result))
        try:
            value = json.loads(lines[0])
        except ValueError as e:
            self.fail("stdout is not JSON (%s)%s" % (e, describe(result)))
        self.assertIsInstance(value, dict, describe(result))
        return value

    def issue(self, recipient, *extra, purpose="login"):
        result = run_cli("issue", "--recipient", recipient, "--purpose",
                         purpose, *extra)
        self.assertExit(result, EXIT_OK)
        return result

    def code_for(self, recipient, after=0):
        code = SERVER.wait_for_code(recipient, after=after)
        self.assertIsNotNone(code, "no console mail to %s:\n%s" %
                             (recipient, SERVER.stdout()[-2000:]))
        return code


class IssueAndVerifyTest(CliTestCase):

    def test_issue_prints_a_line_and_the_mailed_code_verifies(self):
        issued = self.issue("ada@example.com")
        match = re.fullmatch(
            r"issued code_id=(\S+) expires_at=(\S+) resend_after=(\S+)\n",
            issued.stdout)
        self.assertIsNotNone(match, "unexpected line" + describe(issued))
        expires_at = parse_rfc3339(match.group(2))
        resend_after = parse_rfc3339(match.group(3))
        self.assertGreater(expires_at, resend_after, describe(issued))
        self.assertEqual(issued.stderr, "", describe(issued))

        verified = run_cli("verify", "--recipient", "ada@example.com",
                           "--purpose", "login", "--code",
                           self.code_for("ada@example.com"))
        self.assertExit(verified, EXIT_OK)
        self.assertEqual(verified.stdout, "verified\n", describe(verified))

    def test_issue_json_has_the_response_fields(self):
        issued = self.issue("grace@example.com", "--json", "--locale", "en",
                            "--value", "app_name=Acme", "--value",
                            "team=Ops", "--client-ip", "203.0.113.7",
                            "--idempotency-key", "cli-test-1")
        body = self.assertJsonObject(issued)
        self.assertEqual(set(body), {"code_id", "expires_at", "resend_after"},
                         describe(issued))
        self.assertTrue(body["code_id"], describe(issued))
        parse_rfc3339(body["expires_at"])
        self.assertEqual(issued.stderr, "", describe(issued))

        code = self.code_for("grace@example.com")
        verified = run_cli("--json", "verify", "--recipient",
                           "grace@example.com", "--purpose", "login",
                           "--code", code)
        self.assertExit(verified, EXIT_OK)
        self.assertEqual(self.assertJsonObject(verified)["outcome"],
                         "VERIFY_OUTCOME_VERIFIED", describe(verified))

    def test_wrong_code_exits_1_with_the_outcome(self):
        self.issue("hopper@example.com")
        code = self.code_for("hopper@example.com")
        wrong = "%0*d" % (len(code), (int(code) + 1) % 10 ** len(code))

        human = run_cli("verify", "--recipient", "hopper@example.com",
                        "--purpose", "login", "--code", wrong)
        self.assertExit(human, EXIT_REJECTED)
        self.assertRegex(human.stdout,
                         r"^rejected: wrong code \([0-9]+ attempts? left\)\n$")

        as_json = run_cli("verify", "--recipient", "hopper@example.com",
                          "--purpose", "login", "--code", wrong, "--json")
        self.assertExit(as_json, EXIT_REJECTED)
        body = self.assertJsonObject(as_json)
        self.assertEqual(body["outcome"], "VERIFY_OUTCOME_WRONG_CODE",
                         describe(as_json))
        self.assertIsInstance(body["attempts_left"], int, describe(as_json))
        self.assertNotIn("error", body, describe(as_json))

    def test_verify_without_a_code_exits_1(self):
        result = run_cli("verify", "--recipient", "nobody@example.com",
                         "--purpose", "login", "--code", "123456")
        self.assertExit(result, EXIT_REJECTED)
        self.assertEqual(result.stdout, "rejected: no active code\n",
                         describe(result))


class FailedCallTest(CliTestCase):

    def test_immediate_reissue_exits_4_with_retry_after(self):
        self.issue("lovelace@example.com")

        as_json = run_cli("issue", "--recipient", "lovelace@example.com",
                          "--purpose", "login", "--json")
        self.assertExit(as_json, EXIT_BACK_OFF)
        error = self.assertJsonObject(as_json)["error"]
        self.assertEqual(error["code"], "RESOURCE_EXHAUSTED",
                         describe(as_json))
        self.assertIsInstance(error["retry_after_seconds"], int,
                              describe(as_json))
        self.assertGreater(error["retry_after_seconds"], 0, describe(as_json))
        self.assertTrue(error["message"], describe(as_json))
        self.assertIn("issue failed: RESOURCE_EXHAUSTED", as_json.stderr,
                      describe(as_json))

        human = run_cli("issue", "--recipient", "lovelace@example.com",
                        "--purpose", "login")
        self.assertExit(human, EXIT_BACK_OFF)
        self.assertEqual(human.stdout, "", describe(human))
        self.assertRegex(human.stderr,
                         r"^authcode-cli: issue failed: RESOURCE_EXHAUSTED: "
                         r".*\(retry after [0-9]+s\)\n$")

    def test_bad_recipient_exits_3_with_a_field_violation(self):
        as_json = run_cli("issue", "--recipient", "not an address",
                          "--purpose", "login", "--json")
        self.assertExit(as_json, EXIT_CALL_FAILED)
        error = self.assertJsonObject(as_json)["error"]
        self.assertEqual(error["code"], "INVALID_ARGUMENT", describe(as_json))
        fields = [v["field"] for v in error.get("field_violations", [])]
        self.assertIn("recipient", fields, describe(as_json))
        for violation in error["field_violations"]:
            self.assertTrue(violation["description"], describe(as_json))
        self.assertIn("INVALID_ARGUMENT", as_json.stderr, describe(as_json))

        human = run_cli("issue", "--recipient", "not an address",
                        "--purpose", "login")
        self.assertExit(human, EXIT_CALL_FAILED)
        self.assertEqual(human.stdout, "", describe(human))
        self.assertRegex(human.stderr,
                         r"^authcode-cli: issue failed: INVALID_ARGUMENT: "
                         r".*recipient: .+\n$", describe(human))

    def test_unreachable_server_exits_3(self):
        target = "127.0.0.1:%d" % free_port()
        result = run_cli("--target", target, "--json", "verify",
                         "--recipient", "x@example.com", "--purpose",
                         "login", "--code", "123456", target=False)
        self.assertExit(result, EXIT_CALL_FAILED)
        self.assertEqual(self.assertJsonObject(result)["error"]["code"],
                         "UNAVAILABLE", describe(result))
        self.assertIn("verify failed: UNAVAILABLE", result.stderr,
                      describe(result))

    def test_silent_server_exits_3_at_the_timeout(self):
        with socket.socket() as silent:  # accepts connections, never answers
            silent.bind(("127.0.0.1", 0))
            silent.listen()
            target = "127.0.0.1:%d" % silent.getsockname()[1]
            started = time.monotonic()
            result = run_cli("--target", target, "--timeout", "300ms",
                             "status", "--delivery-id", "x", target=False)
            elapsed = time.monotonic() - started
        self.assertExit(result, EXIT_CALL_FAILED)
        self.assertIn("status failed: DEADLINE_EXCEEDED", result.stderr,
                      describe(result))
        self.assertLess(elapsed, 4, "--timeout 300ms was not honoured")


class HealthTest(CliTestCase):
    """The readiness probe of the container example (scripts/deploy/)."""

    def test_a_serving_server_exits_0(self):
        for service in ([], ["--service", "authcode.v1.AuthCodeService"]):
            with self.subTest(service=service):
                result = run_cli("health", *service)
                self.assertExit(result, EXIT_OK)
                self.assertEqual(result.stdout, "health status=serving\n",
                                 describe(result))

    def test_json_has_the_status(self):
        result = run_cli("--json", "health")
        self.assertExit(result, EXIT_OK)
        self.assertEqual(self.assertJsonObject(result),
                         {"status": "SERVING"}, describe(result))

    def test_an_unknown_service_exits_3(self):
        result = run_cli("health", "--service", "no.such.Service")
        self.assertExit(result, EXIT_CALL_FAILED)
        self.assertIn("health failed: NOT_FOUND", result.stderr,
                      describe(result))

    def test_unreachable_server_exits_3(self):
        target = "127.0.0.1:%d" % free_port()
        result = run_cli("--target", target, "--timeout", "1s", "health",
                         target=False)
        self.assertExit(result, EXIT_CALL_FAILED)
        self.assertIn("health failed: UNAVAILABLE", result.stderr,
                      describe(result))


class StatusTest(CliTestCase):

    def test_status_of_an_issued_code(self):
        issued = self.issue("turing@example.com", "--json")
        code_id = self.assertJsonObject(issued)["code_id"]
        self.code_for("turing@example.com")  # the console has sent it

        body = self.wait_for_state(code_id, "DELIVERY_STATE_SENT")
        self.assertEqual(body["code_id"], code_id)
        self.assertEqual(body["provider"], "console")
        self.assertGreaterEqual(body["attempts"], 1)
        for key in ("last_error", "created_at", "updated_at"):
            self.assertIn(key, body)

        human = run_cli("status", "--delivery-id", code_id)
        self.assertExit(human, EXIT_OK)
        self.assertRegex(
            human.stdout,
            r"^delivery code_id=%s state=sent attempts=[0-9]+ "
            r"provider=console .*created_at=\S+ updated_at=\S+\n$"
            % re.escape(code_id))

    def wait_for_state(self, code_id, state, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            result = run_cli("status", "--delivery-id", code_id, "--json")
            self.assertExit(result, EXIT_OK)
            body = self.assertJsonObject(result)
            if body["state"] == state or time.monotonic() > deadline:
                self.assertEqual(body["state"], state, describe(result))
                return body
            time.sleep(0.1)

    def test_status_of_an_unknown_id_exits_3(self):
        result = run_cli("status", "--delivery-id", str(uuid.uuid4()),
                         "--json")
        self.assertExit(result, EXIT_CALL_FAILED)
        self.assertEqual(self.assertJsonObject(result)["error"]["code"],
                         "NOT_FOUND", describe(result))
        self.assertIn("status failed: NOT_FOUND", result.stderr,
                      describe(result))

    def test_status_of_a_malformed_id_exits_3(self):
        # The server takes only code_ids as IssueCode returns them (UUIDs).
        result = run_cli("status", "--delivery-id", "no-such-code", "--json")
        self.assertExit(result, EXIT_CALL_FAILED)
        error = self.assertJsonObject(result)["error"]
        self.assertEqual(error["code"], "INVALID_ARGUMENT", describe(result))
        self.assertIn("code_id",
                      [v["field"] for v in error.get("field_violations", [])],
                      describe(result))


class ConnectionFlagsTest(CliTestCase):

    def test_token_and_token_file_do_not_break_calls(self):
        # This server has no [tenants]: a token is sent and not needed.
        self.issue("knuth@example.com", "--token", "s3cret")
        with tempfile.NamedTemporaryFile("w", suffix=".token") as f:
            f.write("s3cret\n")
            f.flush()
            verified = run_cli("--token-file", f.name, "verify",
                               "--recipient", "knuth@example.com",
                               "--purpose", "login", "--code",
                               self.code_for("knuth@example.com"))
        self.assertExit(verified, EXIT_OK)

    def test_target_comes_from_the_environment(self):
        result = run_cli("verify", "--recipient", "env@example.com",
                         "--purpose", "login", "--code", "123456",
                         target=False, env={"AUTHCODE_TARGET": SERVER.address})
        self.assertExit(result, EXIT_REJECTED)


class TlsTest(CliTestCase):
    """--tls, --ca-file, --cert and --key, through TlsProxy."""

    @classmethod
    def setUpClass(cls):
        cls._dir = tempfile.TemporaryDirectory(prefix="authcode-cli-tls.")
        cls.pki = make_pki(cls._dir.name)
        cls.proxy = TlsProxy(cls.pki, SERVER.address)

    @classmethod
    def tearDownClass(cls):
        cls.proxy.close()
        cls._dir.cleanup()

    def tls_flags(self, client_certificate=True, ca=True):
        flags = ["--target", self.proxy.address, "--tls", "--timeout", "5s"]
        if ca:
            flags += ["--ca-file", self.pki["ca.pem"]]
        if client_certificate:
            flags += ["--cert", self.pki["client.pem"], "--key",
                      self.pki["client.key"]]
        return flags

    def test_mutual_tls_round_trip(self):
        result = run_cli(*self.tls_flags(), "--token", "s3cret", "issue",
                         "--recipient", "dijkstra@example.com", "--purpose",
                         "login", target=False)
        self.assertExit(result, EXIT_OK)
        self.assertRegex(result.stdout, r"^issued code_id=")

    def test_without_a_client_certificate_exits_3(self):
        result = run_cli(*self.tls_flags(client_certificate=False),
                         "verify", "--recipient", "x@example.com",
                         "--purpose", "login", "--code", "123456",
                         target=False)
        self.assertExit(result, EXIT_CALL_FAILED)
        self.assertIn("verify failed:", result.stderr, describe(result))

    def test_untrusted_server_exits_3(self):
        # No --ca-file: the system's roots do not know the test CA.
        result = run_cli(*self.tls_flags(ca=False), "verify", "--recipient",
                         "x@example.com", "--purpose", "login", "--code",
                         "123456", target=False)
        self.assertExit(result, EXIT_CALL_FAILED)
        self.assertIn("verify failed: UNAVAILABLE", result.stderr,
                      describe(result))

    def test_plaintext_server_exits_3(self):
        result = run_cli("--tls", "--timeout", "5s", "status",
                         "--delivery-id", str(uuid.uuid4()))
        self.assertExit(result, EXIT_CALL_FAILED)
        self.assertIn("status failed: UNAVAILABLE", result.stderr,
                      describe(result))


class UsageTest(CliTestCase):

    def assertUsageError(self, *args, mentions):
        result = run_cli(*args)
        self.assertExit(result, EXIT_USAGE)
        self.assertEqual(result.stdout, "", describe(result))
        self.assertIn(mentions, result.stderr, describe(result))

    def test_bad_command_lines_exit_2(self):
        cases = [
            (["issue", "--recipient", "a@example.com", "--purpose", "login",
              "--frobnicate"], "--frobnicate"),
            ([], "subcommand"),
            (["issue", "--purpose", "login"], "--recipient"),
            (["verify", "--recipient", "a@example.com", "--purpose", "x"],
             "--code"),
            (["--timeout", "soon", "status", "--delivery-id", "x"],
             "--timeout"),
            (["--timeout", "0s", "status", "--delivery-id", "x"],
             "--timeout"),
            (["issue", "--recipient", "a@example.com", "--purpose", "login",
              "--value", "no-equals-sign"], "--value"),
            (["--ca-file", "/dev/null", "status", "--delivery-id", "x"],
             "--tls"),
            (["--tls", "--cert", "/dev/null", "status", "--delivery-id",
              "x"], "--key"),
            (["--token", "a", "--token-file", "/dev/null", "status",
              "--delivery-id", "x"], "--token"),
        ]
        for args, mentions in cases:
            with self.subTest(args=args):
                self.assertUsageError(*args, mentions=mentions)

    def test_unreadable_files_exit_2(self):
        missing = os.path.join(tempfile.gettempdir(), "authcode-cli-missing")
        cases = [
            ["--token-file", missing],
            ["--tls", "--ca-file", missing],
            ["--tls", "--cert", missing, "--key", missing],
        ]
        for flags in cases:
            with self.subTest(flags=flags):
                self.assertUsageError(*flags, "status", "--delivery-id", "x",
                                      mentions=missing)

    def test_usage_error_with_json_is_one_object(self):
        result = run_cli("--json", "status", "--delivery-id", "x", "--bogus")
        self.assertExit(result, EXIT_USAGE)
        self.assertEqual(self.assertJsonObject(result)["error"]["code"],
                         "USAGE", describe(result))
        self.assertIn("--bogus", result.stderr, describe(result))

    def test_help_documents_exit_codes_and_token(self):
        result = run_cli("--help", target=False)
        self.assertExit(result, EXIT_OK)
        for text in ("Exit codes:", "RESOURCE_EXHAUSTED", "issue", "verify",
                     "status", "AUTHCODE_TARGET", "token's\ntenant"):
            self.assertIn(text, result.stdout, describe(result))


class TenantTokenTest(CliTestCase):
    """A server with [tenants]: the token decides who the caller is."""

    TOKEN = "ac_cli-test-token-" + secrets.token_hex(8)

    @classmethod
    def setUpClass(cls):
        digest = hashlib.sha256(cls.TOKEN.encode()).hexdigest()
        cls.server = AuthcodeServer(
            ARGS.authcode, ARGS.pg_dir,
            config='[tenants.cli]\ntoken_sha256 = ["%s"]\n' % digest)
        cls.server.__enter__()
        cls._dir = tempfile.TemporaryDirectory(prefix="authcode-cli-token.")
        cls.token_file = os.path.join(cls._dir.name, "token")
        with open(cls.token_file, "w", encoding="utf-8") as f:
            f.write(cls.TOKEN + "\n")

    @classmethod
    def tearDownClass(cls):
        cls.server.__exit__(None, None, None)
        cls._dir.cleanup()

    def call(self, *args):
        return run_cli("--target", self.server.address, *args, target=False)

    def test_the_right_token_issues_and_verifies(self):
        issued = self.call("--token-file", self.token_file, "issue",
                           "--recipient", "tenant@example.com", "--purpose",
                           "login")
        self.assertExit(issued, EXIT_OK)
        code = self.server.wait_for_code("tenant@example.com")
        self.assertIsNotNone(code, self.server.stdout()[-2000:])
        verified = self.call("--token", self.TOKEN, "verify", "--recipient",
                             "tenant@example.com", "--purpose", "login",
                             "--code", code)
        self.assertExit(verified, EXIT_OK)
        self.assertIn("tenant=cli", self.server.stderr())

    def test_no_token_or_a_wrong_one_exits_3_unauthenticated(self):
        for flags in ([], ["--token", "ac_not-the-token"]):
            result = self.call(*flags, "--json", "issue", "--recipient",
                               "tenant@example.com", "--purpose", "login")
            self.assertExit(result, EXIT_CALL_FAILED)
            error = self.assertJsonObject(result)["error"]
            self.assertEqual(error["code"], "UNAUTHENTICATED",
                             describe(result))
            self.assertNotIn("ac_not-the-token", result.stdout + result.stderr)
        self.assertNotIn(self.TOKEN, self.server.stderr())


def main():
    global ARGS, SERVER
    parser = argument_parser(__doc__.splitlines()[0])
    ARGS, rest = parser.parse_known_args()

    if not os.access(cli_binary(), os.X_OK):
        sys.exit("cli_test: %s is missing; build the authcode-cli target"
                 % cli_binary())
    with AuthcodeServer(ARGS.authcode, ARGS.pg_dir) as server:
        SERVER = server
        program = unittest.main(argv=[sys.argv[0]] + rest, exit=False,
                                verbosity=2)
        if not program.result.wasSuccessful():
            sys.stderr.write("--- authcode stderr (last 4000 chars) ---\n%s\n"
                             % server.stderr()[-4000:])
    sys.exit(0 if program.result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
