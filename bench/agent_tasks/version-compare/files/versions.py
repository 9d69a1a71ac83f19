def compare(a, b):
    pass


def latest(versions):
    pass
