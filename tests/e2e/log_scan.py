#!/usr/bin/env python3
"""Reads every log line the test suite's authcode processes wrote and fails
when one holds a code they mailed or a secret they were given.

The end-to-end tests (tests/e2e/process.cc) and the client tests
(tests/clients/harness.py) keep, for each authcode process they start, in
AUTHCODE_TEST_LOG_DIR: NAME.env (its environment), NAME.config (its config
file), NAME.out and NAME.err (what it printed); the tests that run the
server in their own process keep its log lines and secrets the same way
(tests/support/kept_logs.h). CTest runs this script after all of them (a
fixture cleanup, tests/CMakeLists.txt).

- Codes: the digits on their own in the plain-text part of every console
  mail any of those processes printed, and those the tests read from
  other sinks and listed in NAME.codes (tests/support/kept_logs.h).
- Secrets: the key rings' keys, the database password, and every value
  of an environment variable or config key whose name says it is a
  secret (password, token, secret, api key, private key), at least eight
  characters long.
- Log lines: everything on stderr but the console mails themselves (the
  console provider prints mail by design, on stdout or stderr).

  log_scan.py DIR          scan; exit 1 naming every leak
  log_scan.py --self-test  plant a code and a secret and check that both
                           are found
"""

import argparse
import os
import re
import sys
import tempfile
import tomllib
import urllib.parse

_MAIL = re.compile(
    r"----- authcode console mail (\S+) -----\n(.*?)"
    r"----- end authcode console mail \1 -----\n", re.S)
# A code in a mail's text: a line of 6 to 10 digits alone (the built-in
# templates indent it), else the first such run of digits.
_CODE_LINE = re.compile(r"^\s*([0-9]{6,10})\s*$", re.M)
_CODE_ANY = re.compile(r"(?<![0-9])([0-9]{6,10})(?![0-9])")
_SECRET_NAME = re.compile(
    r"(password|passwd|token|secret|api_?key|private_?key|access_key|"
    r"_KEYS$)", re.I)
# Names that say secret but hold none: digests, file names, variable names.
_NOT_SECRET_NAME = re.compile(r"(_sha256|_file|_env|_id)$", re.I)
_MIN_SECRET = 8


def mails_in(text):
    return [m.group(2) for m in _MAIL.finditer(text)]


def code_in(mail):
    parts = mail.split("----- text/plain -----\n", 1)
    if len(parts) != 2:
        return None
    text = parts[1].split("----- text/html -----\n", 1)[0]
    found = _CODE_LINE.search(text) or _CODE_ANY.search(text)
    return found.group(1) if found else None


def secrets_in_value(name, value):
    """The secrets a setting named `name` with `value` holds."""
    if name.upper().endswith("_KEYS"):
        # Key rings: "id:base64,id:base64".
        return [entry.split(":", 1)[1] for entry in value.split(",")
                if ":" in entry]
    if name.upper().endswith("DATABASE_URL"):
        password = urllib.parse.urlsplit(value).password
        return [password] if password else []
    return [value]


def secrets_in_env(text):
    found = []
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if not sep or not value:
            continue
        if name.upper().endswith("DATABASE_URL") or (
                _SECRET_NAME.search(name) and
                not _NOT_SECRET_NAME.search(name)):
            found += secrets_in_value(name, value)
    return found


def secrets_in_config(text):
    try:
        config = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return []  # A test of a bad config; the server read nothing.
    found = []

    def walk(table):
        for key, value in table.items():
            if isinstance(value, dict):
                walk(value)
            elif (isinstance(value, str) and _SECRET_NAME.search(key) and
                  not _NOT_SECRET_NAME.search(key)):
                found.append(value)
    walk(config)
    return found


def log_lines(text):
    """stderr without the console mails printed there."""
    return _MAIL.sub("", text).splitlines()


def scan(directory):
    """(leaks, stats): leaks as human-readable lines, secrets masked."""
    names = sorted({os.path.splitext(f)[0] for f in os.listdir(directory)})
    codes, secrets = set(), set()
    mails = codes_found_in = 0
    logs = []
    for name in names:
        def read(suffix):
            path = os.path.join(directory, name + suffix)
            if not os.path.exists(path):
                return ""
            with open(path, encoding="utf-8", errors="replace") as f:
                return f.read()
        out, err = read(".out"), read(".err")
        # Codes tests read from mail the console did not print.
        codes.update(line.strip() for line in read(".codes").splitlines()
                     if line.strip())
        for mail in mails_in(out) + mails_in(err):
            mails += 1
            code = code_in(mail)
            if code:
                codes.add(code)
                codes_found_in += 1
        secrets.update(s for s in secrets_in_env(read(".env")) +
                       secrets_in_config(read(".config"))
                       if len(s) >= _MIN_SECRET)
        if os.path.exists(os.path.join(directory, name + ".err")):
            logs.append((name, log_lines(err)))

    code_pattern = None
    if codes:
        # A code as a token of its own: not inside a longer number or a
        # hex id (request ids, UUIDs, where six digits in a row are
        # common), nor the fraction of a timestamp or a decimal.
        code_pattern = re.compile(
            r"(?<![0-9A-Za-z.:])(" + "|".join(sorted(codes)) +
            r")(?![0-9A-Za-z])")
    leaks = []
    lines = 0
    for name, entries in logs:
        for number, line in enumerate(entries, 1):
            lines += 1
            hit = code_pattern.search(line) if code_pattern else None
            if hit:
                leaks.append("%s.err:%d: a mailed code: %s" % (
                    name, number, line.replace(hit.group(1), "<CODE>")))
            for secret in secrets:
                if secret in line:
                    leaks.append("%s.err:%d: a secret (%s...): %s" % (
                        name, number, secret[:3],
                        line.replace(secret, "<SECRET>")))
    stats = {"processes": len(logs), "lines": lines, "codes": len(codes),
             "secrets": len(secrets), "mails": mails,
             "codes_found_in": codes_found_in}
    return leaks, stats


def self_test():
    code, key = "48213907", "c2VjcmV0LWtleS1tYXRlcmlhbC0zMi1ieXRlcyEh"
    mail = ("----- authcode console mail d1 -----\nTo: a@example.com\n"
            "----- text/plain -----\nYour code:\n\n    %s\n"
            "----- text/html -----\n<p>%s</p>\n"
            "----- end authcode console mail d1 -----\n" % (code, code))
    with tempfile.TemporaryDirectory() as d:
        def write(name, text):
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        write("a.env", "AUTHCODE_HASHING_KEYS=h1:%s\nPATH=/usr/bin\n" % key)
        write("a.config", '[providers.s]\npassword = "hunter2-hunter2"\n'
              'token_sha256 = ["abcdefabcdef"]\n')
        write("a.out", mail)
        write("a.codes", "735190\n")
        clean = ("ts=2026-12-04T21:50:42.%sZ level=info event=x\n" % code[:6]
                 + mail + "ts=t level=info event=rpc.verify_code "
                 "latency_ms=0.%s job_id=%s9 request_id=ab735190cd\n" %
                 (code, code))
        write("a.err", clean)
        leaks, stats = scan(d)
        if leaks or stats["codes"] != 2 or stats["secrets"] != 2:
            print("self-test: a clean log was flagged or inputs were "
                  "missed:", leaks, stats)
            return 1
        write("a.err", clean + "level=info event=y code=%s\n" % code +
              "level=error event=z error=\"bad key %s\"\n" % key +
              "level=warn event=w note=hunter2-hunter2\n" +
              "level=info event=v guess=735190\n")
        leaks, stats = scan(d)
        if len(leaks) != 4:
            print("self-test: expected 4 leaks, found", leaks)
            return 1
    print("self-test: planted code and secrets found; clean lines pass")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("directory", nargs="?")
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    if not args.directory or not os.path.isdir(args.directory):
        print("log_scan: no such folder: %s" % args.directory)
        return 1
    leaks, stats = scan(args.directory)
    print("log_scan: %(lines)d log lines of %(processes)d authcode "
          "processes, %(codes)d codes (%(mails)d console mails), "
          "%(secrets)d secrets" % stats)
    # A run that kept nothing has scanned nothing; mails whose code could
    # not be found mean the scan no longer knows what to look for.
    if stats["processes"] == 0:
        print("log_scan: no authcode process kept its output here")
        return 1
    if stats["mails"] > stats["codes_found_in"]:
        print("log_scan: %d console mails had no code that could be read" %
              (stats["mails"] - stats["codes_found_in"]))
        return 1
    for leak in leaks:
        print(leak)
    return 1 if leaks else 0


if __name__ == "__main__":
    sys.exit(main())
