"""A TCP proxy in a thread, to put a real server behind a fault: frozen (silent) or refusing.

``freeze()`` stops forwarding in both directions: open connections stay open and say nothing, new ones
are accepted and hear nothing (a database server stuck on a lock, a network that drops packets).
``refuse()`` closes every connection and stops listening (connects are refused, as by a stopped
server). ``heal()`` forwards again, on the same port.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from types import TracebackType

_STEP_S = 0.05


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``target`` until frozen, refused or closed."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._frozen = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = self._listen(0)
        self.port: int = self._listener.getsockname()[1]
        self._accepting = threading.Thread(target=self._accept, daemon=True, name="tcp-proxy")
        self._accepting.start()

    @staticmethod
    def _listen(port: int) -> socket.socket:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        return listener

    def freeze(self) -> None:
        self._frozen.set()

    def refuse(self) -> None:
        with self._lock:
            self._listener.close()
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def heal(self) -> None:
        with self._lock:
            if self._listener.fileno() == -1:
                self._listener = self._listen(self.port)
        self._frozen.clear()

    def close(self) -> None:
        self._closed.set()
        self.refuse()
        self._accepting.join(timeout=5)

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            with self._lock:
                listener = self._listener
            if listener.fileno() == -1:  # refusing: wait for heal()
                time.sleep(_STEP_S)
                continue
            try:
                ready, _, _ = select.select([listener], [], [], _STEP_S)
                if not ready:
                    continue
                client, _ = listener.accept()
            except (OSError, ValueError):  # closed under us by refuse()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        """Copy ``source`` to ``sink``; while frozen, read nothing (the bytes wait in the kernel)."""
        try:
            while not self._closed.is_set():
                if self._frozen.is_set():
                    time.sleep(_STEP_S)
                    continue
                ready, _, _ = select.select([source], [], [], _STEP_S)
                if not ready:
                    continue
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
