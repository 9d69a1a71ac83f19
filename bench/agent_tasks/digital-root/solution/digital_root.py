def _digit_sum(n):
    return sum(int(d) for d in str(n))


def digital_root(n):
    if n < 0:
        raise ValueError("negative number")
    while n >= 10:
        n = _digit_sum(n)
    return n


def persistence(n):
    if n < 0:
        raise ValueError("negative number")
    rounds = 0
    while n >= 10:
        n = _digit_sum(n)
        rounds += 1
    return rounds
