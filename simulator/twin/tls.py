"""A throwaway certificate authority and server certificate for the twin's loopback HTTPS.

Callers: ``simulator.twin.arm.ArmTwin`` at start-up. azure-identity only talks to an HTTPS
authority and the ARM pipeline only sends bearer tokens over HTTPS, so the twin needs a
certificate the clients trust: tests point them at ``ca_file`` (``connection_verify=`` or
``REQUESTS_CA_BUNDLE``). Keys are ECDSA P-256 (fast to make and to handshake); the server
certificate names 127.0.0.1, ::1 and localhost and lives one day.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True, slots=True)
class CertFiles:
    ca_file: str  # PEM of the CA to trust
    cert_file: str  # PEM of the server certificate
    key_file: str  # PEM of the server key (unencrypted; a temporary directory only)


def _name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "surge twin"),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def make_certificates(folder: str, hosts: tuple[str, ...] = ("127.0.0.1", "::1", "localhost")
                      ) -> CertFiles:
    """Writes ``ca.pem``, ``server.pem`` and ``server-key.pem`` into ``folder``."""
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)  # tolerate small clock skew
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("surge twin CA")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = CertFiles(
        ca_file=os.path.join(folder, "ca.pem"),
        cert_file=os.path.join(folder, "server.pem"),
        key_file=os.path.join(folder, "server-key.pem"),
    )
    with open(files.ca_file, "wb") as handle:
        handle.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(files.cert_file, "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(files.key_file, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return files
