"""diffcode: lossless image compression with differentiable entropy codes.

    import diffcode
    data = diffcode.compress("photo.png")     # a path, a PIL image or an array (RGB, gray, bool) -> .dfc bytes
    pixels = diffcode.decompress(data)        # bytes or a path -> the image in its own mode, bit-exact
    diffcode.__version__

    result = diffcode.fit(array, variant="weights")   # or step by step, either variant
                                                      # (each family: diffcode.families)
    data, report = diffcode.store(result)             # report: theoretical entropy vs real bytes

diffcode.api says what each takes and returns.
"""

__all__ = ["compress", "decompress", "fit", "store"]


def _version() -> str:
    """pyproject.toml's version: the file's own when this package runs from its source tree (where
    installed metadata can be stale or another checkout's), else the installed package's metadata."""
    from pathlib import Path

    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        import tomllib

        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        if project.get("name") == "diffcode" and "version" in project:
            return project["version"]
    except (ImportError, OSError, ValueError):  # Python 3.10, an installed package, a malformed file
        pass
    from importlib import metadata

    try:
        return metadata.version("diffcode")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def __getattr__(name: str):
    # lazy, so that importing one submodule does not pull in torch, the fitter and the codec
    if name in __all__:
        from . import api

        return getattr(api, name)
    if name == "__version__":
        globals()["__version__"] = version = _version()
        return version
    raise AttributeError(f"module 'diffcode' has no attribute {name!r}")
