"""A Mosquitto that speaks only TLS, with a certificate authority made for the test.

:func:`tls_broker` writes a CA and a server certificate for ``127.0.0.1``/``localhost``
(``cryptography``, installed with asyncua), a password file (``mosquitto_passwd``) and a
configuration with one TLS listener on a free port, starts ``mosquitto -c`` and yields a
:class:`TlsBroker`. Nothing listens in clear text, so a client that connects has spoken TLS.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

USER = "campo"
PASSWORD = "s3cret@pad"  # '@' must be percent-encoded in a URL: proves the decoding


@dataclass(frozen=True)
class TlsBroker:
    port: int
    ca_file: Path
    #: a CA that did not sign the broker's certificate
    other_ca_file: Path

    def url(self, scheme: str = "mqtts", *, credentials: bool = True, query: str = "") -> str:
        """``mqtts://campo:s3cret%40pad@127.0.0.1:<port>?ca_file=…`` (query by default)."""
        who = f"{USER}:{PASSWORD.replace('@', '%40')}@" if credentials else ""
        q = query if query else f"ca_file={self.ca_file}"
        return f"{scheme}://{who}127.0.0.1:{self.port}" + (f"?{q}" if q != "-" else "")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _ca(cn: str, now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def write_certificates(folder: Path) -> tuple[Path, Path, Path, Path]:
    """CA, other CA, server certificate and key (PEM files in ``folder``)."""
    now = dt.datetime.now(dt.UTC)
    ca_key, ca = _ca("Campo test CA", now)
    _, other = _ca("Campo unrelated CA", now)
    key = ec.generate_private_key(ec.SECP256R1())
    server = (x509.CertificateBuilder().subject_name(_name("127.0.0.1"))
              .issuer_name(ca.subject).public_key(key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - dt.timedelta(minutes=5))
              .not_valid_after(now + dt.timedelta(days=1))
              .add_extension(x509.SubjectAlternativeName([
                  x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                  critical=False)
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                             critical=False)
              .sign(ca_key, hashes.SHA256()))
    paths = (folder / "ca.pem", folder / "other-ca.pem", folder / "server.pem",
             folder / "server.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(other.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[3].write_bytes(_pem_key(key))
    return paths


def _executable(name: str) -> str:
    exe = shutil.which(name) or f"/usr/sbin/{name}"
    if not os.path.exists(exe):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not installed (CI=true: .ci/run installs mosquitto)")
        pytest.skip(f"{name} is not installed")
    return exe


def tls_broker(folder: Path) -> Iterator[TlsBroker]:
    """Start the TLS-only broker in ``folder``; stop it when the generator is closed."""
    mosquitto = _executable("mosquitto")
    ca, other, cert, key = write_certificates(folder)
    passwd = folder / "passwd"
    subprocess.run([_executable("mosquitto_passwd"), "-b", "-c", str(passwd), USER, PASSWORD],
                   check=True, capture_output=True, timeout=30)
    port = _free_port()
    conf = folder / "mosquitto.conf"
    # as root, mosquitto would drop to user 'mosquitto', who cannot read the test's folder
    user = "user root\n" if os.geteuid() == 0 else ""
    conf.write_text(f"""\
{user}per_listener_settings false
allow_anonymous false
password_file {passwd}
persistence false
log_dest stdout
listener {port} 127.0.0.1
cafile {ca}
certfile {cert}
keyfile {key}
tls_version tlsv1.2
""")
    with subprocess.Popen([mosquitto, "-c", str(conf)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT) as proc:
        try:
            end = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    out = proc.stdout.read().decode() if proc.poll() is not None and \
                        proc.stdout else ""
                    assert proc.poll() is None, f"mosquitto did not start: {out}"
                    assert time.monotonic() < end, "mosquitto did not listen within 10 s"
                    time.sleep(0.05)
            yield TlsBroker(port, ca, other)
        finally:
            proc.terminate()
            proc.wait(10)
