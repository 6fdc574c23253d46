"""Container health probe: ``healthcheck.py [PATH]`` exits 0 when the local server answers 200.

Used by the image's HEALTHCHECK (``/health``, liveness) and by docker-compose (``/ready``). It reads
the port and bind address from the same ``HFSERVE_*`` variables the server does, so it keeps working
when they are changed. Standard library only: the image carries no curl.
"""

import os
import sys
import urllib.error
import urllib.request

_ANY_ADDRESS = {"", "0.0.0.0", "::", "[::]", "localhost"}


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else "/health"
    host = os.environ.get("HFSERVE_HOST", "0.0.0.0").strip()
    host = "127.0.0.1" if host in _ANY_ADDRESS else host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    port = os.environ.get("HFSERVE_PORT", "8000").strip() or "8000"
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=4) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"healthcheck {path}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
