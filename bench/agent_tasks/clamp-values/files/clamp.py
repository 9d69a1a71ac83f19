def clamp(values, low, high):
    pass
