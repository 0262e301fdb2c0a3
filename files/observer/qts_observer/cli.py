"""Command line of the Observer: ``python observer.py [options]``."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from . import __version__
from .config import ConfigError, Settings, load_config
from .intake import InputError, InputSource
from .logbook import Logbook
from .output import DirectoryLock, OutputError
from .service import Observer, Paths

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_STARTUP = 3

INSTALL_DIR = Path(__file__).resolve().parent.parent

DESCRIPTION = """\
The QTS Observer: a judgment-free data producer. It reads ObservationSnapshots, one JSON
object per line, checks each against schemas/observation_snapshot.schema.json, wraps each
valid one, byte for byte, into a PatternRecord and writes the records out. It never changes
a snapshot, never drops one silently, and holds no decision, signal, strategy or order logic.
"""

EPILOG = """\
files in the output directory:
  observer.jsonl            the active records file (while running)
  observer-<UTC>.jsonl      finalised records files; names sort in time order
  rejects.jsonl             every line that is not a valid snapshot, with the reasons
  metrics.jsonl             the metrics, one JSON document per report interval
  .observer.lock            held by the Observer owning the directory

signals:
  SIGTERM, SIGINT   take in what is already waiting in the input, dispatch, flush, fsync,
                    finalise the records file and exit 0 (within 5 s)
  SIGHUP            reopen the log file (for logrotate)
  The one loss window: records accepted but not yet written when the process is killed
  with SIGKILL (at most buffer.flush_interval_ms of records, or max_buffer_size of them).

environment:
  QTS_OBSERVER_STANDALONE=1  standalone mode: no upstream QTS services are used

exit status:
  0 stopped cleanly, 1 failed while running, 2 bad configuration or usage,
  3 could not start (output directory owned by another Observer, input not openable)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="observer.py",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=INSTALL_DIR / "config" / "stress_config.json",
        metavar="PATH",
        help="stress configuration (default: config/stress_config.json in the install directory)",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=INSTALL_DIR / "config" / "observer",
        metavar="DIR",
        help="where records, rejects and metrics go (default: config/observer in the install "
        "directory); created if missing",
    )
    parser.add_argument(
        "--input",
        metavar="PATH",
        help="read from PATH instead of standard input; a named pipe is kept open across "
        "producers (one closing it does not end the Observer), a plain file ends at its end",
    )
    parser.add_argument(
        "--pidfile", type=Path, metavar="PATH", help="write the PID here once ready"
    )
    parser.add_argument(
        "--log-file", metavar="PATH", help="append the log here instead of standard error"
    )
    parser.add_argument(
        "--metrics-file",
        type=Path,
        metavar="PATH",
        help="metrics JSON lines (default: metrics.jsonl in the output directory)",
    )
    parser.add_argument(
        "--check-config",
        type=Path,
        metavar="PATH",
        help="validate the configuration file PATH and exit: 0 if valid, 2 with the problem",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _write_pidfile(path: Path) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(f"{os.getpid()}\n")
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


def _remove_pidfile(path: Path) -> None:
    try:
        if path.read_text().strip() == str(os.getpid()):
            path.unlink()
    except OSError:
        pass


def _settings(path: Path) -> Settings | None:
    """The validated configuration, or None once its one-line problem is on stderr."""
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"observer: config error: {exc}", file=sys.stderr)
        return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.check_config is not None:
        if _settings(args.check_config) is None:
            return EXIT_USAGE
        print(f"observer: {args.check_config}: configuration is valid")
        return EXIT_OK
    settings = _settings(args.config)
    if settings is None:
        return EXIT_USAGE
    try:
        args.output_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
        lock = DirectoryLock(args.output_dir)
    except (OutputError, OSError) as exc:
        print(f"observer: cannot start: {exc}", file=sys.stderr)
        return EXIT_STARTUP
    try:
        log = Logbook(args.log_file)
    except OSError as exc:
        print(f"observer: cannot open log file {args.log_file}: {exc.strerror}", file=sys.stderr)
        return EXIT_STARTUP
    paths = Paths(
        config=args.config,
        output_dir=args.output_dir,
        input=args.input,
        pidfile=args.pidfile,
        log_file=args.log_file,
        metrics_file=args.metrics_file,
    )
    try:
        return _serve(settings, paths, log)
    except Exception:
        log.critical("unexpected failure: " + traceback.format_exc().replace("\n", " | "))
        log.flush()
        return EXIT_FAILED
    finally:
        if args.pidfile is not None:
            _remove_pidfile(args.pidfile)
        log.close()
        lock.release()


def _serve(settings: Settings, paths: Paths, log: Logbook) -> int:
    observer = Observer(settings, paths, log)
    observer.recover()
    try:
        source = InputSource(paths.input)
    except InputError as exc:
        log.critical(f"cannot start: {exc}")
        log.flush()
        print(f"observer: cannot start: {exc}", file=sys.stderr)
        return EXIT_STARTUP
    observer.writer.open()
    if paths.pidfile is not None:
        _write_pidfile(paths.pidfile)
    standalone = os.environ.get("QTS_OBSERVER_STANDALONE") == "1"
    log.info(
        f"Observer {__version__} started pid={os.getpid()} config={paths.config} "
        f"output_dir={paths.output_dir} input={paths.input or 'stdin'} "
        f"standalone={'yes' if standalone else 'no (no upstream services are used anyway)'} "
        f"tick_source={settings.tick_source} min_interval_ms={settings.min_interval_s * 1000:g} "
        f"max_interval_ms={settings.max_interval_s * 1000:g} "
        f"flush_interval_ms={settings.flush_interval_s * 1000:g} "
        f"max_buffer_size={settings.max_buffer_size} buffering={settings.buffering} "
        f"rotation_window_ms={settings.window_s * 1000:g} max_files={settings.max_files}"
    )
    log.flush()
    return observer.run(source)
