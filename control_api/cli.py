"""The ``relaycast`` command: serve, keys, env, ingest diagnostics, migrate."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from control_api.settings import Settings, SettingsError, load_settings
from control_api.version import version

if TYPE_CHECKING:
    from control_api.store import Store

USAGE_ERROR = 2


class CliError(Exception):
    """A one-line message for the user; exits 1 (2 when ``usage`` is set)."""

    def __init__(self, message: str, usage: bool = False) -> None:
        super().__init__(message)
        self.code = USAGE_ERROR if usage else 1


def _store_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, help="TOML configuration file")
    common.add_argument("--data-dir", type=Path, help="where the database and media live")
    return common


def _serve_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("serve", parents=[common], help="run the server")
    p.add_argument("--host", help="bind address (default 0.0.0.0)")
    p.add_argument("--public-host", help="host name put into ingest and playback URLs")
    p.add_argument("--http-port", type=int, help="HTTP API and playback port (default 8080)")
    p.add_argument("--rtmp-port", type=int, help="RTMP ingest port (default 1935)")
    p.add_argument("--srt-port", type=int, help="SRT ingest port (default 9000)")
    p.add_argument("--node-name", help="this node's name, unique in the installation")
    p.add_argument("--region", help="this node's region (one of the configured regions)")
    p.add_argument(
        "--workers",
        type=int,
        help="start N node processes sharing the ports (SO_REUSEPORT); needs PostgreSQL",
    )


def _keys_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(
        dest="action", required=True
    )
    create = keys.add_parser("create", parents=[common], help="create an API key")
    create.add_argument("--name", required=True)
    create.add_argument("--env", default="default", help="environment (created if missing)")
    create.add_argument("--access", choices=["full", "restricted"], default="full")
    create.add_argument("--cors-origin", action="append", default=[], dest="cors_origins")
    create.add_argument("--json", action="store_true", help="print one JSON object")
    listing = keys.add_parser("list", parents=[common], help="list API keys")
    listing.add_argument("--env", help="only this environment")
    listing.add_argument("--json", action="store_true")
    revoke = keys.add_parser("revoke", parents=[common], help="revoke an API key")
    revoke.add_argument("key_id")


def _env_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    env = sub.add_parser("env", help="manage environments").add_subparsers(
        dest="action", required=True
    )
    env.add_parser("list", parents=[common], help="list environments")
    create = env.add_parser("create", parents=[common], help="create an environment")
    create.add_argument("name")


def _ingest_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    ingest = sub.add_parser("ingest", help="ingest diagnostics").add_subparsers(
        dest="action", required=True
    )
    failures = ingest.add_parser(
        "failures", parents=[common], help="recent refused publishes, newest first"
    )
    failures.add_argument("--limit", type=_positive, default=20, help="how many (default 20)")
    failures.add_argument("--json", action="store_true", help="print one JSON array")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError("must be 1 to 10000")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relaycast", description="Self-hosted live streaming.")
    parser.add_argument("--version", action="version", version=f"relaycast {version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    common = _store_options()
    _serve_parser(sub, common)
    _keys_parser(sub, common)
    _env_parser(sub, common)
    _ingest_parser(sub, common)
    sub.add_parser("migrate", parents=[common], help="bring the database schema up to date")
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    server = {
        "host": getattr(args, "host", None),
        "public_host": getattr(args, "public_host", None),
        "http_port": getattr(args, "http_port", None),
        "data_dir": args.data_dir,
    }
    out: dict[str, Any] = {"server": {k: v for k, v in server.items() if v is not None}}
    if getattr(args, "rtmp_port", None) is not None:
        out["rtmp"] = {"port": args.rtmp_port}
    if getattr(args, "srt_port", None) is not None:
        out["srt"] = {"port": args.srt_port}
    node = {"name": getattr(args, "node_name", None), "region": getattr(args, "region", None)}
    if any(v is not None for v in node.values()):
        out["node"] = {k: v for k, v in node.items() if v is not None}
    return out


async def _with_store(settings: Settings, work: Callable[[Store], Awaitable[None]]) -> None:
    from control_api.store import Store

    settings.server.data_dir.mkdir(parents=True, exist_ok=True)
    store = await Store.open(settings.database_url)
    try:
        await work(store)
    finally:
        await store.close()


def _print(line: str) -> None:
    print(line, flush=True)


async def _keys_create(store: Store, args: argparse.Namespace) -> None:
    from control_api.schemas.api_keys import check_origin

    try:
        origins = [check_origin(o) for o in args.cors_origins]
    except ValueError as exc:
        raise CliError(f"--cors-origin: {exc}", usage=True) from None
    name = args.name.strip()
    if not name or len(name) > 200:
        raise CliError("--name: must be 1 to 200 characters", usage=True)
    env, _ = await store.environments.ensure(args.env)
    row, secret = await store.api_keys.create(env.id, name, args.access, origins)
    if args.json:
        _print(json.dumps({"keyId": row.id, "key": secret, "environment": env.name}))
    else:
        _print(f"created API key {row.id} ({row.access}) in environment {env.name}")
        _print(secret)


async def _keys_list(store: Store, args: argparse.Namespace) -> None:
    envs = {e.id: e.name for e in await store.environments.list()}
    env_id = None
    if args.env:
        env_id = next((i for i, n in envs.items() if n == args.env), None)
        if env_id is None:
            raise CliError(f"no environment named {args.env!r}")
    rows = await store.api_keys.list(env_id)
    if args.json:
        out = [
            {
                "keyId": r.id,
                "name": r.name,
                "access": r.access,
                "environment": envs[r.environment_id],
                "prefix": r.prefix,
                "corsOrigins": r.cors_origins,
            }
            for r in rows
        ]
        _print(json.dumps(out))
        return
    for r in rows:
        _print(f"{r.id}\t{envs[r.environment_id]}\t{r.access}\t{r.prefix}…\t{r.name}")


async def _keys_revoke(store: Store, args: argparse.Namespace) -> None:
    if not await store.api_keys.revoke(args.key_id):
        raise CliError(f"no active API key {args.key_id!r}")
    _print(f"revoked {args.key_id}")


async def _env_list(store: Store, _: argparse.Namespace) -> None:
    for env in await store.environments.list():
        _print(env.name)


async def _env_create(store: Store, args: argparse.Namespace) -> None:
    name = args.name.strip()
    if not name or len(name) > 64:
        raise CliError("environment name must be 1 to 64 characters", usage=True)
    _, created = await store.environments.ensure(name)
    if not created:
        raise CliError(f"environment {name!r} already exists")
    _print(f"created environment {name}")


async def _ingest_failures(store: Store, args: argparse.Namespace) -> None:
    """Every environment's refusals and the untied ones: the operator's view."""
    page = await store.ingest_failures.list(None, True, args.limit)
    envs = {e.id: e.name for e in await store.environments.list()}
    rows = [
        {
            "at": r.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "protocol": r.protocol,
            "remoteAddress": r.remote_addr,
            "attempted": r.attempted,
            "reason": r.reason,
            "detail": r.detail,
            "environment": envs.get(r.environment_id or ""),
            "streamId": r.stream_id,
        }
        for r in page.items
    ]
    if args.json:
        _print(json.dumps(rows))
        return
    for row in rows:
        _print(
            f"{row['at']}\t{row['protocol']}\t{row['remoteAddress']}\t{row['reason']}\t"
            f"{row['attempted'] or '-'}\t{row['streamId'] or '-'}\t{row['detail']}"
        )


async def _migrate(store: Store, _: argparse.Namespace) -> None:
    _print("database schema is up to date")


COMMANDS: dict[tuple[str, str | None], Callable[[Store, argparse.Namespace], Awaitable[None]]] = {
    ("keys", "create"): _keys_create,
    ("keys", "list"): _keys_list,
    ("keys", "revoke"): _keys_revoke,
    ("env", "list"): _env_list,
    ("env", "create"): _env_create,
    ("ingest", "failures"): _ingest_failures,
    ("migrate", None): _migrate,
}


def _fail(message: str, code: int) -> NoReturn:
    print(f"relaycast: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def _serve(settings: Settings, args: argparse.Namespace, argv: Sequence[str]) -> None:
    from control_api.serve import configure_logging, serve

    if args.workers is None or args.workers == 1:
        serve(settings)
        return
    from control_api import workers

    try:
        workers.check(settings, args.workers)
    except workers.WorkersRefused as exc:
        _fail(str(exc), USAGE_ERROR)
    configure_logging(settings.server.log_level, settings.server.log_format)
    raise SystemExit(workers.Workers(settings, argv, args.workers).run())


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config, overrides=_overrides(args))
    except SettingsError as exc:
        _fail(str(exc), USAGE_ERROR)
    if args.command == "serve":
        from server.transcode.service import EncoderUnavailable, check_encoder

        try:
            check_encoder(settings.transcode)
        except EncoderUnavailable as exc:
            _fail(str(exc), USAGE_ERROR)
        _serve(settings, args, sys.argv[1:] if argv is None else argv)
        return
    command = COMMANDS[(args.command, getattr(args, "action", None))]
    try:
        asyncio.run(_with_store(settings, lambda store: command(store, args)))
    except CliError as exc:
        _fail(str(exc), exc.code)
    except OSError as exc:
        _fail(f"cannot open the database: {exc}", 1)


if __name__ == "__main__":
    main()
