"""A local certificate authority and server certificate for the emulator's HTTPS listener.

The SDKs refuse bearer tokens over plain HTTP, so the emulator speaks TLS like Azure does.
On first start it creates a CA (DIR/ca.pem, what clients trust through AZURE_CA_BUNDLE) and
a certificate for localhost/127.0.0.1/::1 signed by it; later starts reuse both, so clients
configured once keep working.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    server_cert: Path  # leaf followed by the CA, as a chain
    server_key: Path


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")


def ensure_tls_files(folder: Path, hosts: tuple[str, ...] = DEFAULT_HOSTS) -> TlsFiles:
    """Create (once) the CA and a server certificate for `hosts` in folder; return their paths.

    The CA is kept for good (clients trust it once); the server certificate is made again,
    signed by the same CA, when the host names asked for change (say, `--tls-host emulator`
    added for docker-compose).
    """
    folder.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem")
    hosts_file = folder / "server-hosts.txt"
    wanted = "\n".join(hosts)
    ca_key_file = folder / "ca-key.pem"
    complete = all(path.exists() for path in (files.ca_cert, files.server_cert, files.server_key, ca_key_file))
    recorded = hosts_file.read_text() if hosts_file.exists() else "\n".join(DEFAULT_HOSTS)
    if complete and recorded == wanted:
        return files
    if complete:
        ca_key = serialization.load_pem_private_key(ca_key_file.read_bytes(), password=None)
        ca_cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    else:
        ca_key, ca_cert = _new_ca()
    _write_server_certificate(files, ca_key, ca_cert, hosts)
    hosts_file.write_text(wanted)
    if not complete:
        _write_private(ca_key_file, _key_pem(ca_key))
        files.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))  # last: the set is complete
    return files


def _new_ca():
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Goldsmith Azure Emulator Local CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return ca_key, ca_cert


def _write_server_certificate(files: TlsFiles, ca_key, ca_cert, hosts: tuple[str, ...]) -> None:
    now = dt.datetime.now(dt.UTC)
    ca_name = ca_cert.subject
    server_key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    _write_private(files.server_key, _key_pem(server_key))
    files.server_cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM) + ca_pem)


def issue_certificate(ca_folder: Path, hosts: tuple[str, ...], cert_path: Path, key_path: Path) -> None:
    """A server certificate for `hosts` signed by the CA in ca_folder (made first if missing),
    written as cert_path (leaf then CA) and key_path. Other local servers the emulator's
    clients talk to (Azurite) use it, so trusting DIR/ca.pem covers them too."""
    if not (ca_folder / "ca.pem").exists() or not (ca_folder / "ca-key.pem").exists():
        ensure_tls_files(ca_folder)  # a fresh folder: the emulator will find and reuse this CA
    ca_key = serialization.load_pem_private_key((ca_folder / "ca-key.pem").read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate((ca_folder / "ca.pem").read_bytes())
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    _write_server_certificate(TlsFiles(ca_folder / "ca.pem", cert_path, key_path), ca_key, ca_cert, hosts)


def server_context(files: TlsFiles) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.server_cert, files.server_key)
    return context


def ephemeral_tls_files() -> TlsFiles:
    """TLS files in a fresh temporary folder, for an emulator started without --data-dir."""
    return ensure_tls_files(Path(tempfile.mkdtemp(prefix="goldsmith-emulator-tls-")))
