def diagonal_sums(matrix):
    pass


def is_magic(matrix):
    pass
