"""Make the golden .dfc files: small files that every later diffcode must decode to the same pixels.

    python tests/golden/make_golden.py            # add the files that are missing, keep the others
    python tests/golden/make_golden.py --force    # also replace existing ones (defeats their purpose)

For every registered family (`diffcode.families`), every label of its `golden` recipes (per-pixel:
one per storage scheme; weights: the tiny preset) and every size in --sizes, a synthetic image is
fitted with the recipe's options and the SHIPPED shared model, stored, decoded and checked, and
written as ``FAMILY-LABEL-vFORMAT-HxW.dfc``. `manifest.json` records each file's SHA-256, the
SHA-256 of its decoded pixels (row-major H x W x 3 uint8) and how it was made;
tests/test_golden.py checks both.

An existing golden file is never replaced without --force: golden files are the memory of what
old diffcodes wrote. A new family, recipe or format version gets new file names, so running this
script after adding one only adds files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from diffcode import api, codec, families, report  # noqa: E402
from diffcode.image import pixel_sha256  # noqa: E402
from diffcode.outputs import write_bytes_atomic  # noqa: E402
from diffcode.storage import container  # noqa: E402

SIZES = ((6, 5), (16, 16), (33, 17))
MANIFEST = "manifest.json"


def golden_image(height: int, width: int) -> np.ndarray:
    """A deterministic test image: gradients, an edge, a bright disc and mild noise."""
    rng = np.random.default_rng(height * 1000 + width)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 30 + 180 * x / max(width - 1, 1)
    g = 50 + 150 * y / max(height - 1, 1) + 40 * (x > width / 2)
    b = 220 - 120 * ((x - width / 3) ** 2 + (y - height / 3) ** 2 < (min(height, width) / 3) ** 2)
    image = np.stack([r, g, b], axis=-1) + rng.normal(0, 4, (height, width, 3))
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def file_name(family: str, label: str, version: int, height: int, width: int) -> str:
    return f"{family}-{label}-v{version}-{height}x{width}.dfc"


def recipes(only: list[str] | None = None) -> list[tuple[str, str, dict]]:
    """(family, label, fit options) of every golden recipe of the registered families."""
    return [(name, label, options) for name in families.names() for label, options in families.get(name).golden.items()
            if only is None or label in only]


def make(image: np.ndarray, family: str, options: dict, model) -> bytes:
    """Fit with the recipe's options, store, and check the decode."""
    data, _ = api.store(api.fit(image, variant=family, model=model, **options), model=model)
    if not np.array_equal(codec.load(data, model), image):
        raise RuntimeError(f"{family} {options} {image.shape}: the stored file does not decode to the image")
    return data


def read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {"files": []}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--force", action="store_true", help="replace existing golden files")
    parser.add_argument("--sizes", default=",".join(f"{h}x{w}" for h, w in SIZES), help="HxW, comma-separated")
    parser.add_argument("--labels", default=None, help="only these recipe labels, comma-separated")
    parser.add_argument("--out", type=Path, default=HERE, help="folder of the golden files and manifest")
    args = parser.parse_args(argv)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",") if s]
    manifest = read_manifest(args.out)
    entries = {e["file"]: e for e in manifest["files"]}
    refused, written, models = [], [], {}
    for family, label, options in recipes(args.labels.split(",") if args.labels else None):
        for h, w in sizes:
            name = file_name(family, label, container.FORMAT_VERSION, h, w)
            path = args.out / name
            if path.exists() and not args.force:
                refused.append(name)
                continue
            model = models.setdefault(family, families.get(family).load_model())
            image = golden_image(h, w)
            data = make(image, family, options, model)
            write_bytes_atomic(path, data, overwrite=args.force)
            info = codec.info(data)
            entries[name] = {
                "file": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                "pixels_sha256": pixel_sha256(image), "height": h, "width": w, "variant": family,
                "storage": info["storage"], "label": label, "options": options,
                "format_version": info["format_version"], "decoder": model.hash[:32], "commit": report.git_commit(),
            }
            written.append(name)
            print(f"wrote {path} ({len(data)} bytes)")
    if written:
        manifest["files"] = [entries[k] for k in sorted(entries)]
        write_bytes_atomic(args.out / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode(), overwrite=True)
        print(f"updated {args.out / MANIFEST}")
    for name in refused:
        print(f"kept {args.out / name}: refusing to overwrite a golden file (pass --force to replace it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
