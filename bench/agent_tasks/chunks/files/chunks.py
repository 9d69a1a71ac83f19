def chunks(items, size):
    pass


def padded_chunks(items, size, fill):
    pass
