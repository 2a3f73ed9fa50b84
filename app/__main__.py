"""Entry point: ``docent`` with a subcommand runs the CLI; alone, the window."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run Docent and return its exit code."""
    from app.cli import build_parser, run

    code = run(argv)
    if code != -1:
        return code
    try:
        from app.ui.main_window import launch  # type: ignore[import-not-found]
    except ImportError:
        sys.stderr.write(
            "Docent's desktop window is not part of this build yet; "
            "use the command line meanwhile:\n\n"
        )
        build_parser().print_help(sys.stderr)
        return 0
    return launch()


if __name__ == "__main__":
    sys.exit(main())
