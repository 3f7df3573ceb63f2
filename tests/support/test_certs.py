#!/usr/bin/python3
"""Throwaway certificates for the test peers.

Run it with /usr/bin/python3 (it needs Debian's python3-cryptography):

  test_certs.py DIR [--clients]

writes into DIR a CA that lives two days (ca.pem) and a certificate it
signed for localhost and 127.0.0.1 (server.pem, with its key server.key,
PKCS#8, unencrypted). Clients under test trust ca.pem; the peers serve
server.pem and server.key.

With --clients it also writes client certificates, for mutual TLS: one
signed by the same CA (client.pem, client.key) and one signed by a second,
unrelated CA (other-ca.pem, other-client.pem, other-client.key), which a
server trusting ca.pem must refuse.
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


def _make_ca(not_before, not_after, common_name="authcode test CA"):
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name)
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


def _make_client(ca, ca_key, common_name, not_before, not_after, names=()):
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateBuilder()
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(n) if "://" in n
                 else x509.DNSName(n) for n in names]),
            critical=False)
    cert = (builder
            .subject_name(_name(common_name))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                           critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    ca_key.public_key()),
                critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert, key


def _write_pair(folder, stem, cert, key):
    """Writes STEM.pem and STEM.key (PKCS#8, unencrypted)."""
    pem = serialization.Encoding.PEM
    _write(os.path.join(folder, stem + ".pem"), cert.public_bytes(pem))
    _write(os.path.join(folder, stem + ".key"),
           key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()))


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def make_certs(folder, clients=False):
    """Writes ca.pem, server.pem and server.key into folder; with clients,
    also client.pem/.key, other-ca.pem and other-client.pem/.key."""
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
    if not clients:
        return

    client, client_key = _make_client(
        ca, ca_key, "authcode test client", not_before, not_after,
        names=("billing.client.test", "spiffe://authcode.test/billing"))
    _write_pair(folder, "client", client, client_key)
    other_ca, other_ca_key = _make_ca(not_before, not_after,
                                      "authcode unrelated test CA")
    _write(os.path.join(folder, "other-ca.pem"), other_ca.public_bytes(pem))
    other, other_key = _make_client(other_ca, other_ca_key,
                                    "authcode stranger client", not_before,
                                    not_after)
    _write_pair(folder, "other-client", other, other_key)


def main():
    args = sys.argv[1:]
    clients = "--clients" in args
    if clients:
        args.remove("--clients")
    if len(args) != 1:
        sys.exit("usage: test_certs.py DIR [--clients]")
    make_certs(args[0], clients)


if __name__ == "__main__":
    main()
