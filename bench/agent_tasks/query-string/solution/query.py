from urllib.parse import quote_plus, unquote_plus


def parse_query(qs):
    if qs.startswith("?"):
        qs = qs[1:]
    result = {}
    for pair in qs.split("&"):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        result.setdefault(unquote_plus(key), []).append(unquote_plus(value))
    return result


def build_query(params):
    pairs = []
    for key, values in params.items():
        if isinstance(values, str):
            values = [values]
        for value in values:
            pairs.append(f"{quote_plus(key, safe='')}={quote_plus(value, safe='')}")
    return "&".join(pairs)
