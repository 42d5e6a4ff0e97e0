"""nats-server processes for the cluster tests: JetStream on, on free
loopback ports, storing in a folder of their own; started, stopped,
killed and restarted by the tests."""

import os
import shutil
import signal
import subprocess
import tempfile

from chatdtest import LogWatcher, TIMEOUT, free_port

NATS_SERVER = shutil.which("nats-server") or "/usr/bin/nats-server"


def available():
    return os.access(NATS_SERVER, os.X_OK)


class NatsServer:
    """One nats-server with JetStream. routes: the cluster ports of the
    others, for a NATS cluster (then cluster_port is its own)."""

    def __init__(self, name="n1", cluster_port=None, routes=(), store=None, tls=None, user=None):
        """tls: (certificate, key): clients must speak TLS; user: (name,
        password) clients must give."""
        self.name = name
        self.tls = tls
        self.user = user
        self.port = free_port()
        self.cluster_port = cluster_port
        self.routes = list(routes)
        self._dir = None if store else tempfile.TemporaryDirectory(prefix="chatd-nats-")
        self.store = store or self._dir.name
        self.proc = None
        self.log = None

    @property
    def url(self):
        login = "%s:%s@" % self.user if self.user else ""
        return "%s://%s127.0.0.1:%d" % ("tls" if self.tls else "nats", login, self.port)

    def start(self):
        cmd = [NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port), "-n", self.name,
               "-js", "-sd", self.store]
        if self.tls:
            cmd += ["--tls", "--tlscert", self.tls[0], "--tlskey", self.tls[1]]
        if self.user:
            cmd += ["--user", self.user[0], "--pass", self.user[1]]
        if self.cluster_port:
            cmd += ["--cluster_name", "chatd-test",
                    "--cluster", "nats://127.0.0.1:%d" % self.cluster_port]
            if self.routes:
                cmd += ["--routes", ",".join("nats://127.0.0.1:%d" % p for p in self.routes)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.log = LogWatcher(self.proc.stdout)
        self.log.wait(r"Server is ready", timeout=TIMEOUT)
        return self

    def kill(self):
        """SIGKILL, as a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        self._reap()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._reap()

    def _reap(self):
        if self.proc:
            self.proc.wait()
            self.log.thread.join(2)
            self.proc.stdout.close()
            self.proc = None

    def close(self):
        self.stop()
        if self._dir:
            self._dir.cleanup()
