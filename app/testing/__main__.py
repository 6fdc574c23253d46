"""``python -m app.testing --hf-home DIR [--models ...]``: install the tiny demo models."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from app.testing.hf_cache import hub_cache_dir, read_hub_ref
from app.testing.tiny_models import BUILDERS, CHAT_MODEL_ID, ensure_demo_models


def main(argv: list[str] | None = None) -> int:
    """Build missing/stale tiny models into the cache and print what was installed."""
    parser = argparse.ArgumentParser(prog="python -m app.testing", description=__doc__)
    parser.add_argument(
        "--hf-home",
        type=Path,
        default=None,
        help="HF_HOME to install into (models go to HF_HOME/hub); default: the active HF cache",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=[CHAT_MODEL_ID],
        choices=sorted(BUILDERS),
        metavar="REPO_ID",
        help=f"repo ids to install (default: {CHAT_MODEL_ID}); known: {', '.join(sorted(BUILDERS))}",
    )
    parser.add_argument("--all", action="store_true", help="install every known tiny model")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    models = sorted(BUILDERS) if args.all else args.models
    start = time.perf_counter()
    installed = ensure_demo_models(args.hf_home, which=models)
    if args.hf_home is None:
        from huggingface_hub import constants

        hub_dir = Path(constants.HF_HUB_CACHE)
    else:
        hub_dir = hub_cache_dir(args.hf_home)
    for repo_id in models:
        status = "installed" if repo_id in installed else "up to date"
        print(f"{repo_id}@{read_hub_ref(hub_dir, repo_id)} {status} in {hub_dir}")
    print(f"done in {time.perf_counter() - start:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
