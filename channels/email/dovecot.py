"""A real IMAP server for tests and benchmarks: Debian's Dovecot (`dovecot-imapd`), run
from a temporary directory with its own configuration, listening on 127.0.0.1 only.

As root it runs its processes as the `dovecot` user the package creates; otherwise as
the current user (Dovecot's rootless mode). `capability` replaces what it announces
after login (e.g. without MOVE or IDLE), so the fallbacks are tried against the same
real server. Every wait is bounded.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from channels.email.fake import free_port

DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"
START_TIMEOUT = 10.0

CONFIG = """\
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
instance_name = rallypoint-test-{port}
protocols = imap
listen = 127.0.0.1
ssl = {ssl}
{ssl_files}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = {user}
default_internal_user = {user}
first_valid_uid = 1
mail_location = maildir:~/Maildir
mailbox_idle_check_interval = 1 secs
{capability}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base}/users/%n
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={base}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


def dovecot_available() -> bool:
    return Path(DOVECOT).exists() and Path(DOVEADM).exists()


class Dovecot:
    """`start()`, then IMAP on `port` (plain) and `tls_port` (implicit TLS, when started
    with a certificate) for `user` / `password`; `stop()` ends every process."""

    def __init__(
        self,
        *,
        capability: str | None = None,
        cert_file: Path | None = None,
        key_file: Path | None = None,
        user: str = "team",
    ) -> None:
        # Its own directory, not under pytest's (mode 0700, root's): the server's
        # processes run as the `dovecot` user and must reach their files.
        self.base = Path(tempfile.mkdtemp(prefix="rallypoint-dovecot-"))
        self.capability = capability
        self.cert_file, self.key_file = cert_file, key_file
        self.user = user
        self.password = secrets.token_urlsafe(12)
        self.users = {user: self.password}
        self.port = free_port()
        self.tls_port = free_port() if cert_file else 0
        self.config = self.base / "dovecot.conf"

    def _owner(self) -> pwd.struct_passwd:
        return pwd.getpwnam("dovecot") if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())

    def start(self) -> None:
        owner = self._owner()
        for sub in ("run", "state", "home"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        ssl_files = ""
        if self.cert_file and self.key_file:
            ssl_files = f"ssl_cert = <{self.cert_file}\nssl_key = <{self.key_file}"
        capability = f"imap_capability = {self.capability}" if self.capability else ""
        self.config.write_text(
            CONFIG.format(
                base=self.base,
                port=self.port,
                tls_port=self.tls_port,
                ssl="yes" if ssl_files else "no",
                ssl_files=ssl_files,
                user=owner.pw_name,
                uid=owner.pw_uid,
                gid=owner.pw_gid,
                capability=capability,
            )
        )
        self._write_users()
        for path in (self.base, self.base / "home"):
            shutil.chown(path, owner.pw_uid, owner.pw_gid)
        command = [DOVECOT, "-c", str(self.config)]  # fixed paths, no input of anyone
        subprocess.run(command, check=True, timeout=START_TIMEOUT)  # noqa: S603
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self._end()
                    raise RuntimeError(f"dovecot did not listen: {self.log()[-2000:]}") from None
                time.sleep(0.05)

    def add_user(self, name: str) -> str:
        """Another mailbox (a fresh one per test); its password. Each user has a password
        file of their own (a changed file of the same size within the same second would
        not be read again)."""
        self.users[name] = secrets.token_urlsafe(12)
        self._write_users()
        return self.users[name]

    def _write_users(self) -> None:
        owner = self._owner()
        folder = self.base / "users"
        folder.mkdir(exist_ok=True)
        shutil.chown(folder, owner.pw_uid, owner.pw_gid)
        for name, word in self.users.items():
            path = folder / name
            if not path.exists():
                path.write_text(f"{name}:{{PLAIN}}{word}::::::\n")
                shutil.chown(path, owner.pw_uid, owner.pw_gid)

    def maildir(self, user: str | None = None) -> Path:
        """A user's INBOX on disk (Maildir), created with its owner on first use."""
        path = self.base / "home" / (user or self.user) / "Maildir"
        owner = self._owner()
        for sub in ("", "new", "cur", "tmp"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        for folder in (path.parent, path, path / "new", path / "cur", path / "tmp"):
            shutil.chown(folder, owner.pw_uid, owner.pw_gid)
        return path

    def kick(self, user: str | None = None) -> None:
        """Drop every connection of a user, as a restarting server would."""
        subprocess.run(  # noqa: S603 (fixed paths; the user is our own)
            [DOVEADM, "-c", str(self.config), "kick", user or self.user],
            check=True,
            timeout=START_TIMEOUT,
            capture_output=True,
        )

    def log(self) -> str:
        path = self.base / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """End the server and remove its directory."""
        try:
            self._end()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def _end(self) -> None:
        pid_file = self.base / "run" / "master.pid"
        if not pid_file.exists():
            return
        pid = int(pid_file.read_text().strip())
        try:
            os.kill(pid, 15)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        os.kill(pid, 9)
