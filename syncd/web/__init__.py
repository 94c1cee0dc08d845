"""The HTTP side of the daemon: one Starlette app served by uvicorn in the daemon's loop.

app.py      routes, /healthz, /metrics
feeds.py    GET /feeds/{token}.ics with ETag, Last-Modified, 304 and gzip
hooks.py    /hooks/{provider}/{account}, handlers by provider kind
status.py   GET /, the status page, and who may see it
context.py  what handlers read, swapped by the daemon on reload
server.py   uvicorn started and stopped by the daemon (it keeps the signals)
"""
