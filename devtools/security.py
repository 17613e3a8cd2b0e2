"""The secured profile of the dev node: OpenSearch with its security plugin, TLS and basic auth.

The plugin comes from Maven Central (`org.opensearch.plugin:opensearch-security:<v>.0:zip`) and
is installed into a copy of the distribution kept in the cache. Each node gets its own CA, node
and admin certificates (openssl), users with bcrypt hashes (the plugin's own hash tool, so no
extra Python dependency), and the roles the README documents, loaded at first start.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SecurityProfile", "secured_home", "configure_security", "SIDECAR_ROLE"]

_ORG = "O=sidecar-test"

# The least-privilege role from the README, for watched indices matching logs-* and the
# sidecar's own indices matching the given prefix.
SIDECAR_ROLE = "log_anomaly_sidecar"


@dataclass(frozen=True)
class SecurityProfile:
    """Users (name -> password) and which of them get the sidecar's role; `admin` gets all."""

    users: dict[str, str] = field(
        default_factory=lambda: {"admin": "Admin-Passw0rd!", "sidecar": "Sidecar-Passw0rd!"}
    )
    sidecar_users: tuple[str, ...] = ("sidecar",)
    watched_patterns: tuple[str, ...] = ("*-logs-*",)
    # Anomalies, incidents and dead letters are partitions: "<base>-2026.12" (and "<base>",
    # an unpartitioned index an earlier version left).
    own_patterns: tuple[str, ...] = (
        "*-anomalies*",
        "*-incidents*",
        "*-state",
        "*-dead-letters*",
        "*-notifications",
    )


def secured_home(home: Path, plugin_zip: Path, java_home: str) -> Path:
    """A copy of the distribution at `home` with the security plugin installed (cached)."""
    target = home.with_name(home.name + "-security")
    if (target / "plugins" / "opensearch-security").is_dir():
        return target
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=home.parent))
    copy = staging / target.name
    shutil.copytree(home, copy, symlinks=True)
    subprocess.run(
        [str(copy / "bin" / "opensearch-plugin"), "install", "--batch", plugin_zip.as_uri()],
        env={"JAVA_HOME": java_home, "OPENSEARCH_JAVA_HOME": java_home, "PATH": "/usr/bin:/bin"},
        check=True,
        capture_output=True,
    )
    (copy / "plugins" / "opensearch-security" / "tools" / "hash.sh").chmod(0o755)
    copy.rename(target)
    shutil.rmtree(staging, ignore_errors=True)
    return target


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _certificate(config: Path, name: str, subject: str, extensions: str | None = None) -> None:
    """`name`.pem and `name`-key.pem (PKCS#8, as the plugin wants), signed by root-ca."""
    _openssl("genrsa", "-out", f"{name}-rsa.pem", "2048", cwd=config)
    _openssl(
        "pkcs8", "-inform", "PEM", "-outform", "PEM", "-in", f"{name}-rsa.pem", "-topk8",
        "-nocrypt", "-v1", "PBE-SHA1-3DES", "-out", f"{name}-key.pem", cwd=config,
    )  # fmt: skip
    _openssl("req", "-new", "-key", f"{name}-key.pem", "-subj", subject, "-out", f"{name}.csr",
             cwd=config)  # fmt: skip
    sign = ["x509", "-req", "-in", f"{name}.csr", "-CA", "root-ca.pem", "-CAkey",
            "root-ca-key.pem", "-CAcreateserial", "-sha256", "-out", f"{name}.pem",
            "-days", "30"]  # fmt: skip
    if extensions:
        (config / f"{name}.ext").write_text(extensions)
        sign += ["-extfile", f"{name}.ext"]
    _openssl(*sign, cwd=config)


def write_ca(directory: Path, name: str = "root-ca") -> Path:
    """A self-signed CA (`name`.pem, `name`-key.pem) in `directory`; returns the certificate."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl("genrsa", "-out", f"{name}-key.pem", "2048", cwd=directory)
    _openssl("req", "-new", "-x509", "-sha256", "-key", f"{name}-key.pem", "-subj",
             f"/CN={name}/{_ORG}", "-out", f"{name}.pem", "-days", "30",
             cwd=directory)  # fmt: skip
    return directory / f"{name}.pem"


def _hash(home: Path, password: str, java_home: str) -> str:
    result = subprocess.run(
        ["bash", str(home / "plugins" / "opensearch-security" / "tools" / "hash.sh"), "-p",
         password],
        env={"JAVA_HOME": java_home, "OPENSEARCH_JAVA_HOME": java_home, "PATH": "/usr/bin:/bin"},
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return result.stdout.strip().splitlines()[-1]


def configure_security(home: Path, config: Path, profile: SecurityProfile, java_home: str) -> None:
    """Certificates, users, roles and node settings in `config`."""
    write_ca(config)
    _certificate(
        config,
        "node",
        f"/CN=node/{_ORG}",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    _certificate(config, "admin", f"/CN=admin/{_ORG}")
    security = config / "opensearch-security"
    users = "\n".join(
        f'{name}:\n  hash: "{_hash(home, password, java_home)}"\n  reserved: false\n'
        for name, password in profile.users.items()
    )
    (security / "internal_users.yml").write_text(
        '_meta:\n  type: "internalusers"\n  config_version: 2\n' + users
    )
    watched = ", ".join(f'"{p}"' for p in profile.watched_patterns)
    own = ", ".join(f'"{p}"' for p in profile.own_patterns)
    with (security / "roles.yml").open("a") as roles:
        roles.write(
            f"\n{SIDECAR_ROLE}:\n"
            '  cluster_permissions: ["indices:data/write/bulk*", "indices:data/read/mget*",'
            ' "indices:data/read/msearch*"]\n'
            "  index_permissions:\n"
            f"    - index_patterns: [{watched}]\n"
            '      allowed_actions: ["read", "indices:admin/mappings/fields/get"]\n'
            f"    - index_patterns: [{own}]\n"
            '      allowed_actions: ["write", "create_index", "read", "indices:admin/refresh*",'
            ' "indices:admin/delete", "indices:admin/aliases/get"]\n'
        )
    sidecar_users = ", ".join(f'"{u}"' for u in profile.sidecar_users)
    (security / "roles_mapping.yml").write_text(
        '_meta:\n  type: "rolesmapping"\n  config_version: 2\n'
        'all_access:\n  reserved: false\n  users: ["admin"]\n'
        f"{SIDECAR_ROLE}:\n  reserved: false\n  users: [{sidecar_users}]\n"
    )
    # In opensearch.yml, not -E: the DNs contain commas, which -E would split into lists.
    with (config / "opensearch.yml").open("a") as settings:
        settings.write(
            "\nplugins.security.ssl.transport.pemcert_filepath: node.pem\n"
            "plugins.security.ssl.transport.pemkey_filepath: node-key.pem\n"
            "plugins.security.ssl.transport.pemtrustedcas_filepath: root-ca.pem\n"
            "plugins.security.ssl.transport.enforce_hostname_verification: false\n"
            "plugins.security.ssl.http.enabled: true\n"
            "plugins.security.ssl.http.pemcert_filepath: node.pem\n"
            "plugins.security.ssl.http.pemkey_filepath: node-key.pem\n"
            "plugins.security.ssl.http.pemtrustedcas_filepath: root-ca.pem\n"
            "plugins.security.allow_default_init_securityindex: true\n"
            f'plugins.security.authcz.admin_dn: ["CN=admin,{_ORG}"]\n'
            f'plugins.security.nodes_dn: ["CN=node,{_ORG}"]\n'
        )
