"""The feeds bench's report: syncd against Radicale per loop, the targets, and the table."""

from __future__ import annotations

from typing import Any

from bench.feeds_load import LOOPS
from bench.feeds_shop import LOOPBACK


def compare(out: dict[str, Any]) -> dict[str, Any]:
    """Per loop: syncd's requests/s over Radicale's, and Radicale's server CPU per request
    over syncd's. Like for like only when Radicale holds every event of the feed."""
    radicale = out["radicale"]
    like = "error" not in radicale and radicale["events_served"] == out["feed"]["events"]
    rows: dict[str, Any] = {"like_for_like": like}
    for loop in LOOPS:
        mine = out["syncd"]["loops"][loop.key]
        theirs = radicale.get("loops", {}).get(loop.key) if "error" not in radicale else None
        rows[loop.key] = {
            "requests_per_s_ratio": _ratio(mine["requests_per_s"], theirs, "requests_per_s"),
            "server_cpu_per_request_ratio": _ratio(
                theirs["server_cpu_ms_per_request"] if theirs else None,
                mine,
                "server_cpu_ms_per_request",
            ),
        }
    return rows


def _ratio(top: float | None, bottom_of: dict[str, Any] | None, key: str) -> float | None:
    bottom = bottom_of.get(key) if bottom_of else None
    if top is None or not bottom:
        return None
    return float(top) / float(bottom)


def targets(out: dict[str, Any]) -> list[dict[str, Any]]:
    """What the issue asks for, as checks; the speed ones are syncd against Radicale (the
    issue sets no number)."""
    n = out["events"]
    refresh, render, s, r = out["refresh"], out["render"], out["syncd"], out["radicale"]
    rows: list[tuple[str, str, Any, bool]] = [
        ("feed: events served by syncd", f"== {n:,}", s["events_served"], s["events_served"] == n),
        (
            "feed: served bytes are the rendered feed",
            "same SHA-256",
            s["served_is_rendered"],
            bool(s["served_is_rendered"]),
        ),
        (
            "render: cold refresh renders every event once",
            f"== {n:,}",
            refresh["cold"]["events_rendered"],
            refresh["cold"]["events_rendered"] == n,
        ),
        (
            "render: idle refresh renders nothing",
            "== 0 feeds",
            refresh["idle"]["feeds_rendered"],
            refresh["idle"]["feeds_rendered"] == 0,
        ),
        (
            "render: one appointment moved renders one event",
            "== 1",
            refresh["one_changed"]["events_rendered"],
            refresh["one_changed"]["events_rendered"] == 1
            and render["one_changed"]["events_rendered"] == 1,
        ),
    ]
    for key in ("get_200", "get_200_sequential"):
        loop = s["loops"][key]
        good = loop["statuses"] == {"200": loop["requests"]} and loop["content_encodings"] == {
            "gzip": loop["requests"]
        }
        rows.append((f"syncd {key}: every answer a gzip 200", "all", _statuses(loop), good))
    for key in ("get_304", "get_304_sequential"):
        loop = s["loops"][key]
        good = loop["requests"] > 0 and loop["statuses"] == {"304": loop["requests"]}
        rows.append((f"syncd {key}: every answer a 304", "all", _statuses(loop), good))
    if "error" in r:
        rows.append(("radicale: loaded and served", "no error", r["error"][:40], False))
        return _rows(rows)
    rows.append(
        (
            "radicale: serves the same events",
            f"== {n:,}",
            r["events_served"],
            r["events_served"] == n and bool(r["same_events"]),
        )
    )
    like = out["comparison"]["like_for_like"]
    for key, what in (("get_200", "200s"), ("get_304", "conditional GETs")):
        ratio = out["comparison"][key]["requests_per_s_ratio"]
        rows.append(
            (
                f"syncd/Radicale {what}/s, {out['concurrency']} clients",
                ">= 1" + ("" if like else " (not like for like)"),
                ratio,
                ratio is not None and ratio >= 1 and like,
            )
        )
    return _rows(rows)


def _statuses(loop: dict[str, Any]) -> str:
    return " ".join(f"{code}x{n}" for code, n in loop["statuses"].items()) or "none"


def _rows(rows: list[tuple[str, str, Any, bool]]) -> list[dict[str, Any]]:
    return [
        {"name": name, "target": target, "measured": measured, "pass": ok}
        for name, target, measured, ok in rows
    ]


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:,.{digits}f}" if value < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _msec(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def table(out: dict[str, Any]) -> str:
    env, n, feed = out["environment"], out["events"], out["feed"]
    lines = [
        f"syncd feed bench: {n:,} events, one full-detail feed, SQLite state store in a temp dir",
        f"Python {env['python']} on {env['system']} {env['machine']}, {env['cpus']} CPUs, "
        f"load average {_num(env['load_average_before'], 2)} before, "
        f"{_num(out['load_average_after'], 2)} after; "
        f"calibration sum(range(10**6)): {env['calibration_ms']:.1f} ms CPU",
        "",
    ]
    refresh, render = out["refresh"], out["render"]
    lines.append(f"{'render':<52}{'wall ms':>12}{'CPU ms':>12}{'events rendered':>18}")
    lines.append("-" * 94)
    for label, m in (
        ("FeedStore.refresh, cold (after the first sync)", refresh["cold"]),
        ("FeedStore.refresh, nothing changed", refresh["idle"]),
        ("FeedStore.refresh, one appointment moved", refresh["one_changed"]),
        ("render_feed alone, cold (no VEVENT cached)", render["cold"]),
        (f"render_feed alone, unchanged (median of {render['repeat']})", render["unchanged"]),
        (f"render_feed alone, one changed (median of {render['repeat']})", render["one_changed"]),
    ):
        lines.append(
            f"{label:<52}{_msec(m['wall_s']):>12}{_msec(m['cpu_s']):>12}{m['events_rendered']:>18,}"
        )
    lines.append(f"{'  of which gzip of the body':<52}{_msec(render['gzip_s']):>12}")
    sha = _msec(render["sha256_s"])
    lines.append(f"{'  of which SHA-256 of the body (the ETag)':<52}{sha:>12}")
    lines.append(
        f"feed size: {feed['body_bytes']:,} bytes, {feed['gzip_bytes']:,} gzipped "
        f"({feed['gzip_share']:.1%}); {feed['events']:,} events"
    )
    lines.append("")

    s, r = out["syncd"], out["radicale"]
    if "error" in r:
        lines.append(f"Radicale: not measured: {r['error']}")
    else:
        load = r["load"]
        how = f"{load['method']} in {load['seconds']:,.1f} s"
        if load["cached"]:
            how = f"restoring the storage of an earlier run's {how}"
        lines += [
            f"Radicale {r['radicale_version']}: {load['events']:,} events loaded by {how} "
            f"({_num(load['ms_per_event'])} ms an event)",
            f"  serves {r['events_served']:,} events, {r['body_bytes']:,} bytes, "
            f"{_num(r['gzip_bytes'])} gzipped; same UIDs as the feed: {r['same_events']}; "
            "answers a conditional GET with "
            + ("304" if r["conditional_get"] else f"{r['conditional_probe_status']} (no 304)"),
        ]
        if load["note"]:
            lines.append(f"  NOTE: {load['note']}")
        if not out["comparison"]["like_for_like"]:
            lines.append("  NOTE: Radicale holds fewer events than the feed: not like for like")
    lines.append(
        f"load loops: at most {out['max_requests']:,} requests or {out['max_seconds']:g} s "
        f"each, {LOOPBACK}, httpx clients in this process, servers in their own"
    )
    lines.append("")
    head = (
        f"{'loop':<26}{'server':<10}{'clients':>8}{'requests':>10}{'s':>7}{'req/s':>10}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'srv CPU ms/req':>16}{'client CPU':>12}  statuses"
    )
    lines += [head, "-" * (len(head) + 10)]
    servers = [("syncd", s)] + ([("radicale", r)] if "error" not in r else [])
    for loop in LOOPS:
        for name, figures in servers:
            m = figures["loops"][loop.key]
            label = loop.label if name == "syncd" else ""
            lines.append(
                f"{label:<26}{name:<10}{m['clients']:>8}{m['requests']:>10,}"
                f"{m['seconds']:>7.1f}{_num(m['requests_per_s']):>10}"
                f"{_num(m['latency_ms']['p50'], 2):>9}{_num(m['latency_ms']['p99'], 2):>9}"
                f"{_num(m['server_cpu_ms_per_request'], 3):>16}"
                f"{_pct(m['client_cpu_share']):>12}  {_statuses(m)}"
                + (f"  errors {m['errors']}" if m["errors"] else "")
            )
    idle = [
        f"{name} {loop.label.removesuffix(', 1 client')}: "
        f"{_num(figures['loops'][loop.key]['idle_ms_per_request'], 2)}"
        for name, figures in servers
        for loop in LOOPS
        if loop.single
    ]
    lines.append("1 client, ms a request spent on neither CPU: " + "; ".join(idle))
    if "error" not in r:
        lines.append("")
        lines.append(
            f"{'syncd / Radicale':<40}{'req/s ratio':>14}{'server CPU per request, R/s':>30}"
        )
        for loop in LOOPS:
            c = out["comparison"][loop.key]
            lines.append(
                f"{loop.label:<40}{_times(c['requests_per_s_ratio']):>14}"
                f"{_times(c['server_cpu_per_request_ratio']):>30}"
            )
    lines += ["", f"peak RSS of the bench process: {out['peak_rss_mib']:,.1f} MiB", ""]
    width = max(len(t["name"]) for t in out["targets"])
    lines.append(f"{'target':<{width}}  {'wanted':>28}  {'measured':>16}  result")
    for t in out["targets"]:
        verdict = "PASS" if t["pass"] else "MISS"
        lines.append(
            f"{t['name']:<{width}}  {t['target']:>28}  {_num(t['measured'], 2):>16}  {verdict}"
        )
    return "\n".join(lines)


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{share:.0%}"


def _times(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:,.1f}x"
