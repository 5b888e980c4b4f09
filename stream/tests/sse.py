"""A Server-Sent Events client for the tests: standard library only. A thread reads the stream's lines as they
come; `next()` waits for the next event (or comment) as long as the test says."""

import http.client
import json
import queue
import socket
import threading
import time
from dataclasses import dataclass


@dataclass
class Event:
    event: str  # "snapshot", "count", "dropped", or "comment" for a `:` line
    id: str | None
    data: dict | str | None


class Stream:
    """GET `path` on 127.0.0.1:`port`, open until closed."""

    def __init__(self, url: str, port: int, path: str, token: str, last_event_id: str | None = None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Accept": "text/event-stream"}
        if token:
            headers["Authorization"] = f"Token {token}"
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self.conn.request("GET", path, headers=headers)
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.headers = {name.lower(): value for name, value in self.response.getheaders()}
        self.received: queue.Queue = queue.Queue()
        if self.status == 200:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        fields: dict[str, str] = {}
        try:
            while True:
                line = self.response.readline().decode()
                if line == "":
                    break  # closed
                line = line.rstrip("\n")
                if line.startswith(":"):
                    self.received.put(Event("comment", None, line[1:].strip()))
                elif line == "":
                    if "data" in fields or "event" in fields:
                        data = fields.get("data")
                        event = fields.get("event", "message")
                        self.received.put(Event(event, fields.get("id"), json.loads(data) if data else None))
                    fields = {}
                else:
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
        except Exception:  # closed by the test (close() pulls the connection from under the read)
            pass

    def next(self, timeout: float = 5.0) -> Event | None:
        """The next event or comment, None when nothing came within `timeout` seconds."""
        try:
            return self.received.get(timeout=timeout)
        except queue.Empty:
            return None

    def events(self, kind: str, count: int, timeout: float = 5.0) -> list[Event]:
        """The next `count` events of `kind`, skipping comments and other kinds; fewer if they do not come."""
        found, deadline = [], time.monotonic() + timeout
        while len(found) < count and time.monotonic() < deadline:
            event = self.next(timeout=max(0.01, deadline - time.monotonic()))
            if event is not None and event.event == kind:
                found.append(event)
        return found

    def close(self) -> None:
        # Shut the socket first: it wakes the reading thread, which holds the response's lock until a line comes.
        if self.conn.sock is not None:
            try:
                self.conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.conn.close()
