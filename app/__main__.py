"""Entry point: ``docent`` with a subcommand runs the CLI; alone, the window."""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Run Docent and return its exit code."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--integrity-probe"]:
        # The installed app's start-up check runs in a child process of the
        # app itself (there is no separate Python to run it with).
        from app.core.stores.integrity import main as probe

        return probe(args[1:])
    from app.cli import build_parser, run

    code = run(argv)
    if code != -1:
        return code
    args = build_parser().parse_args(argv)
    try:
        from app.ui.main_window import launch
    except ImportError as exc:
        from app.resources import is_frozen

        fix = ("Reinstall Docent; the installed app may be incomplete" if is_frozen()
               else "On Debian, `make run` installs the system libraries Qt needs")
        sys.stderr.write(
            f"Docent's window could not start: {exc}.\n"
            f"{fix}; the command line works meanwhile (docent --help).\n"
        )
        return 1
    data_dir = Path(args.data_dir).expanduser().resolve() if args.data_dir else None
    return launch(data_dir=data_dir)


if __name__ == "__main__":
    sys.exit(main())
