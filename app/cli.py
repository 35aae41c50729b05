"""The `unroll` command line."""

from __future__ import annotations

import argparse
import sys

from app.settings import Settings


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `unroll` console script."""
    parser = argparse.ArgumentParser(prog="unroll", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve",
        help="serve the web app",
        description="Serve the web app and the JSON API.",
        epilog="example: unroll serve --port 8000",
    )
    defaults = Settings.from_env()
    serve.add_argument(
        "--host", default=defaults.host, help="address to bind (default %(default)s)"
    )
    serve.add_argument("--port", type=int, default=defaults.port, help="port (default %(default)s)")
    args = parser.parse_args(argv)

    if args.command == "serve":
        import uvicorn

        print(f"Unroll on http://{args.host}:{args.port}", file=sys.stderr)
        uvicorn.run("app.main:app", host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
