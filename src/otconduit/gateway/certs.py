"""The gateway's OPC UA application instance certificate, and the trust list it checks
servers against.

An OPC UA client proves who it is with a self-signed X.509 certificate whose
subjectAltName carries its *application URI* (OPC 10000-6 §6.2.2, "Application Instance
Certificate"); servers decide whether to trust it by its thumbprint, and so does the
gateway for each server: ``security.trust`` lists the server certificates (files, or
folders of ``.der``/``.pem`` files) it accepts, nothing else is trusted on first use.

Files: a certificate ending in ``.pem`` is written/read as PEM, anything else as DER (the
usual OPC UA form); the private key likewise (PKCS#8, unencrypted, mode 0600). A private
key file that the group or others may access is refused, as ssh refuses one: whoever can
read it can impersonate the gateway to every server that trusts it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import socket
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_BITS = 2048  # Basic256Sha256 accepts 2048-4096 bit RSA keys (OPC 10000-7, security policies)
VALID_DAYS = 5 * 365
_CERT_SUFFIXES = {".der", ".pem", ".crt", ".cer"}


class CertificateError(Exception):
    """A certificate or key file is missing, unreadable or does not fit; ``str()`` is one
    line saying which file, what is wrong and what to do."""


class KeyPermissionError(CertificateError):
    """A private key file whose mode lets the group or others at it."""


@dataclass(frozen=True, slots=True)
class Certificate:
    """A loaded certificate: DER bytes and what the gateway needs to know about it."""

    der: bytes
    subject: str
    application_uri: str | None
    not_after: dt.datetime

    @property
    def sha1(self) -> str:
        return _colon_hex(hashlib.sha1(self.der).digest())

    @property
    def sha256(self) -> str:
        return _colon_hex(hashlib.sha256(self.der).digest())

    @property
    def thumbprint(self) -> str:
        """``SHA-1 AA:BB:..., SHA-256 CC:DD:...`` (OPC UA tools show the SHA-1 one)."""
        return f"SHA-1 {self.sha1}, SHA-256 {self.sha256}"


def _colon_hex(digest: bytes) -> str:
    return ":".join(f"{b:02X}" for b in digest)


def default_application_uri(name: str = "gateway") -> str:
    return f"urn:{socket.gethostname()}:conduit:{name}"


def parse_certificate(data: bytes) -> Certificate:
    """A certificate from DER or PEM bytes (raises ValueError when it is neither)."""
    cert = (
        x509.load_pem_x509_certificate(data)
        if data.lstrip().startswith(b"-----BEGIN")
        else x509.load_der_x509_certificate(data)
    )
    uri: str | None = None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
        uri = uris[0] if uris else None
    except x509.ExtensionNotFound:
        pass
    return Certificate(
        der=cert.public_bytes(serialization.Encoding.DER),
        subject=cert.subject.rfc4514_string(),
        application_uri=uri,
        not_after=cert.not_valid_after_utc,
    )


def load_certificate(path: str | Path) -> Certificate:
    p = Path(path)
    try:
        return parse_certificate(p.read_bytes())
    except OSError as exc:
        raise CertificateError(f"{p}: cannot read certificate ({exc.strerror})") from None
    except ValueError:
        raise CertificateError(f"{p}: not an X.509 certificate (expected DER or PEM)") from None


def thumbprint(path: str | Path) -> str:
    """The certificate's thumbprints, for an operator to compare with what a server's
    administrator sees: ``SHA-1 AA:BB:..., SHA-256 CC:DD:...``."""
    return load_certificate(path).thumbprint


def load_private_key_der(path: str | Path) -> bytes:
    """The private key at ``path`` as unencrypted PKCS#8 DER (what asyncua loads)."""
    key = _load_key(Path(path))
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_key(p: Path) -> rsa.RSAPrivateKey:
    try:
        mode = stat.S_IMODE(p.stat().st_mode)
        data = p.read_bytes()
    except OSError as exc:
        raise CertificateError(f"{p}: cannot read private key ({exc.strerror})") from None
    if mode & 0o077:
        raise KeyPermissionError(
            f"{p}: private key is accessible by group/others (mode {mode:04o}): chmod 600 {p}"
        )
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_private_key(data, password=None)
        else:
            key = serialization.load_der_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise CertificateError(
            f"{p}: not an unencrypted RSA private key (PKCS#8/PKCS#1, DER or PEM): {exc}"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CertificateError(f"{p}: OPC UA needs an RSA key, this is {type(key).__name__}")
    return key


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), mode)  # a leftover temporary file keeps its old mode
        f.write(data)
    os.replace(tmp, path)


def generate(
    cert_path: str | Path,
    key_path: str | Path,
    application_uri: str,
    *,
    common_name: str = "Conduit gateway",
    hostname: str | None = None,
    server: bool = False,
    days: int = VALID_DAYS,
) -> Certificate:
    """Write a new RSA key and self-signed application instance certificate (OPC 10000-6
    §6.2.2: URI and DNS name in subjectAltName, digitalSignature/nonRepudiation/
    keyEncipherment/dataEncipherment, clientAuth and with ``server`` also serverAuth)."""
    host = hostname or socket.gethostname()
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Conduit"),
        ]
    )
    alt: list[x509.GeneralName] = [x509.UniformResourceIdentifier(application_uri)]
    try:
        alt.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        alt.append(x509.DNSName(host))
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        # self-signed: it is its own issuer, so it may sign (itself) and stands as a CA
        # of path length 0, which is what trust stores verifying it as an anchor expect
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=True,
                data_encipherment=True,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    cp, kp = Path(cert_path), Path(key_path)
    pem = kp.suffix.lower() == ".pem"
    _write(
        kp,
        key.private_bytes(
            serialization.Encoding.PEM if pem else serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        0o600,
    )
    enc = serialization.Encoding.PEM if cp.suffix.lower() == ".pem" else serialization.Encoding.DER
    _write(cp, cert.public_bytes(enc), 0o644)
    return parse_certificate(cert.public_bytes(serialization.Encoding.DER))


def ensure_certificate(
    cert_path: str | Path,
    key_path: str | Path,
    application_uri: str | None = None,
    *,
    common_name: str = "Conduit gateway",
) -> tuple[Certificate, bool]:
    """The application certificate at ``cert_path``, generated with its key when both
    files are missing. Returns it and whether it was just created. Refuses (one-line
    CertificateError) a lone certificate or key, a key that does not match, or an expired
    certificate: replacing those silently would break trust already given by servers."""
    cp, kp = Path(cert_path), Path(key_path)
    if not cp.exists() and not kp.exists():
        uri = application_uri or default_application_uri()
        return generate(cp, kp, uri, common_name=common_name), True
    if not cp.exists() or not kp.exists():
        have, missing = (cp, kp) if cp.exists() else (kp, cp)
        raise CertificateError(
            f"{missing} is missing but {have} exists: restore it, or delete {have} so a new "
            "certificate and key are generated (servers must then trust the new thumbprint)"
        )
    cert = load_certificate(cp)
    key = _load_key(kp)
    ours = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    theirs = (
        x509.load_der_x509_certificate(cert.der)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    if ours != theirs:
        raise CertificateError(f"{kp} is not the private key of {cp}: configure the matching pair")
    if cert.not_after < dt.datetime.now(dt.UTC):
        raise CertificateError(
            f"{cp} expired on {cert.not_after:%Y-%m-%d}: delete it and {kp} to generate a new "
            "pair, then have the servers trust the new thumbprint"
        )
    if application_uri and cert.application_uri != application_uri:
        raise CertificateError(
            f"{cp} names application URI {cert.application_uri!r}, the configuration "
            f"{application_uri!r}: make them agree (or delete both files to regenerate)"
        )
    return cert, False


def load_trust(locations: list[Path]) -> dict[bytes, Path]:
    """DER of every trusted certificate -> the file it came from. A location is a file,
    or a folder whose ``.der``/``.pem``/``.crt``/``.cer`` files are all trusted."""
    out: dict[bytes, Path] = {}
    for loc in locations:
        if loc.is_dir():
            files = sorted(p for p in loc.iterdir() if p.suffix.lower() in _CERT_SUFFIXES)
        elif loc.exists():
            files = [loc]
        else:
            raise CertificateError(f"trusted certificate {loc} does not exist")
        for f in files:
            out[load_certificate(f).der] = f
    return out
