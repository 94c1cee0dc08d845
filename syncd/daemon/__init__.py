"""The long-running service: ``syncd run`` and ``syncd demo``.

service.py    Daemon: start-up and stop order, SIGHUP reload, SIGTERM/SIGINT stop
scheduler.py  APScheduler jobs per sync: incremental, full scan, one-off (webhooks, retries)
runner.py     the one way a cycle runs: serialised per sync, never raising, feeds refreshed
backoff.py    per-backend Gate: exponential backoff with jitter, Retry-After, circuit breaker
metrics.py    Prometheus metrics in the daemon's own registry
notify.py     systemd notify protocol: READY, STATUS, RELOADING, STOPPING, WATCHDOG
lock.py       one daemon per state database
"""
