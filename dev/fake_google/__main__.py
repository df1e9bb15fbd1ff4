"""Run the fake Google Workspace server: python -m dev.fake_google --host 127.0.0.1 --port 8765.

--service-account EMAIL=KEY.pem (repeatable) trusts assertions signed by that key (public or private PEM) for that
service account, as Google trusts a service account's uploaded keys. --id-token-key KEY.pem is the key the ID tokens
it issues are signed with (made there when missing, so a restart keeps their certificates). --state-file WORLD.json
keeps the world across restarts.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path

from .server import FakeGoogle

logger = logging.getLogger("dev.fake_google")


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m dev.fake_google", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--service-account", action="append", default=[], metavar="EMAIL=KEY.pem",
                        help="trust this key for this service account's assertions (repeatable)")
    parser.add_argument("--id-token-key", type=Path, default=None, metavar="KEY.pem",
                        help="sign ID tokens with this RSA key (created when missing)")
    parser.add_argument("--state-file", type=Path, default=None, metavar="WORLD.json",
                        help="keep the world (events, spaces, conferences, files, users) in this file across restarts")
    args = parser.parse_args(argv)
    accounts: dict[str, list[str]] = {}
    for item in args.service_account:
        email, sep, path = item.partition("=")
        if not sep or not email or not path:
            parser.error(f"--service-account takes EMAIL=KEY.pem, not {item!r}")
        accounts.setdefault(email, []).append(Path(path).read_text())
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    stopping = threading.Event()
    # Signal handlers only set a flag: shutting the server down inside the handler could deadlock.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())

    server = FakeGoogle(host=args.host, port=args.port, service_accounts=accounts,
                        id_token_key=args.id_token_key, state_file=args.state_file).start()
    logger.info("ready: %s", server.url)
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        server.stop()
        logger.info("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
