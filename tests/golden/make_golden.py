"""Make the golden .dfc files: small files that every later diffcode must decode to the same pixels.

    python tests/golden/make_golden.py            # add the files that are missing, keep the others
    python tests/golden/make_golden.py --force    # also replace existing ones (defeats their purpose)

For every variant, every storage scheme of the container and every size in --sizes, a synthetic
image is fitted for a few steps with the SHIPPED decoder (`Checkpoint.load()`), stored, decoded
and checked, and written as ``VARIANT-STORAGE-vFORMAT-HxW.dfc``. `manifest.json` records each
file's SHA-256, the SHA-256 of its decoded pixels (row-major H x W x 3 uint8) and how it was
made; tests/test_golden.py checks both.

An existing golden file is never replaced without --force: golden files are the memory of what
old diffcodes wrote. A new storage scheme, variant or format version gets new file names, so
running this script after adding one only adds files.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from diffcode import codec, report  # noqa: E402
from diffcode.decoder import Checkpoint  # noqa: E402
from diffcode.fit_per_pixel import FitConfig, fit_image  # noqa: E402
from diffcode.image import pixel_sha256, write_bytes_atomic  # noqa: E402
from diffcode.storage import container  # noqa: E402
from diffcode.variants import per_pixel  # noqa: E402

SIZES = ((6, 5), (16, 16), (33, 17))
FIT_STEPS = 10
MANIFEST = "manifest.json"
VARIANTS = (per_pixel.NAME,)  # codec.store codes this variant; a new variant adds its own store call


def golden_image(height: int, width: int) -> np.ndarray:
    """A deterministic test image: gradients, an edge, a bright disc and mild noise."""
    rng = np.random.default_rng(height * 1000 + width)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 30 + 180 * x / max(width - 1, 1)
    g = 50 + 150 * y / max(height - 1, 1) + 40 * (x > width / 2)
    b = 220 - 120 * ((x - width / 3) ** 2 + (y - height / 3) ** 2 < (min(height, width) / 3) ** 2)
    image = np.stack([r, g, b], axis=-1) + rng.normal(0, 4, (height, width, 3))
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def file_name(variant: str, storage: str, version: int, height: int, width: int) -> str:
    return f"{variant}-{storage}-v{version}-{height}x{width}.dfc"


def make(image: np.ndarray, checkpoint: Checkpoint, storage: str) -> bytes:
    """Fit for FIT_STEPS steps, store, and check the decode."""
    fields = {f.name for f in dataclasses.fields(FitConfig)}
    config = FitConfig(steps=FIT_STEPS, **({"storage": storage} if "storage" in fields else {}))
    fit = fit_image(image, checkpoint, config)
    kwargs = {} if storage == codec.STORAGE else {"storage": storage}
    data, _ = codec.store(image, fit.centers, checkpoint, fit.seed, **kwargs)
    if not np.array_equal(codec.load(data, checkpoint), image):
        raise RuntimeError(f"{storage} {image.shape}: the stored file does not decode to the image")
    return data


def read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {"files": []}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--force", action="store_true", help="replace existing golden files")
    parser.add_argument("--sizes", default=",".join(f"{h}x{w}" for h, w in SIZES), help="HxW, comma-separated")
    parser.add_argument("--storages", default=",".join(sorted(set(container.STORAGES.values()))))
    parser.add_argument("--out", type=Path, default=HERE, help="folder of the golden files and manifest")
    args = parser.parse_args(argv)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",") if s]
    manifest = read_manifest(args.out)
    entries = {e["file"]: e for e in manifest["files"]}
    checkpoint, refused, written = None, [], []
    for variant in VARIANTS:
        for storage in args.storages.split(","):
            for h, w in sizes:
                name = file_name(variant, storage, container.FORMAT_VERSION, h, w)
                path = args.out / name
                if path.exists() and not args.force:
                    refused.append(name)
                    continue
                checkpoint = checkpoint or Checkpoint.load()
                image = golden_image(h, w)
                data = make(image, checkpoint, storage)
                write_bytes_atomic(path, data, overwrite=args.force)
                entries[name] = {
                    "file": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                    "pixels_sha256": pixel_sha256(image), "height": h, "width": w, "variant": variant,
                    "storage": storage, "format_version": data[len(container.MAGIC)],
                    "decoder": checkpoint.hash[:32], "fit_steps": FIT_STEPS, "commit": report.git_commit(),
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
