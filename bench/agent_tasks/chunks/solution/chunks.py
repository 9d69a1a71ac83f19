def chunks(items, size):
    if size < 1:
        raise ValueError("size must be at least 1")
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def padded_chunks(items, size, fill):
    pieces = chunks(items, size)
    if pieces:
        pieces[-1] += [fill] * (size - len(pieces[-1]))
    return pieces
