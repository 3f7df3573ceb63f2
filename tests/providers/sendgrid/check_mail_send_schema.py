"""Checks a mail/send request body against SendGrid's own OpenAPI schema.

Usage: check_mail_send_schema.py SPEC BODY

SPEC is SendGrid's OpenAPI description of the Mail API (tsg_mail_v3.json),
BODY a file holding one request body. The body is validated against the
schema of components.requestBodies.PostMailSend with Debian's
python3-jsonschema; "$ref"s resolve inside SPEC. Prints each violation and
exits 1 when there is any, 0 when the body conforms.
"""

import json
import sys

import jsonschema


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    with open(sys.argv[2], encoding="utf-8") as f:
        body = json.load(f)

    schema = (spec["components"]["requestBodies"]["PostMailSend"]
              ["content"]["application/json"]["schema"])
    resolver = jsonschema.RefResolver.from_schema(spec)
    validator = jsonschema.Draft202012Validator(schema, resolver=resolver)
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
    for error in errors:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        print(f"{where}: {error.message}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
