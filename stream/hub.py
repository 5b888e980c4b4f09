"""The stream's fan-out inside one server process: one listener thread, one bounded queue per client.

The listener waits on PostgreSQL's LISTEN (stream.services.CHANNEL), or on SQLite polls CountChange by id every
POLL_SECONDS, and hands each change to the event loop, which puts it in the queue of every client that asked for
its space. A client whose queue is full (it reads more slowly than counts change) is told so and dropped: no
client holds more than STREAM_QUEUE changes in memory.
"""

import asyncio
import json
import logging
import select
import threading
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import close_old_connections, connection

from stream.models import CountChange
from stream.services import CHANNEL, change_message

log = logging.getLogger(__name__)
POLL_SECONDS = 0.25  # SQLite only
OVERFLOW = object()  # put in a client's queue instead of the change that did not fit


@dataclass(eq=False)
class Client:
    spaces: frozenset[int] | None  # None: every space
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(maxsize=settings.STREAM_QUEUE + 1))
    dropped: bool = False

    def wants(self, space_id: int) -> bool:
        return self.spaces is None or space_id in self.spaces

    def offer(self, message: dict) -> None:
        if self.dropped:
            return
        if self.queue.qsize() >= settings.STREAM_QUEUE:
            self.dropped = True
            self.queue.put_nowait(OVERFLOW)  # the one slot kept free for it
            return
        self.queue.put_nowait(message)


class Hub:
    def __init__(self):
        self.clients: set[Client] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._ready = threading.Event()  # set while the listener listens

    async def subscribe(self, spaces: frozenset[int] | None) -> Client:
        """A new client's queue, once the listener hears every change committed from now on; on the event loop
        that will read it."""
        ready = self._start(asyncio.get_running_loop())
        await asyncio.to_thread(ready.wait, 10)
        client = Client(spaces=spaces)
        self.clients.add(client)
        return client

    def unsubscribe(self, client: Client) -> None:
        self.clients.discard(client)

    def dispatch(self, messages: list[dict]) -> None:
        """On the event loop: each change to each client that wants it, in order."""
        for message in messages:
            for client in list(self.clients):
                if client.wants(message["space_id"]):
                    client.offer(message)

    def _start(self, loop: asyncio.AbstractEventLoop) -> threading.Event:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return self._ready
            self.loop = loop
            listen = self._listen_postgresql if connection.vendor == "postgresql" else self._poll
            self._thread = threading.Thread(target=self._run, args=(listen,), name="stream-listener", daemon=True)
            self._thread.start()
            return self._ready

    def _run(self, listen) -> None:
        while True:
            try:
                listen()
            except Exception:
                self._ready.clear()
                log.exception("The stream's listener failed; it starts again in a second.")
                time.sleep(1)

    def _send(self, messages: list[dict]) -> None:
        if messages and self.loop is not None:
            self.loop.call_soon_threadsafe(self.dispatch, messages)

    def _listen_postgresql(self) -> None:
        """LISTEN on a connection of its own (not Django's, which belongs to requests), waiting in select()."""
        import psycopg2

        params = connection.get_connection_params()
        listener = psycopg2.connect(**params)
        try:
            listener.autocommit = True
            with listener.cursor() as cursor:
                cursor.execute(f"LISTEN {CHANNEL}")
            self._ready.set()
            while True:
                if select.select([listener], [], [], 5.0)[0]:
                    listener.poll()
                    messages = []
                    while listener.notifies:
                        messages += json.loads(listener.notifies.pop(0).payload)
                    self._send(messages)
        finally:
            listener.close()

    def _poll(self) -> None:
        """SQLite: read the changes committed since the last one seen; its single writer commits them in id order."""
        last = CountChange.objects.order_by("-id").values_list("id", flat=True).first() or 0
        self._ready.set()
        while True:
            time.sleep(POLL_SECONDS)
            close_old_connections()
            changes = list(CountChange.objects.filter(id__gt=last).order_by("id"))
            if changes:
                last = changes[-1].pk
                self._send([change_message(change) for change in changes])


hub = Hub()
