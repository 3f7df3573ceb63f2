#!/usr/bin/python3
"""Throwaway certificates for the test peers.

Run it with /usr/bin/python3 (it needs Debian's python3-cryptography):

  test_certs.py DIR

writes into DIR a CA that lives two days (ca.pem) and a certificate it
signed for localhost and 127.0.0.1 (server.pem, with its key server.key,
PKCS#8, unencrypted). Clients under test trust ca.pem; the peers serve
server.pem and server.key.
"""

import datetime
import ipaddress
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _make_ca(not_before, not_after):
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("authcode test CA")
    usage = x509.KeyUsage(digital_signature=False, content_commitment=False,
                          key_encipherment=False, data_encipherment=False,
                          key_agreement=False, key_cert_sign=True,
                          crl_sign=True, encipher_only=False,
                          decipher_only=False)
    cert = (x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0),
                           critical=True)
            .add_extension(usage, critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def _make_server(ca, ca_key, not_before, not_after):
    key = ec.generate_private_key(ec.SECP256R1())
    names = x509.SubjectAlternativeName([
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cert = (x509.CertificateBuilder()
            .subject_name(_name("localhost"))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(names, critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                           critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    ca_key.public_key()),
                critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert, key


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def make_certs(folder):
    """Writes ca.pem, server.pem and server.key into folder."""
    now = datetime.datetime.utcnow()
    # An hour of slack before now, for clocks a little apart.
    not_before = now - datetime.timedelta(hours=1)
    not_after = now + datetime.timedelta(days=2)
    ca, ca_key = _make_ca(not_before, not_after)
    cert, key = _make_server(ca, ca_key, not_before, not_after)

    pem = serialization.Encoding.PEM
    _write(os.path.join(folder, "ca.pem"), ca.public_bytes(pem))
    _write(os.path.join(folder, "server.pem"), cert.public_bytes(pem))
    _write(os.path.join(folder, "server.key"),
           key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: test_certs.py DIR")
    make_certs(sys.argv[1])


if __name__ == "__main__":
    main()
