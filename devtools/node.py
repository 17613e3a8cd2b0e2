"""A throw-away single-node OpenSearch (or Elasticsearch) for the test suite and the demo.

Maven fetches `org.opensearch.distribution.integ-test-zip:opensearch:<version>:zip` (or
`org.elasticsearch.distribution.integ-test-zip:elasticsearch:<version>:zip`) into a cache
outside the repository (reused when present); the zip is unpacked once per version; each node
gets fresh data, config and log directories, binds 127.0.0.1 on free ports with a small heap,
and runs as an unprivileged user when started by root (both engines refuse to run as root).

    python -m devtools.node start      # prints the URL; state in $CACHE/devnode.json
    python -m devtools.node stop
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from devtools.security import SecurityProfile, configure_security, secured_home

__all__ = [
    "OPENSEARCH_VERSION",
    "ELASTICSEARCH_VERSION",
    "Engine",
    "MavenZip",
    "ENGINES",
    "DevNode",
    "cache_dir",
    "fetch_distribution",
]

OPENSEARCH_VERSION = os.environ.get("SIDECAR_DEV_OPENSEARCH_VERSION", "2.19.3")
ELASTICSEARCH_VERSION = os.environ.get("SIDECAR_DEV_ELASTICSEARCH_VERSION", "8.19.4")
_SERVICE_USER = "opensearch-sidecar"


@dataclass(frozen=True, slots=True)
class MavenZip:
    """Maven coordinates of a zip on Maven Central; `label` names the file and its top folder."""

    group: str
    name: str
    version: str

    @property
    def coordinates(self) -> str:
        return f"{self.group}:{self.name}:{self.version}:zip"

    @property
    def label(self) -> str:
        return f"{self.name}-{self.version}"


@dataclass(frozen=True, slots=True)
class Engine:
    """What differs between the two engines' distributions and start-up."""

    name: str  # also the artifact id, the zip's top folder and the start script
    group: str
    version: str
    env_prefix: str  # <prefix>_PATH_CONF, <prefix>_TMPDIR, <prefix>_JAVA_OPTS
    settings: tuple[str, ...] = ()

    @property
    def distribution(self) -> MavenZip:
        return MavenZip(self.group, self.name, self.version)

    @property
    def label(self) -> str:
        return self.distribution.label


ENGINES = {
    "opensearch": Engine(
        "opensearch",
        "org.opensearch.distribution.integ-test-zip",
        OPENSEARCH_VERSION,
        "OPENSEARCH",
    ),
    # Elasticsearch 8 turns security (TLS + auth) on by default; the plain test node runs
    # without it, as the plain OpenSearch node runs without its security plugin.
    "elasticsearch": Engine(
        "elasticsearch",
        "org.elasticsearch.distribution.integ-test-zip",
        ELASTICSEARCH_VERSION,
        "ES",
        ("xpack.security.enabled=false",),
    ),
}
SECURITY_PLUGIN = MavenZip(
    "org.opensearch.plugin", "opensearch-security", f"{OPENSEARCH_VERSION}.0"
)


def cache_dir() -> Path:
    """Where the distribution is kept between runs, outside the repository.

    As root the default is under /var/cache, because the unprivileged account that runs the
    node cannot traverse root's home directory.
    """
    root = os.environ.get("SIDECAR_CACHE_DIR")
    if not root:
        root = (
            "/var/cache/log-anomaly-sidecar"
            if os.geteuid() == 0
            else os.path.join(
                os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                "log-anomaly-sidecar",
            )
        )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o755)
    return path


def fetch_distribution(artifact: MavenZip = ENGINES["opensearch"].distribution) -> Path:
    """The zip (a distribution or a plugin), downloaded by Maven into the cache's own local
    repository."""
    repo = cache_dir() / "m2"
    zip_path = (
        repo
        / artifact.group.replace(".", "/")
        / artifact.name
        / artifact.version
        / f"{artifact.label}.zip"
    )
    if zip_path.is_file():
        return zip_path
    if shutil.which("mvn") is None:
        raise RuntimeError(
            f"Maven (mvn) is needed to fetch {artifact.name}; install it (apt-get install maven)"
        )
    subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "dependency:get",
            f"-Dartifact={artifact.coordinates}",
            "-Dtransitive=false",
            f"-Dmaven.repo.local={repo}",
        ],
        check=True,
    )
    if not zip_path.is_file():
        raise RuntimeError(f"Maven finished but {zip_path} is missing")
    return zip_path


def _install(engine: Engine) -> Path:
    home = cache_dir() / engine.label
    if (home / "bin" / engine.name).is_file():
        return home
    archive = fetch_distribution(engine.distribution)
    staging = Path(tempfile.mkdtemp(prefix=f".{engine.label}-", dir=cache_dir()))
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(staging)
    unpacked = staging / engine.label
    for script in (unpacked / "bin").iterdir():
        script.chmod(0o755)
    for dirpath, dirnames, filenames in os.walk(unpacked):
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), 0o755)
        for name in filenames:
            path = os.path.join(dirpath, name)
            os.chmod(path, os.stat(path).st_mode | 0o444)
    os.replace(unpacked, home)
    shutil.rmtree(staging, ignore_errors=True)
    return home


def _service_user() -> pwd.struct_passwd | None:
    """The account the node runs as: an unprivileged one when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(_SERVICE_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                _SERVICE_USER,
            ],
            check=True,
        )
        return pwd.getpwnam(_SERVICE_USER)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _java_home() -> str:
    if os.environ.get("OPENSEARCH_JAVA_HOME"):
        return os.environ["OPENSEARCH_JAVA_HOME"]
    if os.environ.get("JAVA_HOME"):
        return os.environ["JAVA_HOME"]
    java = shutil.which("java")
    if java is None:
        raise RuntimeError("Java 17+ is needed to run the dev node; none found on PATH")
    return str(Path(os.path.realpath(java)).parents[1])


class DevNode:
    """A dev node of `engine` (OpenSearch unless told otherwise)."""

    def __init__(
        self,
        engine: Engine | str = "opensearch",
        heap: str = "512m",
        security: SecurityProfile | None = None,
    ) -> None:
        self.engine = ENGINES[engine] if isinstance(engine, str) else engine
        self.heap = heap
        # With a profile (OpenSearch only): TLS on HTTP and transport, basic auth, roles.
        self.security = security
        self.port = 0
        self.run_dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._launch: tuple[list[str], dict[str, str], pwd.struct_passwd | None] | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.security else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path | None:
        """The CA that signed the node's certificate (secured profile)."""
        return self.run_dir / "config" / "root-ca.pem" if self.security and self.run_dir else None

    def start(self, timeout_s: float = 180.0) -> DevNode:
        try:
            self._start(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, timeout_s: float) -> None:
        home = _install(self.engine)
        if self.security is not None:
            plugin = fetch_distribution(SECURITY_PLUGIN)
            home = secured_home(home, plugin, _java_home())
        user = _service_user()
        self.run_dir = Path(tempfile.mkdtemp(prefix=f"sidecar-{self.engine.name}-"))
        for sub in ("data", "logs", "tmp"):
            (self.run_dir / sub).mkdir()
        shutil.copytree(home / "config", self.run_dir / "config")
        # jvm.options points GC logs and heap dumps at paths relative to the install, which
        # the service account cannot write; keep them in this node's own directories.
        jvm_options = self.run_dir / "config" / "jvm.options"
        jvm_options.write_text(
            jvm_options.read_text()
            .replace("file=logs/gc.log", f"file={self.run_dir}/logs/gc.log")
            .replace("HeapDumpPath=data", f"HeapDumpPath={self.run_dir}/data")
            .replace("ErrorFile=logs/", f"ErrorFile={self.run_dir}/logs/")
        )
        if self.security is not None:
            configure_security(home, self.run_dir / "config", self.security, _java_home())
        if user is not None:
            for dirpath, _dirs, files in os.walk(self.run_dir):
                os.chown(dirpath, user.pw_uid, user.pw_gid)
                for name in files:
                    os.chown(os.path.join(dirpath, name), user.pw_uid, user.pw_gid)
        self.port = _free_port()
        transport = _free_port()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "JAVA_HOME": _java_home(),
            # Elasticsearch reads only ES_JAVA_HOME (and otherwise wants its bundled JDK,
            # which the integ-test-zip lacks).
            f"{self.engine.env_prefix}_JAVA_HOME": _java_home(),
            f"{self.engine.env_prefix}_PATH_CONF": str(self.run_dir / "config"),
            f"{self.engine.env_prefix}_TMPDIR": str(self.run_dir / "tmp"),
            f"{self.engine.env_prefix}_JAVA_OPTS": f"-Xms{self.heap} -Xmx{self.heap}",
        }
        command = [
            str(home / "bin" / self.engine.name),
            "-Ediscovery.type=single-node",
            "-Enetwork.host=127.0.0.1",
            f"-Ehttp.port={self.port}",
            f"-Etransport.port={transport}",
            f"-Epath.data={self.run_dir / 'data'}",
            f"-Epath.logs={self.run_dir / 'logs'}",
            "-Ecluster.name=sidecar-dev",
            # A nearly full disk must not turn the node read-only in the middle of a test.
            "-Ecluster.routing.allocation.disk.threshold_enabled=false",
            *(f"-E{setting}" for setting in self.engine.settings),
        ]
        self._launch = (command, env, user)
        self._spawn()
        self._wait_healthy(timeout_s)

    def _spawn(self) -> None:
        assert self.run_dir is not None and self._launch is not None
        command, env, user = self._launch
        log_file = (self.run_dir / "stdout.log").open("ab")
        self._process = subprocess.Popen(
            command,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=self.run_dir,
            start_new_session=True,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
        )

    def halt(self, timeout_s: float = 60.0) -> None:
        """Stop the node but keep its data and ports, as an outage would (see `resume`)."""
        self._terminate(timeout_s)

    def resume(self, timeout_s: float = 180.0) -> None:
        """Start a halted node again on the same data, ports and settings."""
        self._spawn()
        self._wait_healthy(timeout_s)

    def _wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        health = urllib.request.Request(
            f"{self.url}/_cluster/health?wait_for_status=yellow&timeout=2s"
        )
        context = None
        if self.security is not None:
            context = ssl.create_default_context(cafile=str(self.ca_file))
            token = base64.b64encode(f"admin:{self.security.users['admin']}".encode()).decode()
            health.add_header("Authorization", f"Basic {token}")
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"{self.engine.name} exited early:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(health, timeout=5, context=context) as response:
                    if json.load(response).get("status") in ("yellow", "green"):
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
                pass
            time.sleep(1)
        raise RuntimeError(
            f"{self.engine.name} not healthy after {timeout_s:.0f}s:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 40) -> str:
        if self.run_dir is None or not (self.run_dir / "stdout.log").exists():
            return ""
        return "\n".join(
            (self.run_dir / "stdout.log").read_text(errors="replace").splitlines()[-lines:]
        )

    def _terminate(self, timeout_s: float) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def stop(self, timeout_s: float = 60.0) -> None:
        self._terminate(timeout_s)
        if self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self.run_dir = None

    def __enter__(self) -> DevNode:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _state_file() -> Path:
    return cache_dir() / "devnode.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.node")
    parser.add_argument("action", choices=["start", "stop", "fetch"])
    args = parser.parse_args(argv)
    if args.action == "fetch":
        print(_install(ENGINES["opensearch"]))
        return 0
    if args.action == "start":
        node = DevNode().start()
        assert node._process is not None and node.run_dir is not None
        _state_file().write_text(
            json.dumps({"pid": node._process.pid, "url": node.url, "run_dir": str(node.run_dir)})
        )
        print(node.url)
        return 0
    if not _state_file().exists():
        print("no dev node recorded")
        return 0
    state = json.loads(_state_file().read_text())
    try:
        os.killpg(state["pid"], signal.SIGTERM)
        for _ in range(60):
            os.killpg(state["pid"], 0)
            time.sleep(0.5)
    except ProcessLookupError:
        pass
    shutil.rmtree(state["run_dir"], ignore_errors=True)
    _state_file().unlink()
    print(f"stopped {state['url']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
