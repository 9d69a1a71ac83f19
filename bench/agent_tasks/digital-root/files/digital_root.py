def digital_root(n):
    pass


def persistence(n):
    pass
