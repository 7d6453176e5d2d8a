"""``streamal annotate``: a labeling page for people, over the label-requests and labels topics.

The web framework is Starlette, served by uvicorn: small (the page needs
routing, cookies, JSON and one middleware, not an ORM or templates), typed,
ASGI, maintained by the encode team that also keeps uvicorn and httpx, and
with a test client that runs the app in-process without a socket. The page
itself is one static HTML file with vanilla JS and inline CSS: no build step,
no CDN, it works offline.

One job per module: :mod:`.queue` (pending requests, leases, exactly-once
answers; pure), :mod:`.classes` (the classes offered and the JSON type of
an answer), :mod:`.view` (a request as the page shows it, bounded in size),
:mod:`.feed` (the topics, the labels producer, the service's figures),
:mod:`.web` (the app and its token gate) and :mod:`.command` (the CLI).
"""

from streamal.apps.annotate.command import annotate

__all__ = ["annotate"]
