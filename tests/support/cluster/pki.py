"""Certificates, keys and credentials for a throwaway API server on 127.0.0.1."""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

# The API server's serving certificate must name the address clients dial
# (127.0.0.1) and the in-cluster names and first service IP (10.0.0.1 in the
# service range the API server is started with).
SERVICE_CIDR = "10.0.0.0/24"
SANS = (
    "IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,"
    "DNS:kubernetes.default,DNS:kubernetes.default.svc"
)


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    sa_key: Path  # signs service-account tokens
    sa_pub: Path
    tokens: Path  # static token file: one admin in system:masters
    token: str


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=60
    )
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args[:2])} failed: {done.stderr.strip()}")


def make_pki(where: Path) -> Pki:
    where.mkdir(parents=True, exist_ok=True)
    days = "2"  # the cluster lives for one test session
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", days,
        "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=slipway-test-ca",
        cwd=where,
    )  # fmt: skip
    (where / "serving.cnf").write_text(
        "[req]\ndistinguished_name=dn\n[dn]\n[ext]\n"
        f"subjectAltName={SANS}\n"
        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        encoding="utf-8",
    )
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "apiserver.key",
        "-out", "apiserver.csr", "-subj", "/CN=kube-apiserver",
        cwd=where,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", "apiserver.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", days, "-out", "apiserver.crt",
        "-extfile", "serving.cnf", "-extensions", "ext",
        cwd=where,
    )  # fmt: skip
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=where)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=where)
    token = secrets.token_hex(16)
    tokens = where / "tokens.csv"
    tokens.write_text(f"{token},admin,admin,system:masters\n", encoding="utf-8")
    tokens.chmod(0o600)
    return Pki(
        ca_cert=where / "ca.crt",
        serving_cert=where / "apiserver.crt",
        serving_key=where / "apiserver.key",
        sa_key=where / "sa.key",
        sa_pub=where / "sa.pub",
        tokens=tokens,
        token=token,
    )


def write_kubeconfig(path: Path, server: str, pki: Pki) -> Path:
    path.write_text(
        f"""apiVersion: v1
kind: Config
clusters:
  - name: test
    cluster:
      server: {server}
      certificate-authority: {pki.ca_cert}
users:
  - name: admin
    user:
      token: {pki.token}
contexts:
  - name: test
    context: {{cluster: test, user: admin}}
current-context: test
""",
        encoding="utf-8",
    )
    path.chmod(0o600)
    return path
