"""The command line: ``owui-meter [serve]`` and its maintenance commands (``owui-meter --help``)."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import signal
import sys

from . import __version__
from . import settings as settings_module
from .settings import SettingsError

log = logging.getLogger("owui_meter")

STOP_SECONDS = 0.5  # how long SIGTERM waits for background work (lookups, syncs) to finish


def _load_settings():
    try:
        return settings_module.load()
    except SettingsError as exc:
        print(f"owui-meter: invalid setting: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _banner(meter, url: str, new: bool) -> None:
    """What the admin needs from this start: a new meter says so, shows the secrets made for it
    (once) and the next steps; every start says where it listens and where its data is."""
    settings = meter.settings
    data = os.path.abspath(settings.METER_DATA_DIR)
    lines = [f"Created a new, empty meter in {data} (no meter.db was there)."] if new else []
    if "API_KEY" in meter.generated:
        lines += [
            "Generated the plugin API key (kept in the data directory; shown this once):",
            f"    API_KEY = {settings.API_KEY}",
        ]
    if meter.generated_password:
        lines += [
            "Generated the dashboard password for user 'admin' (shown this once, stored hashed):",
            f"    password = {meter.generated_password}",
        ]
    if new or lines:
        port = url.rsplit(":", 1)[1]
        browse = url.replace("//0.0.0.0:", "//localhost:").replace("//[::]:", "//localhost:")
        if settings.METER_PUBLIC_URL:
            reach = settings.METER_PUBLIC_URL
        elif settings.METER_HOST in ("127.0.0.1", "localhost", "::1"):
            reach = f"{browse} (Open WebUI in a container: restart with METER_HOST=0.0.0.0, then http://host.docker.internal:{port})"
        else:
            reach = f"http://host.docker.internal:{port} from a container on this machine, or this machine's address"
        lines += [
            "Next steps:",
            f"  1. Dashboard: {browse}  (user 'admin')",
            "  2. Open WebUI: Admin > Functions > +, paste plugin/owui_meter.py, make it global; valves:",
            f"     meter_url = {reach}",
            "     api_key   = the API key (owui-meter api-key prints it)",
        ]
        if not settings.OPENROUTER_API_KEY:
            lines.append("  3. Set OPENROUTER_API_KEY so each cost is confirmed with OpenRouter (else costs stay as reported).")
    if lines:
        rule = "=" * 72
        print("\n".join([rule, *lines, rule]), flush=True)
    print(f"owui-meter {__version__} listening on {url}; data in {data}", flush=True)


def cmd_serve(args) -> int:
    from .backup import BackupError, hold_run_lock
    from .db import inspect_file, prepare_data_dir
    from .meter import Meter
    from .web import create_app
    from .web.server import MeterServer

    settings = _load_settings()
    _setup_logging(settings.METER_LOG_LEVEL)
    prepare_data_dir(settings.METER_DATA_DIR)
    inspect_file(os.path.join(settings.METER_DATA_DIR, "meter.db"))  # refused before the lock file is made
    try:
        run_lock = hold_run_lock(settings.METER_DATA_DIR)  # restore refuses while this is held
    except BackupError as exc:
        print(f"owui-meter: {exc}", file=sys.stderr)
        return 1
    new = not os.path.exists(os.path.join(settings.METER_DATA_DIR, "meter.db"))
    meter = Meter.open(settings, serving=True)
    app = create_app(meter)
    try:
        server = MeterServer(app, settings)
    except OSError as exc:
        print(f"owui-meter: cannot listen on {settings.METER_HOST}:{settings.METER_PORT}: {exc.strerror}", file=sys.stderr)
        meter.stop()
        return 1
    host = settings.METER_HOST if ":" not in settings.METER_HOST else f"[{settings.METER_HOST}]"
    _banner(meter, f"http://{host}:{server.effective_port}", new)

    def on_signal(signum, frame):
        # the server's run() catches SystemExit, answers what it received, closes the rest, returns
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    meter.start()
    try:
        server.run()
    finally:
        stuck = meter.stop(timeout=STOP_SECONDS)
        run_lock.close()
        log.info("stopped")
    if stuck:
        # an OpenRouter lookup hanging in a worker thread would hold the exit until its timeout;
        # what it was doing is still queued in the database and is tried again on the next start
        log.info("not waiting for %s", ", ".join(stuck))
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def _default_text(setting) -> str:
    if setting.env in ("API_KEY", "JWT_SECRET"):
        return "generated"
    if setting.env == "PASSWORD_HASH":
        return "generated password"
    if setting.default is None:
        return "unset"
    return str(setting.default)


def settings_markdown() -> str:
    """The README's settings table."""
    rows = ["| env | default | meaning |", "|---|---|---|"]
    for s in settings_module.SETTINGS:
        default = _default_text(s)
        rows.append(f"| `{s.env}` | {default if default in ('generated', 'generated password', 'unset') else f'`{default}`'} | {s.help} |")
    return "\n".join(rows)


# what most teams set, first in meter.env.example
COMMON_SETTINGS = ("OPENROUTER_API_KEY", "METER_PUBLIC_URL", "METER_TIMEZONE", "OPENWEBUI_URL", "OPENWEBUI_API_KEY")


def settings_env_example() -> str:
    """meter.env.example: the settings most teams set, then every other one, grouped, each with
    its help and default (commented out)."""
    lines = ["# owui-meter settings. Uncomment and change what you need.", "# Secrets can also come from NAME_FILE (e.g. API_KEY_FILE=/run/secrets/api_key).",
             "", "# === what most teams set ==="]
    by_name = {s.env: s for s in settings_module.SETTINGS}
    group = None
    for s in [by_name[name] for name in COMMON_SETTINGS] + [s for s in settings_module.SETTINGS if s.env not in COMMON_SETTINGS]:
        if s.env not in COMMON_SETTINGS and s.group != group:
            group = s.group
            lines += ["", f"# === {group} ==="]
        lines.append(f"# {s.help}")
        default = "" if s.default is None else str(s.default)
        lines.append(f"# {s.env}={default}")
    return "\n".join(lines) + "\n"


def cmd_settings(args) -> int:
    if args.format == "markdown":
        print(settings_markdown())
        return 0
    if args.format == "env":
        print(settings_env_example(), end="")
        return 0
    settings = _load_settings()
    group = None
    for setting, shown, origin in settings.describe():
        if setting.group != group:
            group = setting.group
            print(f"\n[{group}]")
        print(f"{setting.env} = {shown}    ({origin})")
        print(f"    {setting.help}")
    return 0


def cmd_hash_password(args) -> int:
    from .auth import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("owui-meter: the passwords differ", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 8:
        print("owui-meter: use at least 8 characters", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0


def _meter_settings():
    from . import first_run

    settings, _ = first_run.complete_secrets(_load_settings())
    return settings


def cmd_token_create(args) -> int:
    from .auth import issue_admin_token

    if args.days <= 0 or args.days > 3650:
        print("owui-meter: --days must be between 1 and 3650", file=sys.stderr)
        return 2
    meter = _open_meter()
    try:
        token = issue_admin_token(meter, args.name, args.days)
    finally:
        meter.stop()
    print(f"Admin API token '{args.name}', valid for {args.days:g} days. Send it as 'Authorization: Bearer <token>'.", file=sys.stderr)
    print(token)
    return 0


def cmd_token_list(args) -> int:
    from .clock import ms_to_iso, now_ms

    meter = _open_meter()
    try:
        rows = meter.db.query("SELECT * FROM admin_tokens ORDER BY created")
    finally:
        meter.stop()
    print(f"{'id':<12} {'name':<24} {'created':<20} {'expires':<20} state")
    for row in rows:
        state = "revoked" if row["revoked"] else ("expired" if row["expires"] <= now_ms() else "valid")
        print(f"{row['jti'][:12]:<12} {row['name'][:24]:<24} {ms_to_iso(row['created'])[:19]:<20} {ms_to_iso(row['expires'])[:19]:<20} {state}")
    return 0


def cmd_token_revoke(args) -> int:
    from .auth import revoke_admin_tokens

    meter = _open_meter()
    try:
        count = revoke_admin_tokens(meter, args.token)
    finally:
        meter.stop()
    if not count:
        print(f"owui-meter: no valid token with id or name {args.token!r} (see 'owui-meter token list')", file=sys.stderr)
        return 1
    print(f"revoked {count} token{'s' if count != 1 else ''}")
    return 0


def cmd_api_key(args) -> int:
    print(_meter_settings().API_KEY)
    return 0


def _open_meter():
    """The meter for a maintenance command: the server's time zone, no derived data rebuilt."""
    from .meter import Meter

    return Meter.open(_load_settings())


def cmd_backup(args) -> int:
    from .backup import BackupError, backup

    settings = _load_settings()
    db_path = os.path.join(settings.METER_DATA_DIR, "meter.db")
    if not os.path.exists(db_path):
        print(f"owui-meter: no database at {db_path}", file=sys.stderr)
        return 1
    dest = args.path or os.path.join(settings.METER_DATA_DIR, "backups")
    os.makedirs(dest if not args.path else os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    try:
        print(backup(db_path, dest))
    except BackupError as exc:
        print(f"owui-meter: backup failed: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_restore(args) -> int:
    from .backup import BackupError, restore

    settings = _load_settings()
    try:
        kept = restore(settings.METER_DATA_DIR, args.path)
    except BackupError as exc:
        print(f"owui-meter: {exc}", file=sys.stderr)
        return 1
    print(f"restored {args.path}" + (f"; the previous database is kept as {kept}" if kept else ""))
    return 0


def cmd_erase_user(args) -> int:
    from .erasure import erase_user

    meter = _open_meter()
    try:
        result = erase_user(meter, args.user_id, args.mode, "cli")
    finally:
        meter.stop()
    if result is None:
        print(f"owui-meter: no user {args.user_id}", file=sys.stderr)
        return 1
    print(f"{args.mode}: {result['answers']} answers")
    return 0


def cmd_import_owui_metering(args) -> int:
    from . import import_owui_metering as importer
    from .errors import BadInput
    from .periods import parse_instant

    try:
        traces_before = parse_instant("--traces-before", args.traces_before, end=False)
    except BadInput as exc:
        print(f"owui-meter: {exc}", file=sys.stderr)
        return 2

    if args.dry_run:  # read both databases, write nothing: not even a new meter.db or secrets
        from .db import connect

        db_path = os.path.join(_load_settings().METER_DATA_DIR, "meter.db")
        conn = connect(db_path, readonly=True) if os.path.exists(db_path) else None
        try:
            todo = importer.plan(args.path, (lambda sql, params: conn.execute(sql, params).fetchall()) if conn else None, traces_before)
        except BadInput as exc:
            print(f"owui-meter: {exc}", file=sys.stderr)
            return 1
        finally:
            if conn is not None:
                conn.close()
        print(importer.describe(todo, todo.events, dry_run=True))
        return 0
    meter = _open_meter()
    try:
        todo, added = importer.run(meter, args.path, traces_before)
    except BadInput as exc:
        print(f"owui-meter: {exc}", file=sys.stderr)
        return 1
    finally:
        meter.stop()
    print(importer.describe(todo, added, dry_run=False))
    return 0


def cmd_report(args) -> int:
    """Every statement with usage in the month, and the summary, into a folder (for cron)."""
    from . import reports
    from .errors import BadInput
    from .periods import Period

    meter = _open_meter()
    try:
        period = Period.month(args.month, meter.settings.METER_TIMEZONE)
        os.makedirs(args.out, exist_ok=True)
        for name, data in reports.documents(meter, period):
            path = os.path.join(args.out, name)
            with open(path, "wb") as fh:
                fh.write(data)
            print(path)
    except (BadInput, reports.ReportError) as exc:
        print(f"owui-meter: {exc}", file=sys.stderr)
        return 2
    finally:
        meter.stop()
    return 0


def cmd_check(args) -> int:
    """Recompute every derived figure from the events (read-only, safe while the meter runs)."""
    from .invariants import check_file

    settings = _load_settings()
    if args.data_dir:
        settings = settings.replace(METER_DATA_DIR=args.data_dir)
    problems = check_file(os.path.join(settings.METER_DATA_DIR, "meter.db"), settings)
    if not problems:
        print("ok")
        return 0
    for line in problems[:1000]:
        print(line)
    if len(problems) > 1000:
        print(f"… and {len(problems) - 1000} more")
    print(f"{len(problems)} difference{'s' if len(problems) != 1 else ''} between the derived figures and the events", file=sys.stderr)
    return 1


def _read_new_password() -> str | None:
    if sys.stdin.isatty():
        password = getpass.getpass("New password: ")
        if getpass.getpass("Again: ") != password:
            print("owui-meter: the passwords differ", file=sys.stderr)
            return None
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 10:
        print("owui-meter: use at least 10 characters", file=sys.stderr)
        return None
    return password


def cmd_admin(args) -> int:
    from . import audit, clock
    from .auth import hash_password

    if not args.name or len(args.name) > 64 or not args.name.isprintable() or " " in args.name:
        print("owui-meter: the name must be 1 to 64 printable characters without spaces", file=sys.stderr)
        return 2
    password = _read_new_password()
    if password is None:
        return 2
    meter = _open_meter()
    try:
        with meter.db.write() as conn:
            exists = conn.execute("SELECT id FROM admins WHERE username = ?", (args.name,)).fetchall()
            if args.admin_command == "add":
                if exists:
                    print(f"owui-meter: admin {args.name} exists; use 'admin passwd'", file=sys.stderr)
                    return 1
                conn.execute("INSERT INTO admins (username, password_hash, created) VALUES (?, ?, ?)", (args.name, hash_password(password), clock.now_ms()))
            else:
                if not exists:
                    print(f"owui-meter: no admin {args.name}", file=sys.stderr)
                    return 1
                conn.execute("UPDATE admins SET password_hash = ? WHERE username = ?", (hash_password(password), args.name))
                conn.execute("DELETE FROM sessions WHERE admin_id = ?", (exists[0]["id"],))  # log out everywhere
            audit.record(conn, "cli", f"admin.{args.admin_command}", {"username": args.name})
    finally:
        meter.stop()
    print(f"admin {args.name}: {'added' if args.admin_command == 'add' else 'password changed'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="owui-meter", description="What each Open WebUI user really costs on OpenRouter.")
    parser.add_argument("--version", action="version", version=f"owui-meter {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = commands.add_parser("serve", help="run the meter (the default)")
    p.set_defaults(func=cmd_serve)

    p = commands.add_parser("settings", help="print every setting with its help and current value (secrets masked)")
    p.add_argument("--format", choices=("current", "markdown", "env"), default="current",
                   help="current values (default), the README table, or meter.env.example")
    p.set_defaults(func=cmd_settings)

    p = commands.add_parser("hash-password", help="print an argon2id hash for PASSWORD_HASH (reads stdin when not a terminal)")
    p.set_defaults(func=cmd_hash_password)

    p = commands.add_parser("token", help="admin API tokens")
    token_commands = p.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    t = token_commands.add_parser("create", help="print a new admin API token (JWT) as the last line")
    t.add_argument("--days", type=float, default=30, help="validity in days (default 30)")
    t.add_argument("--name", default="admin", help="who the token is for (shown in logs and the audit trail)")
    t.set_defaults(func=cmd_token_create)
    t = token_commands.add_parser("list", help="tokens made here: id, name, dates, valid/expired/revoked")
    t.set_defaults(func=cmd_token_list)
    t = token_commands.add_parser("revoke", help="revoke tokens by id (its first 8+ characters) or by name")
    t.add_argument("token", help="a token id from 'token list', or a name")
    t.set_defaults(func=cmd_token_revoke)

    p = commands.add_parser("api-key", help="print the plugin API key")
    p.set_defaults(func=cmd_api_key)

    p = commands.add_parser("admin", help="dashboard accounts (the password is read from stdin when piped)")
    admin_commands = p.add_subparsers(dest="admin_command", metavar="ACTION", required=True)
    for action, text in (("add", "add an admin"), ("passwd", "change an admin's password (logs them out everywhere)")):
        a = admin_commands.add_parser(action, help=text)
        a.add_argument("name")
        a.set_defaults(func=cmd_admin)

    p = commands.add_parser("report", help="write every statement and the summary of a month as PDFs")
    p.add_argument("--month", required=True, help="e.g. 2026-11")
    p.add_argument("--out", required=True, help="folder to write into")
    p.set_defaults(func=cmd_report)

    p = commands.add_parser("check", help="check every derived figure (daily totals, spend counters, balances, confirmed costs, "
                                          "statements) against the events; read-only, safe while the meter runs")
    p.add_argument("--data-dir", help="the data directory (default: METER_DATA_DIR)")
    p.set_defaults(func=cmd_check)

    p = commands.add_parser("backup", help="write a checked copy of the live database (default: data/backups/)")
    p.add_argument("path", nargs="?", help="a file or directory")
    p.set_defaults(func=cmd_backup)

    p = commands.add_parser("restore", help="replace the database with a backup (the meter must be stopped)")
    p.add_argument("path")
    p.set_defaults(func=cmd_restore)

    p = commands.add_parser("erase-user", help="forget a user (GDPR): anonymise keeps totals, delete removes rows")
    p.add_argument("user_id")
    p.add_argument("--mode", choices=("anonymise", "delete"), required=True)
    p.set_defaults(func=cmd_erase_user)

    p = commands.add_parser("import-owui-metering", help="import users and activities from OWUI-Metering's data.db")
    p.add_argument("path")
    p.add_argument("--dry-run", action="store_true", help="print what would be imported and skipped, change nothing")
    p.add_argument("--traces-before", metavar="WHEN", help="leave out OTLP trace rows from WHEN on (ISO date or datetime, UTC unless "
                   "it has an offset): when owui-meter's plugin went live, so a chat traced to OWUI-Metering is not counted twice")
    p.set_defaults(func=cmd_import_owui_metering)
    return parser


def main(argv=None) -> int:
    from .errors import CannotStart

    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", cmd_serve)
    try:
        return func(args) or 0
    except CannotStart as exc:  # a file or directory it will not use: one line, nothing touched
        print(f"owui-meter: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
