"""Private redis-server processes for the tests: random port, temp dir, killable, restartable."""

from __future__ import annotations

import ctypes
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child: ask Linux to SIGKILL it when the test process dies, even by SIGKILL or timeout."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class TlsFiles:
    """A CA, a server certificate for localhost/127.0.0.1, a client certificate, and a stranger CA."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path

    @classmethod
    def generate(cls, folder: Path) -> TlsFiles:
        folder.mkdir(parents=True, exist_ok=True)

        def run(*args: str) -> None:
            subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

        for ca in ("ca", "other-ca"):
            run(
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                f"/CN=HSI test {ca}",
                "-keyout",
                f"{ca}.key",
                "-out",
                f"{ca}.crt",
            )
        (folder / "server.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        for name, ext in (("server", ["-extfile", "server.ext"]), ("client", [])):
            run(
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                f"/CN={name}",
                "-keyout",
                f"{name}.key",
                "-out",
                f"{name}.csr",
            )
            run(
                "x509",
                "-req",
                "-in",
                f"{name}.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                f"{name}.crt",
                *ext,
            )
        return cls(
            ca=folder / "ca.crt",
            server_cert=folder / "server.crt",
            server_key=folder / "server.key",
            client_cert=folder / "client.crt",
            client_key=folder / "client.key",
            other_ca=folder / "other-ca.crt",
        )


class RedisServer:
    """One redis-server on 127.0.0.1 (and 127.0.0.2 for hostname checks) with no persistence."""

    def __init__(
        self,
        folder: Path,
        *,
        password: str | None = None,
        tls: TlsFiles | None = None,
        require_client_cert: bool = False,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.folder = folder
        self.password = password
        self.tls = tls
        self.require_client_cert = require_client_cert
        self.extra = extra
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        args = [
            REDIS_SERVER,
            "--bind",
            "127.0.0.1",
            "127.0.0.2",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.folder),
            "--logfile",
            str(self.folder / "redis.log"),
        ]
        if self.password:
            args += ["--requirepass", self.password]
        if self.tls:
            args += [
                "--port",
                "0",
                "--tls-port",
                str(self.port),
                "--tls-cert-file",
                str(self.tls.server_cert),
                "--tls-key-file",
                str(self.tls.server_key),
                "--tls-ca-cert-file",
                str(self.tls.ca),
                "--tls-auth-clients",
                "yes" if self.require_client_cert else "no",
            ]
        else:
            args += ["--port", str(self.port)]
        return args + list(self.extra)

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.log_tail()}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.02)
        raise RuntimeError(f"redis-server did not listen on {self.port}: {self.log_tail()}")

    def log_tail(self) -> str:
        log = self.folder / "redis.log"
        return log.read_text()[-2000:] if log.exists() else ""

    def kill(self) -> None:
        """SIGKILL: what a crash or an OOM kill looks like to the console."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(5)

    def restart(self) -> RedisServer:
        self.kill()
        return self.start()

    def client(self, **kwargs: object) -> redis.Redis:
        """A direct client for the test's own setup and assertions (not the app's)."""
        options: dict[str, object] = {"password": self.password, "socket_timeout": 5}
        if self.tls:
            options |= {
                "ssl_ca_certs": str(self.tls.ca),
                "ssl_certfile": str(self.tls.client_cert),
                "ssl_keyfile": str(self.tls.client_key),
            }
        return redis.Redis.from_url(self.url, **(options | kwargs))
