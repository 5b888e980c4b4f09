"""The ASGI application, served by uvicorn: everything under `make run`, and GET /stream beside gunicorn's sync
workers under `make serve` (README, "Serving"). A stream's idle connection waits on the event loop instead of
holding a worker, so thousands of dashboards cost a little memory each, not a process each.
"""

import os
import warnings

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

application = get_asgi_application()

# Under ASGI each request's sync code runs in a context of its own, and a persistent connection would be left
# behind by every one of them (Django's documentation: disable persistent connections under ASGI). Connections
# are made lazily, after this.
for database in settings.DATABASES.values():
    database["CONN_MAX_AGE"] = 0

# WhiteNoise answers static files (under `make run`; production's come from gunicorn) with a file iterator, which
# Django's ASGI handler reads in a thread and warns about on every file. That is fine for files of a few KiB.
warnings.filterwarnings("ignore", "StreamingHttpResponse must consume synchronous iterators", Warning)
