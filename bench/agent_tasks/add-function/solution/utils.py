def double(n):
    """Twice n."""
    return 2 * n


def is_even(n):
    """True when n is even."""
    return n % 2 == 0
