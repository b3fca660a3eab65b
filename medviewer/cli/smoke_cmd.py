"""``medviewer smoke-test``: the first-run path, headless, as a pass/fail check."""

from __future__ import annotations

from medviewer.cli.output import GuiRequest


def register(subparsers) -> None:
    """Add the ``smoke-test`` subcommand."""
    parser = subparsers.add_parser(
        "smoke-test", help="open the window offscreen, open the demo, classify, search and "
                           "explain one case; exit 0 if all worked")
    parser.add_argument("--workdir", help="folder for throw-away data (default: a temporary one)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds (default 300)")
    parser.add_argument("--screenshot", metavar="PNG", help="save the final window as a PNG")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run)


def run(args) -> GuiRequest:
    """Ask the launcher for the GUI smoke test."""
    return GuiRequest(smoke_test={"workdir": args.workdir, "timeout": args.timeout,
                                  "as_json": args.json, "screenshot": args.screenshot})
