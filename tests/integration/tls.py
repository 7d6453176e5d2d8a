"""A throwaway certificate authority and a broker's TLS files, made with ``openssl`` and ``keytool``.

For the security tests: a CA, a broker certificate it signs for ``localhost`` and
``127.0.0.1`` (subject alternative names, so hostname checks pass), the broker's
PKCS12 keystore (key + chain) and truststore (the CA), and the CA as PEM for
the clients (``STREAMAL_SSL_CAFILE``)::

    ca = make_ca(tmp_path / "ca")
    broker = make_broker_tls(tmp_path / "broker", ca)
    ApacheKafka(listeners=["SASL_SSL"], config=broker.broker_config())

Elliptic-curve keys (P-256): generated in milliseconds, accepted by Java and
Python alike. Everything is valid for two days and lives in the given folder.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["BrokerTls", "CertificateAuthority", "make_broker_tls", "make_ca", "tools_missing"]

_DAYS: Final = "2"
_KEY: Final = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


def tools_missing() -> str | None:
    """Which of ``openssl`` and ``keytool`` is not on the PATH (a reason to skip), else ``None``."""
    missing = [tool for tool in ("openssl", "keytool") if shutil.which(tool) is None]
    return f"{' and '.join(missing)} not on the PATH" if missing else None


def _run(*command: str, cwd: Path) -> None:
    done = subprocess.run(command, check=False, cwd=cwd, capture_output=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} … failed: {done.stderr.decode(errors='replace')[-1500:]}")


@dataclass(frozen=True)
class CertificateAuthority:
    """A self-signed CA: its certificate (PEM, what clients trust) and its private key."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class BrokerTls:
    """A broker's TLS files, signed by ``ca``; ``password`` opens both stores."""

    ca: CertificateAuthority
    cert: Path
    keystore: Path
    truststore: Path
    password: str

    def broker_config(self) -> dict[str, str]:
        """The broker settings that use these files on every TLS listener (no client certificates asked)."""
        return {
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(self.keystore),
            "ssl.keystore.password": self.password,
            "ssl.key.password": self.password,
            "ssl.truststore.type": "PKCS12",
            "ssl.truststore.location": str(self.truststore),
            "ssl.truststore.password": self.password,
            # The default, spelled out: clients check the broker's name against its SAN.
            "ssl.endpoint.identification.algorithm": "https",
        }


def make_ca(folder: Path, name: str = "streamal test CA") -> CertificateAuthority:
    """A new self-signed CA in ``folder`` (``ca.pem``, ``ca.key``)."""
    folder.mkdir(parents=True, exist_ok=True)
    _run("openssl", "req", "-x509", *_KEY, "-days", _DAYS, "-subj", f"/CN={name}",
         "-keyout", "ca.key", "-out", "ca.pem",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)
    return CertificateAuthority(folder / "ca.pem", folder / "ca.key")


def make_broker_tls(folder: Path, ca: CertificateAuthority, *, dns: tuple[str, ...] = ("localhost",),
                    ips: tuple[str, ...] = ("127.0.0.1",)) -> BrokerTls:
    """A broker key and certificate signed by ``ca`` for ``dns`` and ``ips``, in a PKCS12 keystore
    (openssl), and a PKCS12 truststore holding ``ca`` (keytool). The broker itself then shows
    that Java reads both: it does not start otherwise."""
    folder.mkdir(parents=True, exist_ok=True)
    password = secrets.token_hex(12)
    san = ",".join([*(f"DNS:{name}" for name in dns), *(f"IP:{ip}" for ip in ips)])
    (folder / "broker.ext").write_text(
        f"subjectAltName={san}\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth,clientAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n"
    )
    _run("openssl", "req", "-new", *_KEY, "-subj", f"/CN={dns[0] if dns else ips[0]}",
         "-keyout", "broker.key", "-out", "broker.csr", cwd=folder)
    _run("openssl", "x509", "-req", "-in", "broker.csr", "-CA", str(ca.cert), "-CAkey", str(ca.key),
         "-CAcreateserial", "-days", _DAYS, "-extfile", "broker.ext", "-out", "broker.pem", cwd=folder)
    _run("openssl", "pkcs12", "-export", "-name", "broker", "-in", "broker.pem", "-inkey", "broker.key",
         "-certfile", str(ca.cert), "-out", "broker.keystore.p12", "-passout", f"pass:{password}", cwd=folder)
    _run("keytool", "-importcert", "-noprompt", "-alias", "ca", "-file", str(ca.cert),
         "-keystore", "broker.truststore.p12", "-storetype", "PKCS12", "-storepass", password, cwd=folder)
    return BrokerTls(ca, folder / "broker.pem", folder / "broker.keystore.p12", folder / "broker.truststore.p12",
                     password)
