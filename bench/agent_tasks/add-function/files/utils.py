def double(n):
    """Twice n."""
    return 2 * n
