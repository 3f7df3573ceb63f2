#!/usr/bin/python3
"""An SMTP server on 127.0.0.1 for the smtp provider's tests.

Built on aiosmtpd (Debian's python3-aiosmtpd); run it with /usr/bin/python3.
It listens on port 0, prints the port on the first line of stdout, and
exits when its stdin closes, so it never outlives the test that started it.

  --dir DIR            where to write what it receives: msg-N.eml (the DATA
                       bytes after dot-unstuffing), msg-N.json (envelope),
                       commands.log (every command line, one per line) and
                       connections (the number of TCP connections accepted).
  --security MODE      starttls (offered, and required before MAIL),
                       plain (STARTTLS not offered), tls (implicit TLS).
  --cert, --key        the server certificate for starttls and tls (make
                       one with tests/support/test_certs.py).
  --auth USER:PASS     offer AUTH PLAIN and LOGIN and require it.
  --oauth USER:TOKEN   also offer AUTH XOAUTH2, accepting that bearer token.
  --fail STEP=CODE     answer STEP (mail, rcpt, data, auth) with CODE.
  --stall              accept connections and never answer.
  --no-smtputf8        do not offer SMTPUTF8.
"""

import argparse
import base64
import asyncio
import json
import logging
import os
import ssl
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult

TEXTS = {
    "mail": "{code} {cls}.1.0 sender refused by test",
    "rcpt": "{code} {cls}.1.1 no such user",
    "data": "{code} {cls}.3.0 message refused by test",
    "auth": "{code} {cls}.7.8 authentication refused by test",
}


class Recorder:
    """Writes what the server sees into --dir."""

    def __init__(self, folder):
        self.folder = folder
        self.connections = 0
        self.messages = 0
        self.commands = open(os.path.join(folder, "commands.log"), "ab",
                             buffering=0)

    def connected(self):
        self.connections += 1
        tmp = os.path.join(self.folder, "connections.tmp")
        with open(tmp, "w") as f:
            f.write(str(self.connections))
        os.replace(tmp, os.path.join(self.folder, "connections"))

    def command(self, line):
        self.commands.write(line + b"\n")

    def message(self, envelope):
        self.messages += 1
        base = os.path.join(self.folder, "msg-%d" % self.messages)
        with open(base + ".json.tmp", "w") as f:
            json.dump({"mail_from": envelope.mail_from,
                       "rcpt_tos": envelope.rcpt_tos,
                       "mail_options": envelope.mail_options}, f)
        with open(base + ".eml", "wb") as f:
            f.write(envelope.original_content)
        os.replace(base + ".json.tmp", base + ".json")


class CommandLog(logging.Handler):
    """aiosmtpd logs every command line as "%r >> %r" on "mail.log"."""

    def __init__(self, recorder):
        super().__init__(logging.INFO)
        self.recorder = recorder

    def emit(self, record):
        if record.msg == "%r >> %r" and isinstance(record.args[1], bytes):
            self.recorder.command(record.args[1])


class Handler:
    def __init__(self, recorder, fail, oauth=None):
        self.recorder = recorder
        self.fail = fail
        self.oauth = oauth  # (user, token) or None

    async def auth_XOAUTH2(self, server, args):
        # The client sends the initial response with the command:
        # base64("user=" USER ^A "auth=Bearer " TOKEN ^A ^A).
        refused = self.failure("auth")
        if refused:
            return AuthResult(success=False, handled=False, message=refused)
        if self.oauth is None or len(args) != 2:
            return AuthResult(success=False, handled=False)
        try:
            blob = base64.b64decode(args[1], validate=True)
        except ValueError:
            return AuthResult(success=False, handled=False)
        user, token = self.oauth
        expected = ("user=%s\x01auth=Bearer %s\x01\x01" % (user, token))
        return AuthResult(success=blob == expected.encode(), handled=False)

    def failure(self, step):
        code = self.fail.get(step)
        if code is None:
            return None
        return TEXTS[step].format(code=code, cls=code[0])

    async def handle_MAIL(self, server, session, envelope, address, options):
        refused = self.failure("mail")
        if refused:
            return refused
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, options):
        refused = self.failure("rcpt")
        if refused:
            return refused
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        refused = self.failure("data")
        if refused:
            return refused
        self.recorder.message(envelope)
        return "250 2.0.0 OK queued as Q%d" % self.recorder.messages


class CountingSMTP(SMTP):
    recorder = None

    def connection_made(self, transport):
        # Called again after STARTTLS, on the same connection.
        if self._original_transport is None:
            self.recorder.connected()
        super().connection_made(transport)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--security", default="starttls",
                        choices=["starttls", "plain", "tls"])
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--auth")
    parser.add_argument("--oauth")
    parser.add_argument("--fail", action="append", default=[])
    parser.add_argument("--stall", action="store_true")
    parser.add_argument("--no-smtputf8", action="store_true")
    args = parser.parse_args()

    # A plaintext server with AUTH is what the tests want to refuse.
    warnings.filterwarnings("ignore", message="Requiring AUTH")
    fail = dict(item.split("=", 1) for item in args.fail)
    recorder = Recorder(args.dir)
    logging.getLogger("mail.log").setLevel(logging.INFO)
    logging.getLogger("mail.log").addHandler(CommandLog(recorder))
    logging.getLogger("mail.log").propagate = False

    tls_context = None
    if args.cert:
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(args.cert, args.key)

    user, password = (args.auth.split(":", 1) if args.auth else (None, None))

    def authenticator(server, session, envelope, mechanism, data):
        refused = handler.failure("auth")
        if refused:
            return AuthResult(success=False, handled=False, message=refused)
        ok = data.login == user.encode() and data.password == password.encode()
        return AuthResult(success=ok, handled=False)

    oauth = tuple(args.oauth.split(":", 1)) if args.oauth else None
    handler = Handler(recorder, fail, oauth)
    CountingSMTP.recorder = recorder

    def factory():
        return CountingSMTP(
            handler,
            hostname="test.invalid",
            tls_context=tls_context if args.security == "starttls" else None,
            require_starttls=args.security == "starttls",
            authenticator=authenticator if user else None,
            auth_required=bool(user),
            auth_require_tls=args.security == "starttls",
            auth_exclude_mechanism=[] if oauth else ["XOAUTH2"],
            enable_SMTPUTF8=not args.no_smtputf8,
            timeout=30)

    async def stall(reader, writer):
        recorder.connected()
        await asyncio.sleep(3600)

    async def serve():
        loop = asyncio.get_running_loop()
        if args.stall:
            server = await asyncio.start_server(stall, "127.0.0.1", 0)
        else:
            server = await loop.create_server(
                factory, "127.0.0.1", 0,
                ssl=tls_context if args.security == "tls" else None)
        print(server.sockets[0].getsockname()[1], flush=True)
        # Exit when the test closes our stdin (or dies).
        await loop.run_in_executor(None, sys.stdin.read)
        server.close()

    asyncio.run(serve())
    os._exit(0)


if __name__ == "__main__":
    main()
