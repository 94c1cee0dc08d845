"""The ``syncd`` command: argument parsing, logging set-up, and errors as one clear line.

Exit codes: 0 all good; 1 a sync failed or was refused, or ``check`` found a problem;
2 the user must fix something (config, arguments) -- printed without a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from syncd import __version__
from syncd.errors import StoreError, UserError
from syncd.log import configure_logging

EPILOG = """\
config: -c FILE, else $SYNCD_CONFIG, else ./config.toml (see config.example.toml).
exit codes: 0 ok, 1 a sync failed or was refused / check found problems, 2 fix your input.
"""


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="syncd",
        description="Keep online booking providers and your calendars in step.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--version", action="version", version=f"syncd {__version__}")
    commands = top.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text)
        if name not in ("demo", "sandbox"):
            sub.add_argument("-c", "--config", metavar="FILE", help="the config file")
        return sub

    sync = command("sync", "run one full cycle of each sync now and print what changed")
    sync.add_argument("names", nargs="*", metavar="NAME", help="syncs to run (default: all)")
    sync.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    sync.add_argument(
        "--full", action="store_true", help="list whole windows instead of changes since last run"
    )
    sync.add_argument(
        "--allow-mass-delete",
        action="store_true",
        help="apply a plan even if it deletes more than the sync's max_delete_share",
    )
    status = command("status", "per sync: last run, lag, counts, errors, conflicts")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    command("check", "validate the config and try every credential and URL")
    command("run", "the daemon: scheduled syncs, feeds, webhooks, /healthz, /metrics")
    command("feeds", "print the published feed URLs")
    sandbox = command("sandbox", "serve a simulated provider API on loopback")
    sandbox.add_argument("provider", metavar="PROVIDER", help="e.g. onlineafspraken")
    sandbox.add_argument("--port", type=int, help="port to listen on")
    sandbox.add_argument("--seed", type=int, help="random seed of the sample data")
    demo = command("demo", "run the daemon on built-in sample data: no account, no server needed")
    demo.add_argument("--cycles", type=int, default=0, help="stop after N cycles (0: run on)")
    demo.add_argument("--interval", type=float, default=5.0, help="seconds between cycles")
    demo.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0: any free port)")
    demo.add_argument(
        "--caldav", metavar="URL", default="", help="also sync into this CalDAV calendar"
    )
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging()
    try:
        if args.command == "sandbox":  # serves with its own event loop
            from syncd.commands import sandbox

            return sandbox.main(args.provider, args.port, args.seed)
        return asyncio.run(_dispatch(args))
    except (UserError, StoreError) as err:
        print(f"syncd: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


async def _dispatch(args: argparse.Namespace) -> int:
    from syncd.commands import check, demo, feeds, run, status, sync

    match args.command:
        case "sync":
            return await sync.main(
                args.config, args.names, args.dry_run, args.full, args.allow_mass_delete
            )
        case "status":
            return status.main(args.config, args.json)
        case "check":
            return await check.main(args.config)
        case "run":
            return await run.main(args.config)
        case "feeds":
            return feeds.main(args.config)
        case "demo":
            return await demo.main(args.cycles, args.interval, args.port, args.caldav)
    raise AssertionError(args.command)  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
