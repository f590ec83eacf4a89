"""diffcode: lossless image compression with differentiable entropy codes.

    import diffcode
    data = diffcode.compress(array)          # uint8 (H, W, 3) -> bytes of a .dfc file
    assert (diffcode.decompress(data) == array).all()

    result = diffcode.fit(array, variant="weights")   # or step by step, either variant
                                                      # (each family: diffcode.families)
    data, report = diffcode.store(result)             # report: theoretical entropy vs real bytes
"""

__all__ = ["compress", "decompress", "fit", "store"]


def __getattr__(name: str):
    # lazy, so that importing one submodule does not pull in torch, the fitter and the codec
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'diffcode' has no attribute {name!r}")
