"""A real SSH server for the tests, in this process (asyncssh, on 127.0.0.1 only), and an ssh
client configuration for the real OpenSSH `ssh` that ippmon runs.

The server plays a login node: it forwards connections to the names it knows (`hosts`: the
cluster's private network, here names that only it resolves) and to 127.0.0.1, it runs the
tunnel's remote command (say ready, then wait for the end of input), and it can be stopped
and started again on the same port (the tunnel dropping). A second server asks for a password
only, and a socket that never answers stands for a dead login node.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import asyncssh

USER = "ippmon"

# Host aliases in the generated ssh config, one per behaviour.
GOOD = "ippmon-test"
UNKNOWN_KEY = "ippmon-unknown-hostkey"
REFUSED_KEY = "ippmon-refused-key"
PASSWORD = "ippmon-password"
SILENT = "ippmon-silent"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Login(asyncssh.SSHServer):
    def __init__(self, server: SshServer) -> None:
        self.server = server
        self.conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        self.server.conns.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.conns.discard(self.conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return not self.server.password_only

    def password_auth_supported(self) -> bool:
        return self.server.password_only

    def validate_password(self, username: str, password: str) -> bool:
        return False

    def connection_requested(
        self, dest_host: str, dest_port: int, orig_host: str, orig_port: int
    ) -> Any:
        host = self.server.hosts.get(dest_host, dest_host)
        if host != "127.0.0.1" or self.conn is None:
            return False
        self.server.forwarded.add((dest_host, dest_port))
        return self.conn.forward_connection(host, dest_port)


async def _tunnel_command(process: asyncssh.SSHServerProcess) -> None:
    """`echo WORD; ...`: print WORD, then wait for the end of input (as `cat >/dev/null`)."""
    said = re.match(r"echo (\S+);", process.command or "")
    if said:
        process.stdout.write(said.group(1) + "\n")
    with contextlib.suppress(Exception):
        while await process.stdin.read(4096):
            pass
    process.exit(0)


class SshServer:
    """An SSH server on 127.0.0.1:port, run by an event loop in a thread of the test process."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        host_key: asyncssh.SSHKey,
        authorized: asyncssh.SSHKey,
        *,
        hosts: dict[str, str] | None = None,
        password_only: bool = False,
    ) -> None:
        self.loop = loop
        self.host_key = host_key
        self.authorized = authorized
        self.hosts = dict(hosts or {})
        self.password_only = password_only
        self.port = _free_port()
        self.conns: set[Any] = set()
        self.forwarded: set[tuple[str, int]] = set()  # (host, port) asked for by clients
        self._acceptor: Any = None

    def _run(self, coro: Awaitable[Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)  # type: ignore[arg-type]

    def start(self) -> None:
        async def listen() -> Any:
            return await asyncssh.listen(
                "127.0.0.1",
                self.port,
                server_factory=lambda: _Login(self),
                server_host_keys=[self.host_key],
                # (given keys turn public-key login on, whatever the server object says)
                authorized_client_keys=None
                if self.password_only
                else asyncssh.import_authorized_keys(self.authorized.export_public_key().decode()),
                process_factory=_tunnel_command,
                reuse_address=True,
                allow_scp=False,
            )

        self._acceptor = self._run(listen())

    def stop(self) -> None:
        """Stop listening and cut every connection (the network to the login node drops)."""

        async def stop() -> None:
            if self._acceptor is not None:
                self._acceptor.close()
                await self._acceptor.wait_closed()
                self._acceptor = None
            for conn in list(self.conns):
                conn.abort()
            self.conns.clear()

        self._run(stop())

    @property
    def running(self) -> bool:
        return self._acceptor is not None


class SshSetup:
    """Keys, servers and the client config (`ssh -F config`) for one test session."""

    def __init__(self, folder: Path, hosts: dict[str, str]) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        user_key = asyncssh.generate_private_key("ssh-ed25519")
        other_key = asyncssh.generate_private_key("ssh-ed25519")
        self.server = SshServer(self.loop, host_key, user_key, hosts=hosts)
        self.password_server = SshServer(self.loop, host_key, user_key, password_only=True)
        self.server.start()
        self.password_server.start()
        # a login node that accepts TCP connections and never says a word
        self.silent = socket.socket()
        self.silent.bind(("127.0.0.1", 0))
        self.silent.listen(8)

        def private(name: str, key: asyncssh.SSHKey) -> Path:
            path = folder / name
            path.write_bytes(key.export_private_key())
            path.chmod(0o600)
            return path

        user = private("id_user", user_key)
        other = private("id_other", other_key)
        known = folder / "known_hosts"
        known.write_text(f"ippmon-test-server {host_key.export_public_key().decode()}")
        empty = folder / "known_hosts_empty"
        empty.write_text("")
        silent_port = self.silent.getsockname()[1]
        self.config = folder / "ssh_config"
        self.config.write_text(
            f"Host {GOOD}\n  Port {self.server.port}\n  IdentityFile {user}\n"
            f"Host {UNKNOWN_KEY}\n  Port {self.server.port}\n  UserKnownHostsFile {empty}\n"
            f"  IdentityFile {user}\n"
            f"Host {REFUSED_KEY}\n  Port {self.server.port}\n  IdentityFile {other}\n"
            f"Host {PASSWORD}\n  Port {self.password_server.port}\n  IdentityFile {user}\n"
            f"Host {SILENT}\n  Port {silent_port}\n  IdentityFile {user}\n"
            "Host *\n"
            "  HostName 127.0.0.1\n"
            f"  User {USER}\n"
            "  IdentitiesOnly yes\n"
            "  IdentityAgent none\n"
            "  HostKeyAlias ippmon-test-server\n"
            f"  UserKnownHostsFile {known}\n"
            "  GlobalKnownHostsFile /dev/null\n"
            "  StrictHostKeyChecking yes\n"
            "  ControlMaster no\n"
            "  ControlPath none\n"
            "  PasswordAuthentication yes\n"
            "  KbdInteractiveAuthentication yes\n"
        )
        self.ssh_command = f"ssh -F {self.config}"

    def close(self) -> None:
        for server in (self.server, self.password_server):
            with contextlib.suppress(Exception):
                server.stop()
        self.silent.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
