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
        if name != "demo":
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
    demo = command("demo", "run on built-in sample data: no account, no server needed")
    demo.add_argument("--cycles", type=int, default=0, help="stop after N cycles (0: run on)")
    demo.add_argument("--interval", type=float, default=5.0, help="seconds between cycles")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging()
    try:
        return asyncio.run(_dispatch(args))
    except (UserError, StoreError) as err:
        print(f"syncd: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


async def _dispatch(args: argparse.Namespace) -> int:
    from syncd.commands import check, demo, status, sync

    match args.command:
        case "sync":
            return await sync.main(
                args.config, args.names, args.dry_run, args.full, args.allow_mass_delete
            )
        case "status":
            return status.main(args.config, args.json)
        case "check":
            return await check.main(args.config)
        case "demo":
            return await demo.main(args.cycles, args.interval)
    raise AssertionError(args.command)  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
