#!/usr/bin/env python3
"""Build a release of the app on the control machine: a wheel made from the files git tracks
(never an untracked file of the working tree), named VERSION-HASH, where HASH covers the content of
every file that goes into it and the hashed requirements. The same sources always give the same
name, so a release is built once and a re-run finds it in the cache.

Usage: build_release.py SOURCE_DIR CACHE_DIR. Prints JSON: name, wheel, lock, built, and the
release's migration heads (so check mode can say which migrations a deploy would run).
"""

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

# What a release is made of, relative to the checkout.
TRACKED = ["app", "pyproject.toml"]
LOCK = "requirements.lock"


def tracked_files(source: Path) -> list[str]:
    # git from PATH, as the operator runs it; fixed arguments, no shell.
    command = ["git", "-C", str(source), "ls-files", "-z", "--", *TRACKED]
    listing = subprocess.run(command, check=True, capture_output=True, text=True).stdout  # noqa: S603
    return sorted(path for path in listing.split("\0") if path and (source / path).is_file())


def content_hash(source: Path, paths: list[str]) -> str:
    digest = hashlib.sha256()
    for path in [*paths, LOCK]:
        digest.update(path.encode() + b"\0" + (source / path).read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def migration_heads(source: Path) -> list[str]:
    from alembic.script import ScriptDirectory  # the control machine's tools include alembic

    return sorted(ScriptDirectory(str(source / "app" / "migrations")).get_heads())


def main() -> int:
    source, cache = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
    paths = tracked_files(source)
    if not any(path.startswith("app/") for path in paths):
        print(f"{source} has no tracked app/ files: deploy from a git clone", file=sys.stderr)
        return 1
    version = tomllib.loads((source / "pyproject.toml").read_text())["project"]["version"]
    name = f"{version}-{content_hash(source, paths)}"
    release = cache / name
    wheel = next(release.glob("*.whl"), None) if release.is_dir() else None
    built = wheel is None
    if built:
        with tempfile.TemporaryDirectory() as staging:
            for path in paths:
                target = Path(staging, path)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source / path, target)
            partial = cache / f".{name}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            subprocess.run(  # noqa: S603 - this interpreter's pip, fixed arguments
                [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                 "--no-build-isolation", "--wheel-dir", str(partial), staging],
                check=True, stdout=sys.stderr,
            )  # fmt: skip
            shutil.copy2(source / LOCK, partial / LOCK)
            shutil.rmtree(release, ignore_errors=True)
            partial.rename(release)  # complete or absent, never half-built
        wheel = next(release.glob("*.whl"))
    result = {"name": name, "wheel": str(wheel), "lock": str(release / LOCK), "built": built}
    print(json.dumps({**result, "heads": migration_heads(source)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
