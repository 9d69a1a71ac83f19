def clamp(values, low, high):
    if low > high:
        raise ValueError("low is greater than high")
    return [min(max(v, low), high) for v in values]
