"""Download the 24 Kodak images from r0k.us into kodak/images/ and verify them.

Usage:
    python kodak/fetch.py [--dest DIR] [--force] [kodim01 ...]

Each file is downloaded to a temporary name, its SHA-256 checked against
`file_sha256` in kodak/manifest.json, its decoded pixels checked against
`pixel_sha256`, and only then renamed into place. Files already present whose
pixels verify are kept. Standard library and Pillow only, so it runs before
diffcode is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "manifest.json"
DEFAULT_DEST = HERE / "images"
TIMEOUT_SECONDS = 60


class FetchError(Exception):
    """A download failed or did not verify."""


def load_manifest() -> tuple[str, dict[str, dict]]:
    """Read kodak/manifest.json: (URL template with {name}, {name: entry})."""
    data = json.loads(MANIFEST.read_text())
    return data["source_url"], {image["name"]: image for image in data["images"]}


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pixel_sha256(path: Path) -> str:
    """Hex SHA-256 of an 8-bit RGB image's row-major HxWx3 pixel bytes."""
    try:
        with Image.open(path) as im:
            if im.mode != "RGB":
                raise FetchError(f"{path}: image mode is {im.mode}, expected RGB")
            return hashlib.sha256(im.tobytes()).hexdigest()
    except OSError as e:
        raise FetchError(f"{path}: not a readable image ({e}); delete it or use --force") from e


def download(url: str, target: Path) -> None:
    """Download `url` to `target`; FetchError with a hint if there is no connection."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            target.write_bytes(response.read())
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        raise FetchError(
            f"cannot download {url} ({e}). Without internet, copy kodim01.png .. kodim24.png "
            "into kodak/images/ or set DIFFCODE_KODAK to a folder holding them"
        ) from e


def _verify_file(path: Path, entry: dict) -> None:
    """Raise FetchError unless the file bytes match the published checksum."""
    actual = file_sha256(path)
    if actual != entry["file_sha256"]:
        raise FetchError(
            f"{entry['name']}: downloaded file SHA-256 {actual} differs from "
            f"the published {entry['file_sha256']}; the download is corrupt or the server changed"
        )


def verify(path: Path, entry: dict, check_file: bool) -> None:
    """Raise FetchError unless `path` matches the manifest entry."""
    if check_file:
        _verify_file(path, entry)
    actual = pixel_sha256(path)
    if actual != entry["pixel_sha256"]:
        raise FetchError(
            f"{entry['name']}: pixel SHA-256 {actual} differs from the manifest's "
            f"{entry['pixel_sha256']}; if the file checksum matched, the canonical file "
            "decodes differently from the copies the manifest was made from: please report it"
        )


def fetch_one(entry: dict, url: str, dest: Path, force: bool) -> str:
    """Make sure dest/<name>.png exists and verifies; return what was done."""
    target = dest / f"{entry['name']}.png"
    if target.is_file() and not force:
        verify(target, entry, check_file=False)
        return "already present, pixels verified"
    fd, tmp_name = tempfile.mkstemp(dir=dest, prefix=f".{entry['name']}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        download(url, tmp)
        verify(tmp, entry, check_file=True)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return "downloaded, file and pixels verified"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="images to fetch (default: all 24)")
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="output folder")
    parser.add_argument("--force", action="store_true", help="download even if present")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Fetch and verify the requested images; return a process exit status."""
    args = parse_args(argv)
    url_template, manifest = load_manifest()
    names = [n.removesuffix(".png") for n in args.names] or list(manifest)
    unknown = [n for n in names if n not in manifest]
    if unknown:
        print(f"error: unknown image(s) {', '.join(unknown)}; expected kodim01 .. kodim24",
              file=sys.stderr)
        return 2
    args.dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        try:
            status = fetch_one(manifest[name], url_template.format(name=name), args.dest,
                               args.force)
        except FetchError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        print(f"{name}: {status}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
