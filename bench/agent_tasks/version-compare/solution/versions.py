def _parts(version):
    parts = version.split(".")
    if not all(p.isdigit() for p in parts):
        raise ValueError(f"bad version {version!r}")
    return [int(p) for p in parts]


def compare(a, b):
    pa, pb = _parts(a), _parts(b)
    width = max(len(pa), len(pb))
    pa += [0] * (width - len(pa))
    pb += [0] * (width - len(pb))
    return (pa > pb) - (pa < pb)


def latest(versions):
    if not versions:
        raise ValueError("no versions")
    best = versions[0]
    for version in versions[1:]:
        if compare(version, best) > 0:
            best = version
    return best
