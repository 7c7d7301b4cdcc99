"""``python -m glacierd.emulator``: run the emulator in the foreground.

The first line on stdout is the endpoint URL (``--port 0`` picks a free
port), so a test or a script can start it and read where it listens.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from . import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_ACCOUNT_ID,
    DEFAULT_REGION,
    DEFAULT_SECRET_KEY,
    Emulator,
)
from .faults import KINDS


def main(argv: list[str] | None = None, prog: str = "python -m glacierd.emulator") -> int:
    parser = argparse.ArgumentParser(prog=prog,
                                     description="A Glacier-compatible server for tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--data-dir", required=True, help="where vaults are kept")
    parser.add_argument("--access-key", default=DEFAULT_ACCESS_KEY)
    parser.add_argument("--secret-key", default=DEFAULT_SECRET_KEY)
    parser.add_argument("--session-token", default=None)
    parser.add_argument("--region", default=DEFAULT_REGION)
    parser.add_argument("--account-id", default=DEFAULT_ACCOUNT_ID)
    parser.add_argument("--job-delay", type=float, default=0.0,
                        help="seconds a job stays InProgress")
    parser.add_argument("--fault-rate", type=float, default=0.0,
                        help="probability that a request gets an injected fault")
    parser.add_argument("--fault-kinds", default=",".join(KINDS),
                        help=f"comma-separated subset of {','.join(KINDS)}")
    parser.add_argument("--corrupt-rate", type=float, default=0.0,
                        help="probability that a job-output answer has a flipped byte")
    parser.add_argument("--upload-expiry", type=float, default=24 * 3600,
                        help="seconds of inactivity after which a multipart upload vanishes")
    parser.add_argument("--job-expiry", type=float, default=24 * 3600,
                        help="seconds a finished job's output stays (Glacier: 24 h)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--test-endpoints", action="store_true",
                        help="serve /__stats, /__faults and /__uploads/expire (tests only; "
                             "they need Authorization: Bearer SECRET_KEY)")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        emulator = Emulator(
            args.data_dir, host=args.host, port=args.port, access_key=args.access_key,
            secret_key=args.secret_key, session_token=args.session_token, region=args.region,
            account_id=args.account_id, job_delay=args.job_delay, fault_rate=args.fault_rate,
            fault_kinds=[k for k in args.fault_kinds.split(",") if k],
            corrupt_rate=args.corrupt_rate, seed=args.seed, upload_expiry=args.upload_expiry,
            job_expiry=args.job_expiry,
            test_endpoints=args.test_endpoints,
        )
    except (OSError, ValueError) as exc:
        print(f"glacierd emulator: {exc}", file=sys.stderr)
        return 2
    print(emulator.endpoint_url, flush=True)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=emulator.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    emulator.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
