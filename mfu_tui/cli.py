"""The `mfu-chat` command.

Only argparse and the version are imported at start-up: `mfu-chat --help`
and `mfu-chat --version` must answer at once, so each subcommand imports
what it needs (Textual, websockets, the server) inside its handler.
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from mfu_tui import __version__

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `mfu-chat` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="mfu-chat",
        description="Chat with AI models from the terminal. Run without a subcommand to open the app.",
    )
    _add_app_options(parser)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=_CommandParser)

    serve = commands.add_parser(
        "serve",
        help="run the chat server",
        description="Run the mfu-chat WebSocket server. The JWT secret comes from MFU_JWT_SECRET.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    serve.add_argument("--port", type=int, default=5001, help="port to listen on (default: %(default)s)")
    serve.add_argument(
        "--db", metavar="PATH_OR_URL", help="SQLite file or postgresql:// URL (default: SQLite in the user data dir)"
    )
    serve.add_argument(
        "--broker",
        metavar="URL",
        help="redis:// URL of the fan-out between server nodes (default: none, a single node)",
    )
    serve.add_argument(
        "--node-id",
        metavar="NAME",
        help="this node's name among several (default: HOST:PORT); a restart under the same name "
        "ends its interrupted answers at once",
    )
    serve.add_argument(
        "--lease",
        type=float,
        metavar="S",
        help="seconds after which another node ends the answers of a node that stopped renewing them (default 10)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes sharing the port (SO_REUSEPORT), about one per core (default: 1)",
    )
    # Given by the supervisor of --workers to each worker it starts: its number and its siblings' sockets.
    serve.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)
    serve.add_argument("--worker-dir", help=argparse.SUPPRESS)
    serve.add_argument(
        "--provider",
        default="demo",
        metavar="demo|openai|URL",
        help="where answers come from: demo, openai (at $MFU_OPENAI_BASE_URL) or the http(s) URL of an "
        "OpenAI-compatible server, as openai there (default: %(default)s)",
    )
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument(
        "--loop",
        default="auto",
        choices=["auto", "asyncio", "uvloop"],
        help="event loop: uvloop when installed (pip install 'mfu-chat[speed]'), else asyncio's (default: auto)",
    )
    serve.add_argument(
        "--log-format",
        choices=["text", "json"],
        help="log lines for people, or one JSON object per line (env MFU_LOG_FORMAT; default text)",
    )
    serve.add_argument(
        "--demo-words", type=int, metavar="N", help="length of a demo answer in words (env MFU_DEMO_WORDS; default 120)"
    )
    serve.add_argument(
        "--demo-delay-ms",
        type=float,
        metavar="MS",
        help="pause between demo words (env MFU_DEMO_DELAY_MS; default 30)",
    )
    serve.add_argument(
        "--ping-interval", type=float, metavar="S", help="seconds between keepalive pings, 0 for none (default 25)"
    )
    serve.add_argument(
        "--ping-timeout", type=float, metavar="S", help="seconds a client has to answer a ping (default 10)"
    )
    serve.add_argument(
        "--replay-window",
        type=float,
        metavar="S",
        help="seconds after an answer ends during which resume replays it (default 600)",
    )
    serve.add_argument("--rate-limit", type=float, metavar="N", help="messages a user may send per minute (default 60)")
    serve.add_argument(
        "--send-queue-bytes",
        type=int,
        metavar="BYTES",
        help="unsent bytes after which a slow client is closed with 4000 (default 1048576)",
    )
    serve.add_argument(
        "--max-answer-chars",
        type=int,
        metavar="N",
        help="characters after which an answer ends as if cut by the model (default 1000000)",
    )
    serve.add_argument(
        "--connections-per-user",
        type=int,
        metavar="N",
        help="open connections one user may hold on this server; one more gets HTTP 429 (default 20)",
    )
    serve.add_argument(
        "--reply-bytes-per-user",
        type=int,
        metavar="BYTES",
        help="bytes of replies waiting across one user's connections after which the server stops reading "
        "that user's frames until some are read (env MFU_REPLY_BYTES_PER_USER; default 8388608)",
    )
    serve.add_argument(
        "--answers-per-user",
        type=int,
        metavar="N",
        help="answers one user may have generating at once on this server, across chats; one more is "
        "sent again by the client when one ends (env MFU_ANSWERS_PER_USER; default 3)",
    )
    serve.add_argument(
        "--storage-per-user",
        type=float,
        metavar="MIB",
        help="MiB of text one user's chats may hold; past it new messages and edits are refused until "
        "chats are deleted, 0 for no quota (env MFU_STORAGE_PER_USER; default 200)",
    )
    serve.add_argument(
        "--max-attachment-bytes",
        type=int,
        metavar="BYTES",
        help="bytes the files attached to one message may hold together; a larger file is refused "
        "(env MFU_MAX_ATTACHMENT_BYTES; default 5242880, 5 MiB)",
    )
    serve.add_argument(
        "--handshake-timeout",
        type=float,
        metavar="S",
        help="seconds a new connection has to finish its opening handshake (env MFU_HANDSHAKE_TIMEOUT; default 5)",
    )
    serve.add_argument(
        "--max-handshakes",
        type=int,
        metavar="N",
        help="connections in their opening handshake at once; past it the oldest is dropped "
        "(env MFU_MAX_HANDSHAKES; default 200)",
    )
    serve.add_argument(
        "--upstream-idle-timeout",
        type=float,
        metavar="S",
        help="seconds the model server may stay silent while connecting or between two pieces of an answer, "
        "enough for a model to load (env MFU_UPSTREAM_IDLE_TIMEOUT; default 300)",
    )
    serve.add_argument(
        "--api-port",
        type=int,
        metavar="P",
        help="port of the REST API the seed's browser page uses, 0 for a free one (env MFU_API_PORT; default: none)",
    )
    serve.add_argument(
        "--cors-origin",
        action="append",
        metavar="ORIGIN",
        help="a browser origin allowed to call the REST API; repeatable (env MFU_CORS_ORIGINS, comma-separated)",
    )
    serve.add_argument(
        "--drain-timeout",
        type=float,
        metavar="S",
        help="on SIGTERM, seconds the running answers may take to end by themselves after the clients "
        "were sent to reconnect elsewhere; the rest end as interrupted; 0 ends them at once "
        "(env MFU_DRAIN_TIMEOUT; default 20)",
    )
    serve.add_argument(
        "--max-chat-age",
        type=float,
        metavar="DAYS",
        help="delete chats idle for longer than this many days, in the background (env MFU_MAX_CHAT_AGE; "
        "default: keep them)",
    )
    serve.add_argument(
        "--jwt-keys-file",
        metavar="PATH",
        help='secrets by key id, TOML lines of "KEY_ID" = "SECRET", mode 600: a token naming one in its header '
        "(kid) is checked with it, so a secret can be rotated (env MFU_JWT_KEYS_FILE)",
    )
    serve.add_argument("--jwt-issuer", metavar="ISS", help="the iss every token must carry (env MFU_JWT_ISSUER)")
    serve.add_argument("--jwt-audience", metavar="AUD", help="an aud every token must carry (env MFU_JWT_AUDIENCE)")
    serve.add_argument(
        "--jwt-jwks-url",
        metavar="URL",
        help="an identity provider's JWKS URL: its tokens (RS256, ES256, naming their key id) are let in; "
        "needs mfu-chat[sso] (env MFU_JWT_JWKS_URL)",
    )
    serve.add_argument(
        "--metrics-port",
        type=int,
        metavar="P",
        help="port of the Prometheus /metrics listener, 0 for a free one (env MFU_METRICS_PORT; default: none)",
    )
    serve.add_argument(
        "--metrics-host",
        metavar="H",
        help="address of the /metrics listener (env MFU_METRICS_HOST; default 127.0.0.1)",
    )
    serve.add_argument(
        "--trusted-proxy",
        action="append",
        metavar="CIDR",
        help="a proxy whose X-Forwarded-For names the client in the logs; repeatable "
        "(env MFU_TRUSTED_PROXIES, comma-separated; default: none)",
    )
    serve.set_defaults(handler=_lazy("mfu_tui.server.cli", "run_serve"))

    token = commands.add_parser(
        "token",
        help="print a token signed with MFU_JWT_SECRET",
        description="Print a JWT for USER signed with MFU_JWT_SECRET (or, with --key-id, with that key of "
        "MFU_JWT_KEYS_FILE), carrying MFU_JWT_ISSUER and MFU_JWT_AUDIENCE when set, for operators and tests.",
    )
    token.add_argument(
        "--key-id", metavar="KID", help="sign with this key of MFU_JWT_KEYS_FILE and name it in the header"
    )
    token.add_argument("--user", required=True, help="the user name (the token's subject)")
    token.add_argument("--ttl", type=int, default=7 * 24 * 3600, metavar="SECONDS", help="lifetime (default: 7 days)")
    token.set_defaults(handler=_lazy("mfu_tui.server.cli", "run_token"))

    db_help = "SQLite file or postgresql:// URL, as for serve (default: $MFU_DATABASE_URL, else serve's default)"
    migrate = commands.add_parser(
        "migrate",
        help="bring the server's database to this release's schema",
        description="Run the database migrations this release brings (serve runs them at start too), "
        "beside running nodes; a node refuses a schema newer than it knows.",
    )
    migrate.add_argument("--db", metavar="PATH_OR_URL", help=db_help)
    migrate.set_defaults(handler=_lazy("mfu_tui.server.admin", "run_migrate"))

    admin = commands.add_parser("admin", help="export or delete a user's data, back up the database")
    admin_commands = admin.add_subparsers(title="commands", metavar="COMMAND", required=True)
    export_user = admin_commands.add_parser(
        "export-user",
        help="write every chat of a user",
        description="Write every chat of USER, with its messages and files: JSON lines (one chat a line), "
        "or a ChatGPT-like conversations.json (text only).",
    )
    export_user.add_argument("user", metavar="USER", help="the user name (the tokens' subject)")
    export_user.add_argument("--format", choices=["jsonl", "chatgpt"], default="jsonl", help="(default: %(default)s)")
    export_user.add_argument("--output", metavar="FILE", help="a new file, made readable by you only (default: stdout)")
    export_user.add_argument("--db", metavar="PATH_OR_URL", help=db_help)
    export_user.set_defaults(handler=_lazy("mfu_tui.server.admin", "run_export_user"))
    delete_user = admin_commands.add_parser(
        "delete-user",
        help="delete everything of a user",
        description="Delete every chat, message, file, edit and idempotency key of USER. Without --yes, "
        "say what would be deleted.",
    )
    delete_user.add_argument("user", metavar="USER", help="the user name (the tokens' subject)")
    delete_user.add_argument("--yes", action="store_true", help="delete it: this cannot be undone")
    delete_user.add_argument("--db", metavar="PATH_OR_URL", help=db_help)
    delete_user.set_defaults(handler=_lazy("mfu_tui.server.admin", "run_delete_user"))
    backup = admin_commands.add_parser(
        "backup",
        help="copy a SQLite database while its server runs",
        description="Copy the SQLite database to PATH (a new file, mode 600) with SQLite's online backup "
        "API: a consistent snapshot, taken while the server goes on writing. PostgreSQL: use pg_dump.",
    )
    backup.add_argument("path", metavar="PATH", help="the new file")
    backup.add_argument("--db", metavar="PATH", help=db_help)
    backup.set_defaults(handler=_lazy("mfu_tui.server.admin", "run_backup"))

    login = commands.add_parser(
        "login",
        help="store your token for a server",
        description="Ask for your token (input hidden) and keep it, readable by you only, "
        "for SERVER; later runs of mfu-chat use it.",
    )
    login.add_argument("--server", dest="server", metavar="URL", help="the server, e.g. wss://chat.example.edu/ws")
    login.add_argument(
        "--no-check",
        dest="check",
        action="store_false",
        help="save the token without asking the server whether it takes it (for a server not reachable from here now)",
    )
    login.set_defaults(handler=_lazy("mfu_tui.config.commands", "run_login"))

    logout = commands.add_parser("logout", help="forget the stored token", description="Delete a stored token.")
    logout.add_argument("--server", dest="server", metavar="URL", help="whose token (default: the last login)")
    logout.set_defaults(handler=_lazy("mfu_tui.config.commands", "run_logout"))

    importer = commands.add_parser(
        "import",
        help="import a ChatGPT export's conversations as chats",
        description="Import the conversations of a ChatGPT data export (its zip as downloaded, or the "
        "conversations.json in it) "
        "as chats, through the server you use (a local one unless a server is configured). Importing the "
        "same file again adds only what is missing.",
    )
    importer.add_argument("file", metavar="FILE", help="the export's zip, or its conversations.json")
    importer.add_argument("--server", metavar="URL|local", help="the server, as for mfu-chat (default: as configured)")
    importer.add_argument("--token", metavar="JWT", help="your token for it (default: $MFU_TOKEN, then the login's)")
    importer.set_defaults(handler=_lazy("mfu_tui.importing.command", "run_import"))

    config = commands.add_parser(
        "config", help="where the settings are and what is in effect", description="With no command: show."
    )
    config.set_defaults(handler=_lazy("mfu_tui.config.commands", "run_config_show"))
    config_commands = config.add_subparsers(title="commands", metavar="COMMAND")
    config_commands.add_parser("path", help="print the config file's path").set_defaults(
        handler=_lazy("mfu_tui.config.commands", "run_config_path")
    )
    config_commands.add_parser("show", help="print the settings in effect and where each came from").set_defaults(
        handler=_lazy("mfu_tui.config.commands", "run_config_show")
    )
    return parser


class _CommandParser(argparse.ArgumentParser):
    """A subcommand's parser: a mistake is said in one line, naming the command, and where to read more.

    argparse prints the command's whole usage before its error, and that of
    ``serve`` runs to twenty lines, which buried the one saying what was wrong.
    """

    def parse_known_args(  # type: ignore[override]  # typeshed overloads it on the namespace type
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, rest = super().parse_known_args(args, namespace)
        if rest:  # said here, naming this command, rather than by ``mfu-chat``'s parser with its own usage
            self.error(f"unrecognized arguments: {' '.join(rest)}")
        return parsed, rest

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\nsee {self.prog} --help\n")


def _add_app_options(parser: argparse.ArgumentParser) -> None:
    """The options of `mfu-chat` itself, which opens the app: the same in both parsers."""
    parser.add_argument("--version", action="version", version=f"mfu-chat {__version__}")
    parser.add_argument(
        "--server",
        metavar="URL|local",
        help="the server's WebSocket URL, e.g. wss://chat.example.edu/ws, or local: run a local server even "
        "when logged in (default: $MFU_WS_URL, $VITE_WS_URL, the config file, the last login; none: local)",
    )
    parser.add_argument(
        "--token",
        metavar="JWT",
        help="your sign-in token (default: $MFU_TOKEN, then the login's); other users of this machine can see "
        "it in `ps` while the app runs: prefer `mfu-chat login` (asks for it, input hidden) or MFU_TOKEN",
    )
    parser.add_argument(
        "--provider",
        metavar="auto|demo|URL",
        help="where the local server's answers come from (refused with another server): auto (probe "
        "127.0.0.1:11434, else demo), demo (offline, nothing probed) or the http(s) URL of an OpenAI-compatible "
        "server (default: $MFU_PROVIDER, the config file, auto)",
    )
    parser.add_argument("--debug", action="store_true", help="log connection events to the log file")
    parser.add_argument(
        "--log-file",
        metavar="PATH",
        help="where to log, a regular file, made readable by you only (default: mfu-chat.log in the user log dir)",
    )
    parser.set_defaults(handler=_run_app)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `mfu-chat` console script; returns the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = _app_arguments(arguments)
    if args is None:
        args = build_parser().parse_args(arguments)
    return args.handler(args)


def _app_arguments(arguments: list[str]) -> argparse.Namespace | None:
    """The app's options, parsed alone, when ``arguments`` hold nothing else; else ``None``.

    The parser of every subcommand takes some 2 ms more of the app's start
    to build than one of the app's options, which gives the same namespace
    for those. Anything else (a subcommand, ``--help``, a mistake) is
    ``None``, for the whole parser, which reads or refuses it as always.
    """
    parser = argparse.ArgumentParser(prog="mfu-chat", add_help=False, exit_on_error=False)
    _add_app_options(parser)
    try:
        args, rest = parser.parse_known_args(arguments)
    except argparse.ArgumentError:  # an option without its value...
        return None
    return None if rest else args


def _lazy(module: str, function: str) -> Handler:
    """A handler that imports ``module`` only when the subcommand runs."""

    def handler(args: argparse.Namespace) -> int:
        import importlib

        return getattr(importlib.import_module(module), function)(args)

    return handler


def _run_app(args: argparse.Namespace) -> int:
    """Open the terminal app with the settings of flags, environment, config file and login.

    The collector is paused until the app loads (``ChatApp.on_load`` freezes
    what is there and resumes it): what is made until then is the modules and
    classes the app keeps to the end, so its passes over them would find
    nothing to free, in the time of the first frame (docs/benchmarks.md, startup).
    """
    gc.disable()
    try:
        from mfu_tui.config import ConfigError, load_settings

        try:
            settings = load_settings(
                {
                    "server": args.server,
                    "token": args.token,
                    "provider": args.provider,
                    "debug": args.debug or None,
                    "log_file": args.log_file,
                }
            )
        except ConfigError as error:
            print(f"mfu-chat: {error}", file=sys.stderr)
            return 2
        from mfu_tui.launch import run_app

        return run_app(settings)
    finally:
        gc.enable()  # if the app did not load (a configuration error), or another ``main()`` runs in this process
