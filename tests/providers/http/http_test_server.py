#!/usr/bin/python3
"""An HTTP/1.1 server on 127.0.0.1 for the tests of the HTTP mail providers
(Amazon SES v2, SendGrid v3).

Standard library only; run it with /usr/bin/python3. It listens on port 0,
prints the port on the first line of stdout, and exits when its stdin
closes, so it never outlives the test that started it. It serves many
connections at once and many requests on each (keep-alive, pipelining,
"Expect: 100-continue", chunked request bodies).

  --dir DIR          (required) where to write what it receives:
                     req-N.json for the N-th complete request (N from 1, in
                     arrival order over all connections), written before
                     the answer goes out; connections: the number of TCP
                     connections accepted so far ("0" at start). Both are
                     written to a temporary name and renamed.
  --tls              serve HTTPS with --cert FILE and --key FILE (make them
                     with tests/support/test_certs.py).
  --respond JSON     an answer; repeat it for a queue: request N gets the
                     N-th, and the last one repeats once the queue runs
                     out. Fields, all optional: "status" (200), "headers"
                     (an object, or a list of [name, value] pairs), "body"
                     (""), "delay_ms" (wait that long before answering,
                     without holding up other connections), "drop" (true:
                     close the connection without an answer). Content-Length
                     is always computed here. Without --respond every
                     request gets 200 with the body {} as application/json.
  --sigv4 KEY_ID:SECRET:REGION:SERVICE
                     check each request's AWS Signature Version 4
                     (Authorization header form), recomputed from what came
                     over the wire. A request that fails gets 403 with
                     x-amzn-ErrorType: SignatureDoesNotMatch whatever
                     --respond says (it still uses up its place in the
                     queue). The check also requires that host and
                     x-amz-date are signed, that x-amz-security-token is
                     signed when present, that x-amz-content-sha256 (when
                     present) is the body's hash, and that x-amz-date is
                     within 5 minutes of now.
  --self-test-sigv4 CASE_DIR...
                     run the check on the .sreq file of each AWS test-suite
                     case found under the folders (without the 5-minute
                     rule), compare with its .creq and .sts, print one line
                     per case and exit non-zero on any mismatch. --sigv4
                     defaults to the suite's published example credentials
                     here.

Each req-N.json holds:
  n            N
  connection   which TCP connection it came on (1, 2, ... in accept order)
  method       "POST", "CONNECT", ...
  target       the request target exactly as received
  version      "HTTP/1.1"
  path, query  the target's path and query, still percent-encoded ("" when
               there is no query); an absolute-form target without a path
               has path "/", an authority-form one (CONNECT) has path ""
  headers      [[name, value], ...] in received order, names as received,
               values without surrounding blanks
  body         the body (de-chunked) as text, or body_base64 instead when
               it is not UTF-8
  sigv4        only with --sigv4: {"valid", "reason" ("" when valid),
               "canonical_request", "string_to_sign",
               "expected_signature" (what this server computed)}

CONNECT requests are recorded, answered 403 and their connection closed.
A request that cannot be parsed gets 400, is not recorded, and its
connection is closed. Trailer fields of chunked bodies are read and dropped.
"""

import argparse
import asyncio
import base64
import calendar
import email.utils
import hashlib
import hmac
import http
import json
import os
import re
import ssl
import sys
import time
import urllib.parse

DEFAULT_RESPONSE = {"status": 200,
                    "headers": [["Content-Type", "application/json"]],
                    "body": "{}"}

SIGNATURE_REJECTED = {
    "status": 403,
    "headers": [["Content-Type", "application/json"],
                ["x-amzn-ErrorType", "SignatureDoesNotMatch"]],
    "body": json.dumps({"message": "The request signature we calculated "
                        "does not match the signature you provided."}),
}

CONNECT_REFUSED = {"status": 403, "headers": [], "body": "",
                   "close": True}

# The AWS Signature Version 4 test suite's example credentials.
SUITE_CREDENTIALS = ("AKIDEXAMPLE:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY:"
                     "us-east-1:service")

MAX_SKEW_SECONDS = 5 * 60


class BadRequest(Exception):
    """The bytes received are not an HTTP/1.x request."""


def text(data):
    """Bytes from the wire as a string: UTF-8 when it is, else Latin-1."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def strip_eol(line):
    if line.endswith(b"\r\n"):
        return line[:-2]
    return line[:-1] if line.endswith(b"\n") else line


def parse_head(lines):
    """The request line and header lines (no line ends) of one request.

    Returns (method, target, version, headers) with headers as a list of
    (name, value) bytes. A line folded onto the previous one (obs-fold)
    is joined to it with a space.
    """
    parts = lines[0].split(b" ")
    if len(parts) < 3 or not parts[-1].startswith(b"HTTP/1."):
        raise BadRequest("bad request line")
    method, target, version = parts[0], b" ".join(parts[1:-1]), parts[-1]
    headers = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t") and headers:
            name, value = headers[-1]
            headers[-1] = (name, value + b" " + line.strip(b" \t"))
            continue
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            raise BadRequest("bad header line")
        headers.append((name, value.strip(b" \t")))
    return method, target, version, headers


def values_of(headers, name):
    """Every value of the header `name` (lowercase bytes), in order."""
    return [value for key, value in headers if key.lower() == name]


def tokens_of(headers, name):
    """The comma-separated tokens of a header, lowercased."""
    found = []
    for value in values_of(headers, name):
        found += [t.strip().lower() for t in value.split(b",") if t.strip()]
    return found


def split_target(target):
    """(path, query) of a request target, both still percent-encoded."""
    if target.startswith(b"/"):
        path, _, query = target.partition(b"?")
        return path, query
    scheme, sep, rest = target.partition(b"://")
    if sep and scheme.isalpha():
        slash = min(i for i in (rest.find(b"/"), rest.find(b"?"), len(rest))
                    if i >= 0)
        path, _, query = rest[slash:].partition(b"?")
        return path or b"/", query
    if target == b"*":
        return target, b""
    return b"", b""  # authority-form, as CONNECT uses


# AWS Signature Version 4 ------------------------------------------------

UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                       b"abcdefghijklmnopqrstuvwxyz0123456789-._~")


def uri_encode(data):
    """Percent-encodes every byte but the unreserved ones, as SigV4 asks."""
    return b"".join(bytes([c]) if c in UNRESERVED else b"%%%02X" % c
                    for c in data)


def canonical_uri(path):
    """The canonical URI of a path as it came over the wire.

    Services other than S3 remove dot segments and empty segments, then
    percent-encode each segment once more, so an escape such as %20 on the
    wire becomes %2520 here.
    """
    segments = []
    for segment in path.split(b"/"):
        if segment == b"..":
            if segments:
                segments.pop()
        elif segment not in (b"", b"."):
            segments.append(segment)
    uri = b"/" + b"/".join(uri_encode(s) for s in segments)
    if segments and (path.endswith(b"/") or path.endswith(b"/.")
                     or path.endswith(b"/..")):
        uri += b"/"
    return uri


def canonical_query(query):
    """Parameters decoded, encoded strictly, sorted by name then value."""
    pairs = []
    for item in query.split(b"&"):
        if not item:
            continue
        name, _, value = item.partition(b"=")
        pairs.append((uri_encode(urllib.parse.unquote_to_bytes(name)),
                      uri_encode(urllib.parse.unquote_to_bytes(value))))
    return b"&".join(name + b"=" + value for name, value in sorted(pairs))


def canonical_header_value(values):
    """Values of one header trimmed, blank runs collapsed, joined by ','."""
    return b",".join(re.sub(rb"[ \t]+", b" ", v.strip(b" \t"))
                     for v in values)


def hmac_sha256(key, message):
    return hmac.new(key, message, hashlib.sha256).digest()


class SignatureError(Exception):
    """Why a request's signature is not accepted."""


class SigV4Checker:
    """Recomputes AWS Signature Version 4 for requests as received."""

    def __init__(self, spec):
        parts = spec.split(":")
        if len(parts) != 4 or not all(parts):
            raise ValueError("--sigv4 wants ACCESS_KEY_ID:SECRET_KEY:"
                             "REGION:SERVICE")
        self.key_id, self.secret, self.region, self.service = parts

    def check(self, method, path, query, headers, body, now):
        """A record {"valid", "reason", "canonical_request", ...}.

        `now` is the Unix time to hold x-amz-date against, or None to
        skip that rule.
        """
        result = {"valid": False, "reason": "", "canonical_request": "",
                  "string_to_sign": "", "expected_signature": ""}
        try:
            self._check(method, path, query, headers, body, now, result)
            result["valid"] = True
        except SignatureError as error:
            result["reason"] = str(error)
        return result

    def _check(self, method, path, query, headers, body, now, result):
        fields = self._authorization(headers)
        signed = fields["SignedHeaders"].split(";")
        if signed != sorted(set(signed)) or any(
                not name or name != name.lower() for name in signed):
            raise SignatureError("signed headers not lowercase, sorted and "
                                 "unique")
        for name in signed:
            if not values_of(headers, name.encode()):
                raise SignatureError("signed header %s missing" % name)

        body_hash = hashlib.sha256(body).hexdigest()
        canonical = b"\n".join([
            method, canonical_uri(path), canonical_query(query),
            b"".join(name.encode() + b":" +
                     canonical_header_value(values_of(headers, name.encode()))
                     + b"\n" for name in signed),
            fields["SignedHeaders"].encode(), body_hash.encode()])
        result["canonical_request"] = text(canonical)

        amz_date = self._amz_date(headers)
        scope = "/".join([amz_date[:8], self.region, self.service,
                          "aws4_request"])
        string_to_sign = "\n".join([
            "AWS4-HMAC-SHA256", amz_date, scope,
            hashlib.sha256(canonical).hexdigest()])
        result["string_to_sign"] = string_to_sign

        self._check_credential(fields["Credential"], amz_date)
        self._check_signed_set(signed, headers)
        declared = values_of(headers, b"x-amz-content-sha256")
        if declared and declared != [body_hash.encode()]:
            raise SignatureError("x-amz-content-sha256 does not match the "
                                 "body")

        key = ("AWS4" + self.secret).encode()
        for step in (amz_date[:8], self.region, self.service,
                     "aws4_request"):
            key = hmac_sha256(key, step.encode())
        expected = hmac_sha256(key, string_to_sign.encode()).hex()
        result["expected_signature"] = expected
        if not hmac.compare_digest(expected.encode(),
                                   fields["Signature"].encode()):
            raise SignatureError("signature mismatch")

        if now is not None:
            signed_at = calendar.timegm(time.strptime(amz_date,
                                                      "%Y%m%dT%H%M%SZ"))
            if abs(signed_at - now) > MAX_SKEW_SECONDS:
                raise SignatureError("x-amz-date more than 5 minutes from "
                                     "now")

    @staticmethod
    def _authorization(headers):
        values = values_of(headers, b"authorization")
        if not values:
            raise SignatureError("missing authorization")
        if len(values) > 1:
            raise SignatureError("more than one authorization header")
        algorithm, _, rest = text(values[0]).partition(" ")
        if algorithm != "AWS4-HMAC-SHA256":
            raise SignatureError("authorization is not AWS4-HMAC-SHA256")
        fields = {}
        for item in rest.split(","):
            name, _, value = item.strip().partition("=")
            fields[name] = value
        for name in ("Credential", "SignedHeaders", "Signature"):
            if not fields.get(name):
                raise SignatureError("malformed authorization: no %s" % name)
        return fields

    @staticmethod
    def _amz_date(headers):
        values = values_of(headers, b"x-amz-date")
        if len(values) != 1:
            raise SignatureError("missing x-amz-date" if not values else
                                 "more than one x-amz-date")
        amz_date = text(values[0])
        try:
            time.strptime(amz_date, "%Y%m%dT%H%M%SZ")
        except ValueError:
            raise SignatureError("malformed x-amz-date") from None
        if len(amz_date) != 16:
            raise SignatureError("malformed x-amz-date")
        return amz_date

    def _check_credential(self, credential, amz_date):
        parts = credential.split("/")
        if len(parts) != 5 or parts[4] != "aws4_request":
            raise SignatureError("malformed credential scope")
        key_id, date, region, service, _ = parts
        if key_id != self.key_id:
            raise SignatureError("unknown access key id")
        if date != amz_date[:8]:
            raise SignatureError("credential scope date does not match "
                                 "x-amz-date")
        if region != self.region:
            raise SignatureError("credential scope region mismatch")
        if service != self.service:
            raise SignatureError("credential scope service mismatch")

    @staticmethod
    def _check_signed_set(signed, headers):
        if "host" not in signed:
            raise SignatureError("host not signed")
        if "x-amz-date" not in signed:
            raise SignatureError("x-amz-date not signed")
        if (values_of(headers, b"x-amz-security-token")
                and "x-amz-security-token" not in signed):
            raise SignatureError("x-amz-security-token not signed")


# The server --------------------------------------------------------------

class Recorder:
    """Writes what the server sees into --dir, each file atomically."""

    def __init__(self, folder):
        self.folder = folder
        self.connections = 0
        self.requests = 0
        self._replace("connections", "0")

    def connected(self):
        self.connections += 1
        self._replace("connections", str(self.connections))
        return self.connections

    def next_request(self):
        self.requests += 1
        return self.requests

    def request(self, record):
        self._replace("req-%d.json" % record["n"], json.dumps(record))

    def _replace(self, name, content):
        path = os.path.join(self.folder, name)
        with open(path + ".tmp", "w") as f:
            f.write(content)
        os.replace(path + ".tmp", path)


def response_spec(raw):
    """Checks one --respond value; returns it with headers as pairs."""
    spec = json.loads(raw)
    if not isinstance(spec, dict):
        raise ValueError("not a JSON object")
    unknown = set(spec) - {"status", "headers", "body", "delay_ms", "drop"}
    if unknown:
        raise ValueError("unknown fields %s" % sorted(unknown))
    headers = spec.get("headers") or []
    if isinstance(headers, dict):
        headers = list(headers.items())
    if not all(isinstance(h, (list, tuple)) and len(h) == 2 for h in headers):
        raise ValueError("headers must be an object or [name, value] pairs")
    status = spec.get("status", 200)
    if not isinstance(status, int) or not 100 <= status <= 999:
        raise ValueError("status must be a number from 100 to 999")
    return {"status": status,
            "headers": [[str(n), str(v)] for n, v in headers],
            "body": str(spec.get("body", "")),
            "delay_ms": float(spec.get("delay_ms", 0)),
            "drop": bool(spec.get("drop", False))}


def response_bytes(spec, head_only, close):
    status = spec["status"]
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    body = spec["body"].encode("utf-8")
    headers = [(n, v) for n, v in spec["headers"]
               if n.lower() not in ("content-length", "transfer-encoding")]
    names = {n.lower() for n, _ in headers}
    if "date" not in names:
        headers.append(("Date", email.utils.formatdate(usegmt=True)))
    if close and "connection" not in names:
        headers.append(("Connection", "close"))
    # No body and no length for 1xx, 204 and 304 (RFC 9110, 8.6).
    if status < 200 or status in (204, 304):
        body = b""
    else:
        headers.append(("Content-Length", str(len(body))))
    lines = ["HTTP/1.1 %d %s" % (status, reason)]
    lines += ["%s: %s" % (n, v) for n, v in headers]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
    return head if head_only else head + body


def make_record(n, connection, method, target, version, headers, body):
    """What req-N.json holds (without sigv4)."""
    path, query = split_target(target)
    record = {"n": n, "connection": connection, "method": text(method),
              "target": text(target), "version": text(version),
              "path": text(path), "query": text(query),
              "headers": [[text(k), text(v)] for k, v in headers]}
    try:
        record["body"] = body.decode("utf-8")
    except UnicodeDecodeError:
        record["body_base64"] = base64.b64encode(body).decode()
    return record


class HttpServer:
    """One instance serves every connection, on one asyncio loop."""

    def __init__(self, recorder, responses, checker, tls):
        self.recorder = recorder
        self.responses = responses
        self.checker = checker
        self.tls = tls

    async def handle(self, reader, writer):
        connection = self.recorder.connected()
        try:
            if self.tls:
                await writer.start_tls(self.tls)
            while await self._one_request(reader, writer, connection):
                pass
        except BadRequest:
            writer.write(response_bytes(
                {"status": 400, "headers": [], "body": ""}, False, True))
        except (asyncio.IncompleteReadError, OSError, ValueError):
            pass  # The client went away or spoke something else.
        finally:
            writer.close()

    async def _one_request(self, reader, writer, connection):
        """Serves one request; False when the connection should end."""
        lines = await self._read_head(reader)
        if lines is None:
            return False
        method, target, version, headers = parse_head(lines)
        if method == b"CONNECT":
            body = b""
        else:
            if (version == b"HTTP/1.1"
                    and b"100-continue" in tokens_of(headers, b"expect")):
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = await self._read_body(reader, headers)

        record = make_record(self.recorder.next_request(), connection,
                             method, target, version, headers, body)
        spec = self._answer(record, method, target, headers, body)
        self.recorder.request(record)

        if spec.get("delay_ms"):
            await asyncio.sleep(spec["delay_ms"] / 1000)
        if spec.get("drop"):
            return False
        close = spec.get("close") or self._client_closes(version, headers)
        close = close or any(n.lower() == "connection" and
                             v.strip().lower() == "close"
                             for n, v in spec["headers"])
        writer.write(response_bytes(spec, method == b"HEAD", close))
        await writer.drain()
        return not close

    def _answer(self, record, method, target, headers, body):
        """The answer to a request; adds the signature check to record."""
        if method == b"CONNECT":
            return CONNECT_REFUSED
        n = record["n"]
        spec = self.responses[min(n, len(self.responses)) - 1]
        if self.checker:
            path, query = split_target(target)
            check = self.checker.check(method, path, query, headers, body,
                                       time.time())
            record["sigv4"] = check
            if not check["valid"]:
                return SIGNATURE_REJECTED
        return spec

    @staticmethod
    async def _read_head(reader):
        """Request and header lines, or None at a clean end of stream."""
        lines = []
        while True:
            line = await reader.readline()
            if not line.endswith(b"\n"):
                if lines or line:
                    raise asyncio.IncompleteReadError(line, None)
                return None
            line = strip_eol(line)
            if line:
                lines.append(line)
            elif lines:
                return lines
            # Empty lines before a request line are skipped (RFC 9112, 2.2).

    @staticmethod
    async def _read_body(reader, headers):
        if b"chunked" in tokens_of(headers, b"transfer-encoding"):
            body = b""
            while True:
                size_line = strip_eol(await reader.readline())
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    while strip_eol(await reader.readline()):
                        pass  # trailer fields
                    return body
                body += await reader.readexactly(size)
                await reader.readline()
        lengths = set(tokens_of(headers, b"content-length"))
        if len(lengths) > 1 or not all(v.isdigit() for v in lengths):
            raise BadRequest("bad Content-Length")
        length = int(lengths.pop()) if lengths else 0
        return await reader.readexactly(length)

    @staticmethod
    def _client_closes(version, headers):
        connection = tokens_of(headers, b"connection")
        if version == b"HTTP/1.0":
            return b"keep-alive" not in connection
        return b"close" in connection


async def serve(server):
    loop = asyncio.get_running_loop()
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0,
                                          limit=1 << 20)
    print(listener.sockets[0].getsockname()[1], flush=True)
    # Exit when the test closes our stdin (or dies).
    await loop.run_in_executor(None, sys.stdin.read)
    listener.close()


# Self-test against the AWS test suite -------------------------------------

def find_cases(folders):
    """Every folder under `folders` that holds a .sreq file."""
    cases = []
    for folder in folders:
        for root, _, files in os.walk(folder):
            cases += [os.path.join(root, f[:-len(".sreq")])
                      for f in files if f.endswith(".sreq")]
    return sorted(cases)


def self_test(checker, folders):
    """Checks each case; returns the number of mismatches."""
    cases = find_cases(folders)
    if not cases:
        print("no .sreq files under %s" % " ".join(folders))
        return 1
    failures = 0
    for case in cases:
        with open(case + ".sreq", "rb") as f:
            head, _, body = f.read().partition(b"\n\n")
        with open(case + ".creq", "rb") as f:
            want_creq = text(f.read())
        with open(case + ".sts", "rb") as f:
            want_sts = text(f.read())
        method, target, _, headers = parse_head(head.split(b"\n"))
        path, query = split_target(target)
        got = checker.check(method, path, query, headers, body, None)
        problems = []
        if got["canonical_request"] != want_creq:
            problems.append("canonical request differs:\n%s\n-- want --\n%s"
                            % (got["canonical_request"], want_creq))
        elif got["string_to_sign"] != want_sts:
            problems.append("string to sign differs")
        if not got["valid"]:
            problems.append("rejected: " + got["reason"])
        name = os.path.basename(case)
        print(("ok   %s" % name) if not problems else
              ("FAIL %s: %s" % (name, "; ".join(problems))))
        failures += bool(problems)
    return failures


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir")
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--respond", action="append", default=[])
    parser.add_argument("--sigv4")
    parser.add_argument("--self-test-sigv4", nargs="+", metavar="CASE_DIR")
    args = parser.parse_args()

    try:
        checker = SigV4Checker(args.sigv4) if args.sigv4 else None
    except ValueError as error:
        parser.error(str(error))
    if args.self_test_sigv4:
        checker = checker or SigV4Checker(SUITE_CREDENTIALS)
        sys.exit(1 if self_test(checker, args.self_test_sigv4) else 0)

    if not args.dir:
        parser.error("--dir is required")
    responses = []
    for raw in args.respond:
        try:
            responses.append(response_spec(raw))
        except (ValueError, TypeError) as error:
            parser.error("--respond %s: %s" % (raw, error))
    responses = responses or [response_spec(json.dumps(DEFAULT_RESPONSE))]
    tls = None
    if args.tls:
        if not args.cert or not args.key:
            parser.error("--tls needs --cert and --key")
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.cert, args.key)

    server = HttpServer(Recorder(args.dir), responses, checker, tls)
    asyncio.run(serve(server))
    os._exit(0)


if __name__ == "__main__":
    main()
